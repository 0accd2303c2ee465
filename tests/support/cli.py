"""Running the real ``digest`` entry point in-process, as a shell would, capturing its output."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from digest.cli import main


@dataclass
class Result:
    """What one command printed and its exit code."""

    code: int
    out: str
    err: str


def run(capsys: pytest.CaptureFixture[str], *args: str) -> Result:
    """Run ``digest ARGS`` through ``main`` (the console script's entry) and capture it."""
    capsys.readouterr()
    code = 0
    try:
        main(list(args))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)
