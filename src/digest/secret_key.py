"""The signing key digest makes for itself when none is configured, and how strong a secret must be.

Every process on the machine must sign and check links with the same key, including several
that start at the same moment on a new machine (``serve`` and a ``worker`` from one unit file),
so the file is made once, atomically, and read by everyone after.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path

from digest.errors import SettingsError

MIN_LENGTH = 32
#: Bearer tokens (admin API, metrics) are guessable below this.
MIN_TOKEN_LENGTH = 24
#: Each secret setting: its shortest accepted length, and what leaving it unset does instead.
SECRET_SETTINGS: dict[str, tuple[int, str]] = {
    "secret_key": (MIN_LENGTH, "remove it to use the generated key file"),
    "admin_token": (MIN_TOKEN_LENGTH, "remove it to turn the admin API off"),
    "metrics_token": (MIN_TOKEN_LENGTH, "remove it to leave /metrics without a token"),
}


def machine_secret(var_dir: Path, *, make: bool) -> str | None:
    """The key in ``secret.key`` under ``var_dir``, made once when ``make`` and there is none;
    None when there is none and ``make`` is false. SettingsError when it cannot be had."""
    key_file = var_dir / "secret.key"
    if not (make or key_file.exists()):
        return None
    try:
        return stored_secret(key_file)
    except OSError as exc:
        raise SettingsError(
            f"DIGEST_SECRET_KEY: not set, and {key_file} cannot be written ({exc})"
        ) from None
    except ValueError as exc:
        raise SettingsError(f"DIGEST_SECRET_KEY: {exc}") from None


def stored_secret(path: Path) -> str:
    """The key in ``path``, made once (mode 0600) if there is none yet.

    OSError when the file cannot be read or written; ValueError when it holds a short key.
    """
    if path.exists():
        return _read_secret(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Each process writes its own temporary file and links it into place; link() fails if
    # another process got there first, and then everyone reads the winner's key.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secret-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(secrets.token_urlsafe(48))
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)
    return _read_secret(path)


def _read_secret(path: Path) -> str:
    key = path.read_text(encoding="utf-8").strip()
    if len(key) < MIN_LENGTH:
        raise ValueError(f"{path} holds a key shorter than {MIN_LENGTH} characters")
    return key


def check_secret(field: str, value: str | None) -> str | None:
    """The secret setting ``field`` as given, refused when blank or short enough to guess."""
    if value is None:
        return None
    minimum, unset = SECRET_SETTINGS[field]
    if not value.strip():
        raise ValueError(f"is empty; {unset}, or set at least {minimum} characters")
    if value != value.strip():
        # A bearer token is compared exactly: a stray space would lock everyone out silently.
        raise ValueError("starts or ends with a space; remove it")
    if len(value) < minimum:
        raise ValueError(
            f"too short ({len(value)} characters); use at least {minimum}, "
            "e.g. from python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return value
