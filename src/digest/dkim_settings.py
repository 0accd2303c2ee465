"""The DKIM settings, their checks and the signer they describe, mixed into ``config.Settings``.

Declared here rather than in ``config.py``, which they would take past 400 lines; being
inherited, they come first in ``Settings.model_fields`` (so in ``digest settings`` and the
README's table).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, cast

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from digest.mail.dkim import DkimSigner
from digest.mail.dkim_keys import check_domain, check_selector, load_signer

_NAMES = ("dkim_selector", "dkim_ed25519_selector", "dkim_domain")


class _Settings(Protocol):
    """What the settings class adds that the checks below read."""

    @property
    def from_domain(self) -> str: ...


class DkimSettings(BaseModel):
    """The ``DIGEST_DKIM_*`` settings: signing is on when a selector and its key file are set."""

    dkim_domain: str | None = Field(None, description="d= of DKIM signatures (unset: From domain)")
    dkim_selector: str | None = Field(None, description="selector of the RSA DKIM key")
    dkim_key_file: Path | None = Field(None, description="PEM file of the RSA DKIM key (0600)")
    dkim_ed25519_selector: str | None = Field(
        None, description="selector of an Ed25519 DKIM key: a second signature (RFC 8463)"
    )
    dkim_ed25519_key_file: Path | None = Field(None, description="PEM file of that Ed25519 key")
    _dkim_signer: DkimSigner | None = None

    @field_validator(*_NAMES)
    @classmethod
    def _dkim_names(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or not value.strip():
            return None
        if info.field_name == "dkim_domain":
            return check_domain(value)
        return check_selector(value.strip())

    @model_validator(mode="after")
    def _dkim_keys(self) -> DkimSettings:
        # Read once, at start-up: a missing or wrong key stops digest then, not at each send.
        self._dkim_signer = load_signer(
            self.dkim_domain or cast(_Settings, self).from_domain,
            (self.dkim_selector, self.dkim_key_file),
            (self.dkim_ed25519_selector, self.dkim_ed25519_key_file),
        )
        return self

    @property
    def dkim_signer(self) -> DkimSigner | None:
        """The DKIM keys every message is signed with, read at start-up; None: no signing."""
        return self._dkim_signer
