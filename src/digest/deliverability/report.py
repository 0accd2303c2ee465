"""What ``digest check`` found: one finding per check, ✓, ! or ✗, with the fix for a ✗."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from digest.errors import StoreUnavailable


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
        """0 when all passed, 1 on any failure, else 69 (EX_UNAVAILABLE, as every command
        answers an unreachable store) when the store's part could not run."""
        if not self.passed:
            return 1  # what the operator must fix first, store or no store
        return 0 if self.store_checked else StoreUnavailable.exit_code

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
