"""An import file kept on the server between the desk import's preview and the import itself.

Why kept rather than carried in the form: a form's text field is capped (Starlette: 1 MB, and
base64 makes a file a third larger), so any real list would fail at the second step. Each file
lives under ``DIGEST_VAR_DIR/desk-imports`` as ``<desk session id>-<random id>.csv`` (owner
only), so only the desk session that uploaded it can name it back; it is deleted by the import,
and any file older than ``KEEP`` is swept away whenever another file is kept.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from datetime import timedelta
from pathlib import Path

from digest.config import Settings

#: How long an uploaded file waits for its import.
KEEP = timedelta(hours=1)
#: What a kept file's id looks like (``secrets.token_hex(16)``); anything else names nothing.
_IDENT = re.compile(r"[0-9a-f]{32}")


def _folder(settings: Settings) -> Path:
    return Path(settings.var_dir) / "desk-imports"


def _path(settings: Settings, owner: int, ident: str) -> Path:
    return _folder(settings) / f"{int(owner)}-{ident}.csv"


def keep(settings: Settings, owner: int, raw: bytes) -> str:
    """Store ``raw`` for the desk session ``owner``; the id the form carries to the import."""
    sweep(settings)
    folder = _folder(settings)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    ident = secrets.token_hex(16)
    handle = os.open(_path(settings, owner, ident), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(handle, "wb") as out:
        out.write(raw)
    return ident


def load(settings: Settings, owner: int, ident: str) -> bytes | None:
    """The file kept as ``ident`` for ``owner``, or None (unknown, another session's, expired)."""
    if not _IDENT.fullmatch(ident):
        return None
    path = _path(settings, owner, ident)
    try:
        if time.time() - path.stat().st_mtime > KEEP.total_seconds():
            path.unlink(missing_ok=True)
            return None
        return path.read_bytes()
    except FileNotFoundError:
        return None


def drop(settings: Settings, owner: int, ident: str) -> None:
    """Delete the kept file (after its import)."""
    if _IDENT.fullmatch(ident):
        _path(settings, owner, ident).unlink(missing_ok=True)


def sweep(settings: Settings) -> int:
    """Delete every kept file older than ``KEEP``; how many went."""
    folder = _folder(settings)
    if not folder.is_dir():
        return 0
    cutoff = time.time() - KEEP.total_seconds()
    gone = 0
    for path in folder.glob("*.csv"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                gone += 1
        except FileNotFoundError:  # another request swept it first
            continue
    return gone
