"""Webhook delivery rules through the library's worker, on SQLite and PostgreSQL, with a
clock the tests move and real receivers on 127.0.0.1 (issue 11):

- the address is checked after DNS resolution, at send time: a name resolving inside is
  refused (nothing is sent) unless ``webhook_allowed_networks`` covers it;
- the default retry schedule spans about three days, each delay with bounded jitter;
- an endpoint failing with no success for 5 days is disabled and says why;
- a rotated-out secret signs beside the new one for 24 hours, then no more;
- secrets are sealed at rest: the stored column is not the secret, another server key
  cannot sign;
- the delivery log keeps each attempt's status, duration and response excerpt;
- the timeout bounds the whole answer, not each read;
- over https the connection goes to the checked address, with the URL's name in the TLS
  server name and ``Host``, and the certificate must be the name's.

Names are resolved by a patched ``socket.getaddrinfo`` (the boundary the guard itself
calls), so no outside DNS is needed.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks.webhooks
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from creditpool import CreditPool
from creditpool.settings import WEBHOOK_RETRY_SCHEDULE, Settings, parse_schedule
from creditpool.webhooks.models import WebhookDelivery
from tests.e2e.receiver import Arrival, Receiver, receiving
from tests.support import FakeClock

NAME = "hooks.vendor.example"
LOOPBACK = "127.0.0.0/8"
Resolver = Callable[..., Any]


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Names the test makes up, and the addresses they resolve to (others as usual)."""
    names: dict[str, list[str]] = {}
    real: Resolver = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in names:
            return real(host, port, *args, **kwargs)
        if not names[host]:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        found = []
        for address in names[host]:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            where = (address, port, 0, 0) if family == socket.AF_INET6 else (address, port)
            found.append((family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", where))
        return found

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names


@contextmanager
def pool_with(db_url: str, clock: FakeClock, **settings: Any) -> Iterator[CreditPool]:
    """A pool (the library a server runs) with ``acme`` (Europe/Berlin) and these settings."""
    with CreditPool.open(db_url, clock=clock, settings=Settings(**settings)) as pool:
        if "acme" not in {o.id for o in pool.orgs()}:
            pool.create_org("acme", timezone="Europe/Berlin")
        yield pool


def deliver(pool: CreditPool) -> int:
    """One round of a delivery worker (fan out, send what is due, record)."""
    worker = pool.webhook_worker()
    try:
        return worker.run_once()
    finally:
        worker.close()


def only(pool: CreditPool, endpoint_id: str) -> WebhookDelivery:
    [delivery] = pool.webhook_deliveries(endpoint_id)
    return delivery


def port_of(receiver: Receiver) -> int:
    return int(receiver.url.split(":")[2].split("/")[0])


# -- the address is checked at send time, after DNS --------------------------------------


@pytest.mark.parametrize(
    "addresses",
    [
        ["127.0.0.1"],
        ["169.254.169.254"],  # the cloud metadata service
        ["93.184.216.34", "127.0.0.1"],  # one inside among public ones is enough
        ["::ffff:127.0.0.1"],
        ["10.0.0.7"],
    ],
)
def test_a_name_resolving_inside_is_refused_at_send_time_and_nothing_is_sent(
    db_url: str, clock: FakeClock, dns: dict[str, list[str]], addresses: list[str]
) -> None:
    with receiving() as receiver, pool_with(db_url, clock) as pool:
        dns[NAME] = addresses
        # A name is accepted when the endpoint is made: it is checked when resolved.
        url = f"http://{NAME}:{port_of(receiver)}/hooks"
        endpoint = pool.create_webhook_endpoint(url).id
        pool.grant("acme", "10")
        assert deliver(pool) == 1
        delivery = only(pool, endpoint)
        [attempt] = delivery.attempts
        assert attempt.status_code is None
        assert attempt.error is not None
        assert "may not reach" in attempt.error
        inside = next(a for a in addresses if a != "93.184.216.34")
        assert str(ipaddress.ip_address(inside)) in attempt.error
        assert "CREDITPOOL_WEBHOOK_ALLOWED_NETWORKS" in attempt.error
        assert delivery.status == "pending"  # retried later, refused again then
        assert delivery.delivered_at is None
        assert pool.webhook_endpoint(endpoint).failing_since == clock.now
        time.sleep(0.2)
        assert receiver.arrivals == []


def test_a_name_resolving_inside_is_delivered_to_when_the_allowed_networks_cover_it(
    db_url: str, clock: FakeClock, dns: dict[str, list[str]]
) -> None:
    with receiving() as receiver, pool_with(db_url, clock, webhook_allowed_networks=LOOPBACK) as p:
        dns[NAME] = ["127.0.0.1"]
        url = f"http://{NAME}:{port_of(receiver)}/hooks"
        made = p.create_webhook_endpoint(url)
        receiver.secrets = [made.secret]
        g = p.grant("acme", "10")
        assert deliver(p) == 1
        [arrival] = receiver.arrivals
        assert arrival.data["id"] == g.id
        assert only(p, made.id).status == "delivered"
        # the connection went to the checked address, in the name of the URL's host
        assert host_header(receiver, p, made.id) == f"{NAME}:{port_of(receiver)}"


def host_header(receiver: Receiver, pool: CreditPool, endpoint_id: str) -> str:
    """The ``Host`` a receiver was sent: ask it by a test delivery to a recording server."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            seen.append(self.headers["host"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with serving(Handler) as port:
        pool.update_webhook_endpoint(endpoint_id, url=f"http://{NAME}:{port}/hooks")
        pool.test_webhook_endpoint(endpoint_id)
        deliver(pool)
    assert len(seen) == 1
    return seen[0].replace(str(port), str(port_of(receiver)))


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def test_a_name_that_does_not_resolve_is_an_attempt_that_failed(
    db_url: str, clock: FakeClock, dns: dict[str, list[str]]
) -> None:
    with pool_with(db_url, clock) as pool:
        dns[NAME] = []
        endpoint = pool.create_webhook_endpoint(f"https://{NAME}/hooks").id
        pool.grant("acme", "1")
        deliver(pool)
        [attempt] = only(pool, endpoint).attempts
        assert attempt.error is not None
        assert "does not resolve" in attempt.error


# -- retries: about three days, with bounded jitter ---------------------------------------


def test_the_default_schedule_spans_about_three_days() -> None:
    delays = parse_schedule(WEBHOOK_RETRY_SCHEDULE)
    assert Settings().webhook_retry_delays_s == delays  # the default of the setting
    assert delays == sorted(delays)
    assert delays[0] <= 10  # the first retry comes soon
    assert 2.5 <= sum(delays) / 86400 <= 3.2  # the last one about three days after
    assert max(delays) <= 12 * 3600


def test_each_retry_waits_its_delay_with_jitter_of_at_most_ten_percent(
    db_url: str, clock: FakeClock, dns: dict[str, list[str]]
) -> None:
    """Twenty deliveries to an endpoint that never answers, through the default schedule:
    each wait is within 10 % of its step, the waits differ (jitter), and each delivery has
    failed after the last step, about three days after its first attempt."""
    delays = parse_schedule(WEBHOOK_RETRY_SCHEDULE)
    with pool_with(db_url, clock) as pool:
        dns[NAME] = []
        endpoint = pool.create_webhook_endpoint(f"https://{NAME}/hooks").id
        for _ in range(20):
            pool.grant("acme", "1")
        start = clock.now
        ratios: list[list[float]] = []
        for step, delay in enumerate(delays, start=1):
            assert deliver(pool) == 20
            sent = pool.webhook_deliveries(endpoint, limit=100)
            assert {d.attempt_count for d in sent} == {step}
            assert {d.status for d in sent} == {"pending"}
            waits = [(d.next_attempt_at - clock.now).total_seconds() for d in sent]  # type: ignore[operator]
            ratios.append([w / delay for w in waits])
            assert all(0.9 <= r <= 1.1 for r in ratios[-1]), (step, delay, waits)
            clock.set(max(d.next_attempt_at for d in sent))  # type: ignore[type-var]
        assert deliver(pool) == 20  # the last attempt: no retry left
        sent = pool.webhook_deliveries(endpoint, limit=100)
        assert {d.status for d in sent} == {"failed"}
        assert {d.attempt_count for d in sent} == {len(delays) + 1}
        assert all(d.next_attempt_at is None for d in sent)
        assert 2.5 <= (clock.now - start).total_seconds() / 86400 <= 3.2
        clock.advance(days=10)
        assert deliver(pool) == 0  # nothing more is ever sent
    spread = [max(r) - min(r) for r in ratios]
    assert all(s > 0.01 for s in spread), spread  # jittered, not one fixed delay


# -- an endpoint failing for 5 days is disabled, and says why -----------------------------


def test_an_endpoint_failing_for_five_days_is_disabled_and_says_why(
    db_url: str, clock: FakeClock
) -> None:
    with receiving() as receiver, pool_with(db_url, clock, webhook_allowed_networks=LOOPBACK) as p:
        receiver.answer = lambda n: 500
        endpoint = p.create_webhook_endpoint(receiver.url).id
        p.grant("acme", "1")
        deliver(p)
        since = clock.now
        clock.advance(days=4, hours=23)
        p.grant("acme", "1")
        deliver(p)
        held = p.webhook_endpoint(endpoint)
        assert held.enabled  # 4 days 23 hours: not yet
        assert held.failing_since == since
        assert held.disabled_reason is None
        clock.advance(hours=1)
        p.grant("acme", "1")
        deliver(p)
        disabled = p.webhook_endpoint(endpoint)
        assert not disabled.enabled
        assert disabled.disabled_reason is not None
        assert "no successful delivery" in disabled.disabled_reason
        assert since.isoformat() in disabled.disabled_reason
        # disabled: nothing more is sent, neither new events nor the retries due
        tried = len(receiver.arrivals)
        p.grant("acme", "1")
        clock.advance(days=1)
        assert deliver(p) == 0
        assert len(receiver.arrivals) == tried
        # enabled again by the vendor: a fresh start
        again = p.update_webhook_endpoint(endpoint, enabled=True)
        assert (again.enabled, again.failing_since, again.disabled_reason) == (True, None, None)


def test_a_success_in_between_starts_the_five_days_again(db_url: str, clock: FakeClock) -> None:
    with receiving() as receiver, pool_with(db_url, clock, webhook_allowed_networks=LOOPBACK) as p:
        answers = {"now": 500}
        receiver.answer = lambda n: answers["now"]
        endpoint = p.create_webhook_endpoint(receiver.url, event_types=["grant.created"]).id
        p.grant("acme", "1")
        deliver(p)
        clock.advance(days=3)
        answers["now"] = 200
        deliver(p)  # the retries due: delivered
        assert p.webhook_endpoint(endpoint).failing_since is None
        answers["now"] = 500
        clock.advance(days=1)
        p.grant("acme", "1")
        deliver(p)
        clock.advance(days=3)  # 7 days since the first failure, 3 since the last success
        p.grant("acme", "1")
        deliver(p)
        kept = p.webhook_endpoint(endpoint)
        assert kept.enabled
        assert kept.last_success_at is not None
        assert kept.failing_since == kept.last_success_at + timedelta(days=1)


# -- rotation: the old secret signs beside the new one for 24 hours -----------------------


@pytest.fixture
def verifier_clock(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> FakeClock:
    """The official verifier checks ``webhook-timestamp`` against its own clock: make it
    read the test's clock, as a receiver living in the same (moved) time would."""

    class Now(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Now:  # type: ignore[override]
            return cls.fromtimestamp(clock.now.timestamp(), tz)

    monkeypatch.setattr(standardwebhooks.webhooks, "datetime", Now)
    return clock


def verifies(secret: str, arrival: Arrival, raw: bytes) -> bool:
    headers = {
        "webhook-id": arrival.webhook_id,
        "webhook-timestamp": arrival.timestamp,
        "webhook-signature": arrival.signature,
    }
    try:
        Webhook(secret).verify(raw, headers)
    except WebhookVerificationError:
        return False
    return True


def raw_body(arrival: Arrival) -> bytes:
    import json

    return json.dumps(arrival.body, separators=(",", ":"), ensure_ascii=False).encode()


def test_a_rotated_out_secret_signs_for_24_hours_then_only_the_new_one_does(
    db_url: str, verifier_clock: FakeClock
) -> None:
    clock = verifier_clock
    with receiving() as receiver, pool_with(db_url, clock, webhook_allowed_networks=LOOPBACK) as p:
        made = p.create_webhook_endpoint(receiver.url, event_types=["grant.created"])
        old = made.secret
        clock.advance(hours=1)
        rotated = p.rotate_webhook_secret(made.id)
        new = rotated.secret
        assert new != old
        assert rotated.previous_secret_expires_at == clock.now + timedelta(hours=24)
        clock.advance(hours=23, minutes=59)
        p.grant("acme", "1")
        deliver(p)
        [during] = receiver.arrivals
        assert len(during.signature.split(" ")) == 2
        assert verifies(old, during, raw_body(during))
        assert verifies(new, during, raw_body(during))
        clock.advance(minutes=1)  # 24 hours after the rotation
        p.grant("acme", "1")
        deliver(p)
        after = receiver.arrivals[1]
        assert len(after.signature.split(" ")) == 1
        assert verifies(new, after, raw_body(after))
        assert not verifies(old, after, raw_body(after))
        assert p.webhook_endpoint(made.id).previous_secret_expires_at is not None  # past


# -- secrets are sealed at rest ----------------------------------------------------------


def test_a_secret_is_sealed_at_rest_and_another_server_key_cannot_sign(
    db_url: str, clock: FakeClock
) -> None:
    with receiving() as receiver:
        with pool_with(
            db_url, clock, secret_key="the server's key", webhook_allowed_networks=LOOPBACK
        ) as p:
            made = p.create_webhook_endpoint(receiver.url)
            p.rotate_webhook_secret(made.id)
            with p.db.read() as tx:
                stored = tx.conn.exec_driver_sql(
                    "SELECT secret, old_secret FROM webhook_endpoints"
                ).one()
        decoded = made.secret.removeprefix("whsec_")
        for column in stored:
            assert column
            assert "whsec_" not in column
            assert decoded not in column
        with pool_with(
            db_url, clock, secret_key="another key", webhook_allowed_networks=LOOPBACK
        ) as other:
            other.grant("acme", "1")
            assert deliver(other) == 1
            [attempt] = only(other, made.id).attempts
            assert attempt.status_code is None
            assert attempt.error is not None
            assert "secret key" in attempt.error
        time.sleep(0.2)
        assert receiver.arrivals == []  # nothing unsigned or wrongly signed goes out


def test_after_the_server_key_changed_a_rotation_makes_the_endpoint_deliverable_again(
    db_url: str, clock: FakeClock
) -> None:
    """The refusal says to rotate the secret: a rotation under the new key must then be
    enough, not 24 hours of failures while the old secret (that no key opens) 'signs'."""
    with receiving() as receiver:
        with pool_with(
            db_url, clock, secret_key="the first key", webhook_allowed_networks=LOOPBACK
        ) as p:
            made = p.create_webhook_endpoint(receiver.url, event_types=["grant.created"])
        with pool_with(
            db_url, clock, secret_key="the new key", webhook_allowed_networks=LOOPBACK
        ) as p:
            rotated = p.rotate_webhook_secret(made.id)
            assert rotated.previous_secret_expires_at is None  # the old one cannot sign
            receiver.secrets = [rotated.secret]
            p.grant("acme", "1")
            deliver(p)
            delivery = only(p, made.id)
            assert [a.error for a in delivery.attempts] == [None]
            assert delivery.status == "delivered"
            [arrival] = receiver.arrivals
            assert len(arrival.signature.split(" ")) == 1


# -- the delivery log --------------------------------------------------------------------


def test_the_delivery_log_keeps_each_attempts_status_duration_and_response_excerpt(
    db_url: str, clock: FakeClock
) -> None:
    with receiving() as receiver, pool_with(db_url, clock, webhook_allowed_networks=LOOPBACK) as p:
        receiver.answer = lambda n: 503 if n == 0 else 200
        receiver.delay_s = 0.3
        endpoint = p.create_webhook_endpoint(receiver.url, event_types=["grant.created"]).id
        p.grant("acme", "1")
        deliver(p)
        failed = only(p, endpoint)
        assert failed.status == "pending"
        assert failed.next_attempt_at is not None
        assert failed.next_attempt_at > clock.now
        clock.set(failed.next_attempt_at)
        deliver(p)
        delivery = only(p, endpoint)
        assert delivery.status == "delivered"
        assert delivery.next_attempt_at is None
        first, second = delivery.attempts
        assert (first.status_code, first.response, first.error) == (503, "receiver says no", None)
        assert (second.status_code, second.response, second.error) == (200, "ok", None)
        assert first.at < second.at
        for attempt in (first, second):
            assert 300 <= attempt.duration_ms < 5000  # the receiver took 0.3 s


def test_a_long_answer_is_kept_as_its_first_thousand_characters(
    db_url: str, clock: FakeClock
) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            body = ("é" + "x" * 99) * 50  # 5,000 characters
            self.send_response(500)
            self.send_header("content-type", "text/plain; charset=utf-8")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: object) -> None:
            pass

    with serving(Handler) as port, pool_with(db_url, clock, webhook_allowed_networks=LOOPBACK) as p:
        endpoint = p.create_webhook_endpoint(f"http://127.0.0.1:{port}/").id
        p.grant("acme", "1")
        deliver(p)
        [attempt] = only(p, endpoint).attempts
        assert attempt.status_code == 500
        assert attempt.response == ("é" + "x" * 99) * 10


# -- the timeout bounds the whole attempt ------------------------------------------------


def dripping(status: int, chunks: int, every_s: float) -> type[BaseHTTPRequestHandler]:
    """A receiver that answers its status at once, then its body a byte at a time."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self.send_response(status)
            self.send_header("content-length", str(chunks))
            self.end_headers()
            try:
                for _ in range(chunks):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(every_s)
            except OSError:  # the sender gave up
                pass

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def test_a_receiver_answering_slower_than_the_timeout_is_a_timed_out_attempt(
    db_url: str, clock: FakeClock
) -> None:
    """The timeout is the whole attempt's, not each read's: a receiver that sends its
    answer a byte every 0.2 s (each read well within 0.5 s) for 3 s has timed out."""
    settings = {"webhook_allowed_networks": LOOPBACK, "webhook_timeout_s": 0.5}
    with serving(dripping(200, 15, 0.2)) as port, pool_with(db_url, clock, **settings) as p:
        endpoint = p.create_webhook_endpoint(f"http://127.0.0.1:{port}/").id
        p.grant("acme", "1")
        started = time.monotonic()
        deliver(p)
        assert time.monotonic() - started < 2.5
        delivery = only(p, endpoint)
        [attempt] = delivery.attempts
        assert attempt.error == "timed out"
        assert attempt.status_code is None
        assert 500 <= attempt.duration_ms < 2000
        assert delivery.status == "pending"
        assert delivery.next_attempt_at is not None


# -- the team month is the organization's ------------------------------------------------


def use(pool: CreditPool, org: str, credits: str, user: str) -> None:
    quantity = str(int(Decimal(credits) * 100))  # topic_detection: 0.01 credit per item
    pool.consume(org, "topic_detection", user_id=user, quantity=quantity)


def crossings(pool: CreditPool, org: str) -> list[dict[str, Any]]:
    found = pool.events(org, type="team.limit_crossed", limit=100)
    return [e.data for e in reversed(found)]


def test_the_team_month_is_the_organizations_at_a_month_boundary(
    pool: CreditPool, clock: FakeClock
) -> None:
    """Berlin is UTC+1 in winter: 23:30 UTC on 31 January is already February there. New
    York is UTC-5: 03:00 UTC on 1 February is still January there."""
    pool.create_org("berlin", timezone="Europe/Berlin")
    pool.create_org("york", timezone="America/New_York")
    for org in ("berlin", "york"):
        pool.grant(org, "100")
        pool.create_team(org, "ml", monthly_limit="1")
        pool.set_member(org, "ana", team_id="ml")
    clock.set(datetime(2027, 1, 31, 22, 0, tzinfo=UTC))  # 23:00 in Berlin: January
    use(pool, "berlin", "0.6", "ana")
    clock.set(datetime(2027, 1, 31, 23, 30, tzinfo=UTC))  # 00:30 in Berlin: February
    use(pool, "berlin", "0.6", "ana")
    assert crossings(pool, "berlin") == []  # 0.6 in each month, not 1.2 in January

    clock.set(datetime(2027, 2, 1, 3, 0, tzinfo=UTC))  # 22:00 on 31 January in New York
    use(pool, "york", "0.6", "ana")
    clock.set(datetime(2027, 2, 1, 4, 30, tzinfo=UTC))  # 23:30 on 31 January in New York
    use(pool, "york", "0.5", "ana")  # January: 1.1
    [crossed] = crossings(pool, "york")
    assert crossed["month"] == "2027-01"
    assert Decimal(crossed["used"]) == Decimal("1.1")
    clock.set(datetime(2027, 2, 1, 5, 30, tzinfo=UTC))  # 00:30 on 1 February in New York
    use(pool, "york", "0.9", "ana")  # February: 0.9, under
    assert len(crossings(pool, "york")) == 1

    clock.set(datetime(2027, 2, 1, 10, 0, tzinfo=UTC))
    use(pool, "berlin", "0.4", "ana")  # February: 1.0
    [crossed] = crossings(pool, "berlin")
    assert crossed["month"] == "2027-02"
    assert Decimal(crossed["used"]) == Decimal("1.0")


# -- https: connected to the checked address, the certificate checked against the name ---


def certificates(tmp_path: Path, name: str) -> tuple[Path, Path, Path]:
    """A certificate authority, and a server certificate for ``name`` it signed: the CA's
    file, the certificate's and its key's."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def subject(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(subject("creditpool test CA"))
        .issuer_name(subject("creditpool test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(subject(name))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    paths = tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server.key"
    paths[0].write_bytes(ca.public_bytes(pem))
    paths[1].write_bytes(leaf.public_bytes(pem))
    paths[2].write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


@contextmanager
def tls_receiver(cert: Path, key: Path) -> Iterator[tuple[int, list[str], list[str]]]:
    """An https receiver answering 204: its port, the TLS server names and the ``Host``
    headers it was sent."""
    names: list[str] = []
    hosts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            hosts.append(self.headers["host"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda _sock, name, _ctx: names.append(str(name))
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1]), names, hosts
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("certified", [NAME, "someone-else.example"])
def test_an_https_delivery_goes_to_the_checked_address_and_checks_the_name(
    db_url: str,
    clock: FakeClock,
    dns: dict[str, list[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    certified: str,
) -> None:
    """The connection is made to the address the guard checked, with the URL's name in
    TLS's server name and ``Host``, and the certificate must be the name's."""
    import certifi

    ca, cert, key = certificates(tmp_path, certified)
    monkeypatch.setattr(certifi, "where", lambda: str(ca))  # the worker trusts this CA only
    dns[NAME] = ["127.0.0.1"]
    settings = {"webhook_allowed_networks": LOOPBACK}
    with tls_receiver(cert, key) as (port, names, hosts), pool_with(db_url, clock, **settings) as p:
        endpoint = p.create_webhook_endpoint(f"https://{NAME}:{port}/hooks").id
        p.grant("acme", "1")
        deliver(p)
        delivery = only(p, endpoint)
        assert names == [NAME]  # the name, not the address, in the TLS handshake
        if certified == NAME:
            assert delivery.status == "delivered"
            assert hosts == [f"{NAME}:{port}"]
        else:
            [attempt] = delivery.attempts
            assert attempt.status_code is None
            assert attempt.error is not None
            assert "certificate" in attempt.error.lower()
            assert hosts == []
            assert delivery.status == "pending"


# -- a slow receiver holds up no one else -----------------------------------------------


def test_a_slow_receiver_does_not_hold_up_the_deliveries_to_other_endpoints(
    db_url: str, clock: FakeClock
) -> None:
    """A send still waiting for its answer (up to the timeout) stays in flight while the
    worker goes on claiming and sending what else is due: another endpoint's next event
    arrives within a poll or two, not after the slow answer."""
    with (
        receiving() as slow,
        receiving() as fast,
        pool_with(db_url, clock, webhook_allowed_networks=LOOPBACK, webhook_timeout_s=10) as pool,
    ):
        slow.delay_s = 4.0
        slow_id = pool.create_webhook_endpoint(slow.url, event_types=["grant.created"]).id
        pool.create_webhook_endpoint(fast.url, event_types=["grant.created"])
        worker = pool.webhook_worker()
        stop = threading.Event()
        running = threading.Thread(target=worker.run, args=(stop,), daemon=True)
        running.start()
        try:
            pool.grant("acme", "10")
            fast.wait_type("grant.created", n=1, timeout_s=10)
            sent = time.monotonic()
            pool.grant("acme", "5")
            fast.wait_type("grant.created", n=2, timeout_s=10)
            waited = time.monotonic() - sent
            assert waited < 2.0, f"the fast endpoint waited {waited:.1f} s for the slow one"
            assert slow.arrivals == []  # still answering the first one
            slow.wait_type("grant.created", n=2, timeout_s=15)  # the slow one gets both
        finally:
            stop.set()
            running.join(timeout=30)
            worker.close()
        statuses = [d.status for d in pool.webhook_deliveries(slow_id)]
        assert statuses == ["delivered", "delivered"]
