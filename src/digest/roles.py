"""Who may do what on the desk: three roles, each allowing all the one below it does.

owner: everything, accounts and the desk's policy included; editor: posts, featuring,
announcements, alerts, subscribers and feeds; viewer: reading only.
"""

from __future__ import annotations

from enum import StrEnum

from digest.errors import InvalidInput


class Role(StrEnum):
    """A desk account's role."""

    VIEWER = "viewer"
    EDITOR = "editor"
    OWNER = "owner"

    @property
    def rank(self) -> int:
        """Its place in the order viewer < editor < owner."""
        return _ORDER.index(self)

    def allows(self, needed: Role) -> bool:
        """Whether this role may do what ``needed`` may."""
        return self.rank >= needed.rank


_ORDER = [Role.VIEWER, Role.EDITOR, Role.OWNER]


def parse_role(value: str) -> Role:
    """The role named ``value`` (case-insensitive), or InvalidInput naming the three."""
    try:
        return Role(value.strip().lower())
    except ValueError:
        raise InvalidInput(f"unknown role {value!r}: use owner, editor or viewer") from None
