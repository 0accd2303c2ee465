"""Benchmark: an edition sent through an email service's API transport vs over SMTP.

The same edition (N subscribers, ~30 KB bodies) is sent twice or more in one sitting by a
``digest worker --until-empty`` process with the same number of connections: over SMTP to
Postfix's ``smtp-sink``, and through each API transport (SES, Postmark, Mailgun) to the local
stand-in of that API (``tests/support/esp_server.py``, one uvicorn process on loopback, which
checks each request and answers as the service documents). Ratio = API rate / SMTP rate
(target >= 0.5); SMTP runs before and after the services, the faster counted.

    .venv/bin/python bench/esp_throughput.py [--n 5000] [--connections 16] [--size 30000]
        [--services ses postmark mailgun] [--out docs/bench-esp.md]
        [--before SRC --rounds 3] [--profile DIR]

``--before SRC`` also runs each service with the code in SRC (the ``src`` folder of an older
checkout, e.g. ``git archive COMMIT | tar -x -C /tmp/base``, then ``/tmp/base/src``), before
and after alternating in each round, every round with its own SMTP runs to compare against.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))  # for tests.support.esp_server

import sqlalchemy as sa
from send_throughput import (
    Run,
    ensure_postfix_tools,
    free_port,
    make_edition,
    run_worker,
    start_sink,
)
from tests.support.esp_server import AWS_KEY_ID, AWS_SECRET, esp_url

from digest.db import Database
from digest.models import Delivery

ROOT = Path(__file__).resolve().parents[1]
SERVE = (
    "import sys, uvicorn; from tests.support.esp_server import FakeEsp; "
    "uvicorn.run(FakeEsp(record=False), host='127.0.0.1', port=int(sys.argv[1]), "
    "log_level='warning', access_log=False)"
)


def start_fake(port: int) -> subprocess.Popen[bytes]:
    """The API stand-in in a process of its own, as a real service would be."""
    proc = subprocess.Popen([sys.executable, "-c", SERVE, str(port)], cwd=ROOT)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the API stand-in did not start")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sent(db: Database) -> int:
    with db.transaction() as s:
        return int(
            s.execute(sa.select(sa.func.count()).where(Delivery.status == "sent")).scalar_one()
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--size", type=int, default=30_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--services", nargs="+", default=["ses", "postmark", "mailgun"])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench-esp.md")
    parser.add_argument(
        "--profile", type=Path, help="write a cProfile of each service's worker to DIR/NAME.prof"
    )
    parser.add_argument("--before", type=Path, help="the src folder of the code to compare with")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    os.environ.update(AWS_ACCESS_KEY_ID=AWS_KEY_ID, AWS_SECRET_ACCESS_KEY=AWS_SECRET)
    ensure_postfix_tools()
    sink_port, api_port = free_port(), free_port()
    sink, fake = start_sink(sink_port), start_fake(api_port)
    runs: dict[str, Run] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            db = Database(f"sqlite:///{workdir / 'bench.db'}")
            db.upgrade()

            def once(label: str, url: str | None, src: Path | None = None) -> Run:
                make_edition(db, args.n, args.size)
                env = {"PYTHONPATH": str(src)} if src else None
                prof = args.profile / f"{label}.prof" if args.profile and url else None
                server = fake.pid if url else sink.pid
                server_before = cpu_seconds(server)
                run = run_worker(
                    db,
                    sink_port,
                    args.connections,
                    workdir,
                    args.batch,
                    smtp_url=url,
                    profile=prof,
                    extra_env=env,
                )
                assert sent(db) == args.n == run.n, (label, sent(db), run.n)
                run.server_cpu = cpu_seconds(server) - server_before
                print(
                    f"{label}: {run.rate:,.0f} msg/s ({run.seconds:.1f} s); CPU per message: "
                    f"worker {run.cpu / run.n * 1000:.2f} ms, "
                    f"receiver {run.server_cpu / run.n * 1000:.2f} ms",
                    flush=True,
                )
                return run

            if args.before is not None:
                rows: list[tuple[int, str, dict[str, Run]]] = []
                for round_ in range(args.rounds):
                    smtp_runs = [once("smtp", None)]
                    this_round: list[tuple[int, str, dict[str, Run]]] = []
                    for service in args.services:
                        url = esp_url(service, f"http://127.0.0.1:{api_port}")
                        order = ["before", "after"] if round_ % 2 == 0 else ["after", "before"]
                        pair = {
                            which: once(
                                f"{service} {which}",
                                url,
                                args.before if which == "before" else None,
                            )
                            for which in order
                        }
                        this_round.append((round_, service, pair))
                    smtp_runs.append(once("smtp", None))
                    best = max(smtp_runs, key=lambda r: r.rate)
                    rows += [(r, svc, pair | {"smtp": best}) for r, svc, pair in this_round]
                db.dispose()
                write_comparison(args, rows)
                return
            smtp_before = once("smtp", None)
            for service in args.services:
                runs[service] = once(service, esp_url(service, f"http://127.0.0.1:{api_port}"))
            smtp_after = once("smtp", None)
            db.dispose()
    finally:
        for proc in (sink, fake):
            proc.terminate()
            proc.wait()
    smtp = max(smtp_before, smtp_after, key=lambda r: r.rate)
    write_report(args, smtp, runs)


def write_comparison(args: argparse.Namespace, rows: list[tuple[int, str, dict[str, Run]]]) -> None:
    """Before/after per service and round, each against its round's faster SMTP run."""
    lines = [
        f"`bench/esp_throughput.py --n {args.n} --connections {args.connections} --size "
        f"{args.size} --services {' '.join(args.services)} --before SRC --rounds {args.rounds}` "
        f"({os.cpu_count()} CPUs, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average "
        f"{os.getloadavg()[0]:.1f} at the end)",
        "",
        "| round | service | SMTP msg/s | before msg/s | after msg/s | before ratio | after ratio "
        "| worker CPU ms/msg before / after (SMTP) |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for round_, service, runs in rows:
        smtp, before, after = runs["smtp"], runs["before"], runs["after"]
        lines.append(
            f"| {round_ + 1} | {service} | {smtp.rate:,.0f} | {before.rate:,.0f} "
            f"| {after.rate:,.0f} | {before.rate / smtp.rate:.2f} "
            f"| **{after.rate / smtp.rate:.2f}** "
            f"| {before.cpu / before.n * 1000:.2f} / {after.cpu / after.n * 1000:.2f} "
            f"({smtp.cpu / smtp.n * 1000:.2f}) |"
        )
    print("\n".join(lines))
    with args.out.open("a", encoding="utf-8") as out:
        out.write("\n" + "\n".join(lines) + "\n")


def write_report(args: argparse.Namespace, smtp: Run, runs: dict[str, Run]) -> None:
    cmd = (
        f"python bench/esp_throughput.py --n {args.n} --connections {args.connections} "
        f"--size {args.size} --services {' '.join(args.services)}"
    )
    lines = [
        "## Delivery: email service API transports vs SMTP",
        "",
        f"Reproduce: `.venv/bin/{cmd}` ({os.cpu_count()} CPUs, {datetime.now(UTC):%Y-%m-%d}, "
        "SQLite store; smtp-sink and the API stand-in on loopback).",
        "",
        f"{args.n:,} messages of ~{args.size // 1000} KB, {args.connections} connections, one "
        "`digest worker --until-empty` each run. Ratio = API rate / SMTP rate (target >= 0.5).",
        "",
        "| transport | rate | time | ratio to SMTP |",
        "| --- | ---: | ---: | ---: |",
        f"| SMTP to smtp-sink (faster of before/after) | {smtp.rate:,.0f} msg/s "
        f"| {smtp.seconds:.1f} s | 1.00 |",
    ]
    for service, run in runs.items():
        lines.append(
            f"| {service} API to its stand-in | {run.rate:,.0f} msg/s | {run.seconds:.1f} s "
            f"| **{run.rate / smtp.rate:.2f}** |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
