"""Start-up cost of the ``digest`` command against the imports it cannot do without.

Run: .venv/bin/python bench/cli_startup.py [--runs 31]

Four programs run as separate processes, in turn, round after round (so a busy moment of the
machine falls on all four alike), against one SQLite store in a temporary folder:

- ``python -c "import click"``, the baseline of ``digest --help``;
- ``digest --help``, target: within 3x the baseline's median;
- ``python -c "import sqlmodel, pydantic_settings"``, what ``digest subscribers show`` truly
  needs (the store's models and the settings);
- ``digest subscribers show EMAIL``, target: within 1.5x that median.

The first round warms the bytecode caches and is not counted. Prints each median, the ratios
and whether each target is met, as Markdown rows for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PYTHON = sys.executable
DIGEST = str(Path(sys.executable).with_name("digest"))
EMAIL = "ann@example.com"


def programs() -> dict[str, list[str]]:
    """Name -> command line, in the order they run each round."""
    return {
        "import click": [PYTHON, "-c", "import click"],
        "digest --help": [DIGEST, "--help"],
        "import sqlmodel, pydantic_settings": [PYTHON, "-c", "import sqlmodel, pydantic_settings"],
        "digest subscribers show": [DIGEST, "subscribers", "show", EMAIL],
    }


def timed(command: list[str], env: dict[str, str], cwd: Path) -> float:
    """Wall seconds of one run; a failed run stops the benchmark."""
    t0 = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, check=False)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed: {done.stderr.decode(errors='replace').strip()}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=31, help="counted rounds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # An installed digest has its bytecode compiled; without this, a shell that sets
        # PYTHONDONTWRITEBYTECODE would have every run compile digest's own modules anew.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("DIGEST_") and k != "PYTHONDONTWRITEBYTECODE"
        }
        env |= {
            "DIGEST_DATABASE_URL": f"sqlite:///{folder / 'digest.db'}",
            "DIGEST_SECRET_KEY": "bench-secret-key-0123456789-abcdefghijklmnop",
            "DIGEST_SMTP_URL": f"file:{folder / 'outbox'}",
        }
        timed([DIGEST, "db", "upgrade"], env, folder)
        timed([DIGEST, "subscribers", "add", EMAIL, "--name", "Ann", "--confirmed"], env, folder)
        times: dict[str, list[float]] = {name: [] for name in programs()}
        for round_ in range(args.runs + 1):
            for name, command in programs().items():
                seconds = timed(command, env, folder)
                if round_:
                    times[name].append(seconds)
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"{args.runs} rounds, medians (load average {os.getloadavg()[0]:.1f} at the end)\n")
    print("| program | median | ratio | target | met |")
    print("| --- | --- | --- | --- | --- |")
    pairs = (
        ("import click", "digest --help", 3.0),
        ("import sqlmodel, pydantic_settings", "digest subscribers show", 1.5),
    )
    for base, program, target in pairs:
        ratio = median[program] / median[base]
        print(f"| `{base}` | {median[base] * 1000:.0f} ms | | | |")
        print(
            f"| `{program}` | {median[program] * 1000:.0f} ms | {ratio:.2f} | "
            f"<= {target} | {'yes' if ratio <= target else 'no'} |"
        )


if __name__ == "__main__":
    main()
