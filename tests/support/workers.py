"""Running ``digest worker`` as real processes for the crash, scale-out and shutdown tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

WORKER = "import sys; from digest.cli import main; main(sys.argv[1:])"


def worker_env(database_url: str, smtp_url: str, **extra: str) -> dict[str, str]:
    """The environment of a worker process: only our settings, nothing from the outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(
        DIGEST_DATABASE_URL=database_url,
        DIGEST_SMTP_URL=smtp_url,
        DIGEST_SECRET_KEY="test-secret-key-0123456789-abcdefghijklmnop",
        DIGEST_SMTP_TIMEOUT="5",
    )
    env.update(extra)
    return env


def start_worker(env: dict[str, str], cwd: Path, *args: str) -> subprocess.Popen[bytes]:
    """Start ``digest worker ARGS`` in its own process."""
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, "worker", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
