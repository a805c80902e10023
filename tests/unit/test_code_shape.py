"""The shape the code keeps (issue 9): short functions, so each one reads at a glance."""

from __future__ import annotations

import ast
from pathlib import Path

import creditpool

SOURCE = Path(creditpool.__file__).parent
FUNCTION_LINES_MAX = 60


def test_no_function_is_longer_than_sixty_lines() -> None:
    long: list[str] = []
    for path in sorted(SOURCE.rglob("*.py")):
        if "migrations" in path.parts:
            continue  # schema history: written once, never edited
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                lines = node.end_lineno - node.lineno + 1
                if lines > FUNCTION_LINES_MAX:
                    long.append(f"{path.relative_to(SOURCE)}:{node.lineno} {node.name} ({lines})")
    assert long == [], "functions over 60 lines:\n" + "\n".join(long)
