"""What ``digest check`` found: one finding per check, ✓, ! or ✗, with the fix for a ✗."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Level(StrEnum):
    """How a check came out."""

    OK = "ok"
    WARN = "warn"  # works, but a mailbox provider may count it against the sender
    FAIL = "fail"  # mail is likely to be refused or go to spam: exit non-zero
    SKIP = "skip"  # not checked here (no SMTP relay, no posts, no spamassassin)


MARKS = {Level.OK: "✓", Level.WARN: "!", Level.FAIL: "✗", Level.SKIP: "-"}


@dataclass(frozen=True)
class Finding:
    """One check: its name, how it came out, what was seen, and the fix when it failed."""

    name: str
    level: Level
    detail: str
    fix: str = ""

    @property
    def ok(self) -> bool:
        """Whether this check lets ``digest check`` pass (a warning does)."""
        return self.level is not Level.FAIL

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {
            "name": self.name,
            "ok": self.ok,
            "level": self.level.value,
            "detail": self.detail,
            "fix": self.fix,
        }


def ok(name: str, detail: str) -> Finding:
    """A check that passed."""
    return Finding(name, Level.OK, detail)


def warn(name: str, detail: str, fix: str) -> Finding:
    """A check that passed with a warning, and what would be better."""
    return Finding(name, Level.WARN, detail, fix)


def fail(name: str, detail: str, fix: str) -> Finding:
    """A check that failed, and its fix in one sentence."""
    return Finding(name, Level.FAIL, detail, fix)


def skip(name: str, detail: str) -> Finding:
    """A check that does not apply here, and why."""
    return Finding(name, Level.SKIP, detail)


@dataclass(frozen=True)
class Report:
    """Every finding, in the order they were checked."""

    findings: list[Finding] = field(default_factory=list)
    store_checked: bool = True  # False: no store to read, its checks were skipped

    @property
    def passed(self) -> bool:
        """Whether no check failed."""
        return all(f.ok for f in self.findings)

    @property
    def exit_code(self) -> int:
        """0 when every check ran and passed, 1 otherwise: a store that could not be read is
        a check that did not pass (the contract knows only 0 and 1 for ``digest check``)."""
        return 0 if self.passed and self.store_checked else 1

    def summary(self) -> dict[str, int]:
        """How many findings of each level."""
        counts = Counter(f.level for f in self.findings)
        return {level.value: counts[level] for level in Level}

    def as_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``: the checks and a summary."""
        return {
            "checks": [f.as_dict() for f in self.findings],
            "summary": {
                **self.summary(),
                "passed": self.passed,
                "store_checked": self.store_checked,
            },
        }
