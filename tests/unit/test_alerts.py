"""Low-balance alerts: once per threshold until recovered (core/alerts.py)."""

from __future__ import annotations

from creditpool.core.alerts import Alert, AlertKind, AlertState, evaluate

LOW, DEPLETED, RECOVERED = AlertKind.LOW, AlertKind.DEPLETED, AlertKind.RECOVERED


def run(thresholds: list[int], lefts: list[int]) -> list[list[Alert]]:
    state, fired = AlertState(), []
    for left in lefts:
        state, alerts = evaluate(state, thresholds, left)
        fired.append(alerts)
        assert AlertState.from_json(state.to_json()) == state  # stored and read back
    return fired


def test_a_threshold_fires_once_until_recovered() -> None:
    fired = run([100], [150, 90, 80, 70, 120, 90])
    assert fired == [[], [Alert(LOW, 100)], [], [], [Alert(RECOVERED, 100)], [Alert(LOW, 100)]]


def test_several_thresholds_crossed_at_once_fire_highest_first() -> None:
    assert run([100, 50], [40]) == [[Alert(LOW, 100), Alert(LOW, 50)]]


def test_partial_recovery_rearms_the_lower_threshold_silently() -> None:
    fired = run([100, 50], [40, 60, 45, 100])
    assert fired == [
        [Alert(LOW, 100), Alert(LOW, 50)],
        [],  # above 50, still below 100: no recovery yet
        [Alert(LOW, 50)],  # 50 was re-armed
        [Alert(RECOVERED, 100)],
    ]


def test_depleted_once_then_recovered_above_zero_without_thresholds() -> None:
    assert run([], [10, 0, 0, 5, 0]) == [
        [],
        [Alert(DEPLETED)],
        [],
        [Alert(RECOVERED, None)],
        [Alert(DEPLETED)],
    ]


def test_depletion_over_but_still_below_a_threshold_is_no_recovery() -> None:
    fired = run([100], [0, 20, 0, 200])
    assert fired == [
        [Alert(LOW, 100), Alert(DEPLETED)],
        [],
        [Alert(DEPLETED)],
        [Alert(RECOVERED, 100)],
    ]


def test_at_the_threshold_is_not_below_it() -> None:
    assert run([100], [100]) == [[]]


def test_a_removed_threshold_neither_fires_nor_holds_recovery_back() -> None:
    state, _ = evaluate(AlertState(), [100, 50], 40)
    state, alerts = evaluate(state, [50], 70)  # 100 removed; 40 -> 70 recovers above 50
    assert alerts == [Alert(RECOVERED, 50)]
    assert not state.active
