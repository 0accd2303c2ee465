"""The file transport: each message written as one ``.eml`` file in a folder, nothing sent.

Files are named after the Message-ID, so a message sent again after a crash overwrites its
first copy instead of adding a second; each is written to a temporary name, flushed to disk
and renamed, so a reader never sees half a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
from pathlib import Path

from digest.delivery.replies import Stage
from digest.delivery.transport import Result
from digest.mail.message_id import header_message_id

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]")


def file_name(data: bytes) -> str:
    """The file name of a message: its Message-ID made safe for a file system."""
    ident = header_message_id(data) or "no-message-id"
    return _UNSAFE.sub("_", ident)[:200] + ".eml"


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so the file is either absent, the old one, or complete."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".eml")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class FileTransport:
    """Writes each message to ``folder/<message-id>.eml``."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    async def send(self, envelope_from: str, rcpt: str, data: bytes) -> Result:
        """Write the message; a disk error defers it like a temporary SMTP failure."""
        try:
            await asyncio.to_thread(self._write, data)
        except OSError as exc:
            return Result(
                None, f"cannot write to {self.folder}: {exc.strerror or exc}", Stage.CONNECT
            )
        return Result(250, "written", Stage.DATA)

    def _write(self, data: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomically(self.folder / file_name(data), data)

    async def close(self) -> None:
        """Nothing to close."""
