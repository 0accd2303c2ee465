"""Benchmark: an edition for N subscribers sent end to end, against Postfix's smtp-source.

Both sides talk to the same Postfix ``smtp-sink`` on loopback, with the same number of
connections and the same message size, in the same sitting:

* digest: N subscribers inserted set-wise, one ~30 KB Body, ``enqueue_digests``, then a
  ``digest worker --until-empty`` process claims, builds (personal links, Message-ID), sends and
  records every outcome. Its rate is N / the worker's sending time; its peak memory is the
  worker process's ``ru_maxrss``.
* baseline: ``smtp-source -d -s CONNECTIONS -m N -l SIZE``, C, the same payload size, nothing
  built and nothing recorded: the floor of what the sink and the loopback allow.

    .venv/bin/python bench/send_throughput.py [--n 10000 100000] [--connections 16]
        [--size 30000] [--pg postgresql+psycopg://...] [--out docs/bench-delivery.md]
    .venv/bin/python bench/send_throughput.py --dkim [--ed25519] [--n 10000]
    .venv/bin/python bench/send_throughput.py --tracking-ratio [--links 20] [--n 10000]

With ``--dkim`` the same worker runs with DKIM signing off, on, and off again on the same sink
and store, and the ratio is the signed rate over the faster unsigned one (the table is printed;
``docs/benchmarks.md`` keeps it). With ``--tracking-ratio`` the body links to ``--links``
posts and has its tracked variant, and the worker runs with ``DIGEST_TRACKING`` off and
aggregate, twice each (off, aggregate, aggregate, off); the ratio is the better aggregate run
over the better off one, and aggregate is also set against smtp-source.

Needs Debian's ``postfix`` package for the two tools; it is installed if missing and the mail
system it may start is stopped (only ``smtp-sink`` runs).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from _readers import subscribe_everyone

from digest.compose.tracked_links import rewrite
from digest.db import Database
from digest.delivery import outbox
from digest.mail.dkim_keys import keygen
from digest.mail.message import TRACK
from digest.models import Body, Delivery, Edition, Subscriber, Subscription
from digest.tracking import MailKind, MailRef, tracked_url

SINK = "/usr/sbin/smtp-sink"
BENCH_SECRET = "bench-secret-key-0123456789-abcdefghijklmnopq"
BENCH_BASE = "https://digest.example.org"
SOURCE = "/usr/sbin/smtp-source"
ROOT = Path(__file__).resolve().parents[1]


def ensure_postfix_tools() -> None:
    if not (Path(SINK).exists() and Path(SOURCE).exists()):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update"], check=True, env=env, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "postfix"], check=True, env=env, capture_output=True
        )
    # The package may start the whole mail system; we only want the two test tools.
    subprocess.run(["postfix", "stop"], capture_output=True, check=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_sink(port: int) -> subprocess.Popen[bytes]:
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    proc = subprocess.Popen(
        [SINK, *user, "-m", "512", f"127.0.0.1:{port}", "512"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("smtp-sink did not start")


def body_text(size: int, links: int = 0) -> tuple[str, str]:
    """A digest-like body: ~40 % plain text, ~60 % HTML, with the four placeholders; with
    ``links``, that many posts each linked from both parts (a headline and "Read more")."""
    para = (
        "Sunday, May 5, 2024 - Latest Posts: the council votes on the new budget, the harbour "
        "reopens after repairs, and the festival line-up is out. Read more on the site.\n"
    )
    posts = [
        f"https://news.example.org/2024/05/05/story-{i}?utm_source=digest&amp;utm_medium=email"
        for i in range(links)
    ]
    text_size, html_size = int(size * 0.4), int(size * 0.6)
    text = "Hello %%NAME%%,\n\n" + para * (text_size // len(para))
    text += "".join(f"\nStory {i}\n  {u.replace('&amp;', '&')}\n" for i, u in enumerate(posts))
    text += "\nUnsubscribe: %%UNSUBSCRIBE_URL%%\nPreferences: %%PREFERENCES_URL%%\n"
    item = f"<tr><td style='padding:8px;font-family:Georgia'><p>{para.strip()}</p></td></tr>\n"
    html = "<html><body><p>Hello %%NAME%% (%%EMAIL%%)</p><table>"
    html += "".join(
        f"<tr><td><h3><a href='{u}'>Story {i}</a></h3><p><a href='{u}'>Read more</a></p></td></tr>"
        for i, u in enumerate(posts)
    )
    html += item * (max(0, html_size - len(html)) // len(item))
    html += "</table><a href='%%UNSUBSCRIBE_URL%%'>Unsubscribe</a> "
    html += "<a href='%%PREFERENCES_URL%%'>Preferences</a></body></html>"
    return text, html


def tracked_body(text: str, html: str, edition_id: int) -> tuple[str, str]:
    """The tracked variant of a bench body, as ``compose/mail_links.py`` makes an edition's:
    every post link through ``/r/`` with the ``%%TRACK%%`` placeholder."""
    mail = MailRef(MailKind.EDITION, edition_id)
    new_html, new_text = rewrite(
        html, text, lambda url: tracked_url(BENCH_BASE, BENCH_SECRET.encode(), mail, url, TRACK)
    )
    return new_text, new_html


def make_edition(db: Database, n: int, size: int, links: int = 0) -> float:
    """Insert N active subscribers and queue one edition for them; returns seconds taken.
    With ``links`` its body links to that many posts and has its tracked variant."""
    now = datetime.now(UTC)
    start = time.perf_counter()
    with db.transaction() as s:
        s.execute(sa.delete(Delivery.__table__))
        s.execute(sa.delete(Subscription.__table__))
        s.execute(sa.delete(Subscriber.__table__))
        if db.dialect == "postgresql":
            series = "SELECT g AS i FROM generate_series(1, :n) AS g"
        else:
            series = (
                "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < :n) "
                "SELECT i FROM seq"
            )
        s.execute(
            sa.text(
                "INSERT INTO subscribers (email, name, timezone, send_hour, created_at, "
                "updated_at) "
                "SELECT 'reader' || CAST(i AS TEXT) || '@example.org', "
                "'Reader ' || CAST(i AS TEXT), 'UTC', 7, :now, :now "
                f"FROM ({series}) AS numbers"
            ),
            {"n": n, "now": now if db.dialect == "postgresql" else now.replace(tzinfo=None)},
        )
        subscribe_everyone(s, 1)
        edition = Edition(key=f"1/daily:bench-{uuid.uuid4().hex[:8]}", cadence="daily")
        s.add(edition)
        s.flush()
        text, html = body_text(size, links)
        body = Body(edition_id=edition.id, subject="The Daily Brief", text=text, html=html)
        if links:
            body.tracked_text, body.tracked_html = tracked_body(text, html, int(edition.id or 0))
        s.add(body)
        s.flush()
        assert edition.id is not None and body.id is not None
        added = outbox.enqueue_digests(
            s,
            edition_id=edition.id,
            body_id=body.id,
            period_key=edition.key,
            send_by=now + timedelta(hours=12),
            subscriber_filter=sa.and_(
                Subscription.newsletter_id == 1, Subscription.status == "active"
            ),
            message_id_prefix=f"bench.{edition.id}",
            domain="example.org",
        )
        assert added == n, added
    return time.perf_counter() - start


@dataclass
class Run:
    n: int
    seconds: float
    wall: float
    maxrss_mb: float
    cpu: float = 0.0  # the worker processes' user + system seconds
    server_cpu: float = 0.0  # the receiving server's, where a bench measures it

    @property
    def rate(self) -> float:
        return self.n / self.seconds


def run_worker(
    db: Database,
    port: int,
    connections: int,
    workdir: Path,
    batch: int,
    workers: int = 1,
    *,
    smtp_url: str | None = None,
    extra_env: dict[str, str] | None = None,
    profile: Path | None = None,
) -> Run:
    """Run ``workers`` worker processes sharing ``connections``; rate over the longest run.
    They send to the sink on ``port``, or wherever ``smtp_url`` says (an email service's API)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(
        DIGEST_DATABASE_URL=db.url,
        DIGEST_SMTP_URL=smtp_url or f"smtp://127.0.0.1:{port}",
        DIGEST_SMTP_CONNECTIONS=str(max(1, connections // workers)),
        DIGEST_SECRET_KEY=BENCH_SECRET,
        DIGEST_FROM="The Daily Brief <news@example.org>",
        **(extra_env or {}),
    )
    code = "import sys; from digest.cli import main; main(sys.argv[1:])"
    if profile is not None:
        # cProfile of the (single) worker process, for finding where its CPU goes.
        code = (
            "import cProfile, sys; from digest.cli import main; "
            f"cProfile.run('main(sys.argv[1:])', {str(profile)!r})"
        )
    args = ["worker", "--until-empty", "--json", "--batch-size", str(batch)]
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, *args],
            env=env,
            cwd=workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(workers)
    ]
    sent, seconds, maxrss, cpu = 0, 0.0, 0.0, 0.0
    for proc in procs:
        assert proc.stdout is not None
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"worker failed: {out.decode()}")
        totals = json.loads(out)
        sent += totals["counts"].get("sent", 0)
        seconds = max(seconds, totals["seconds"])
        maxrss = max(maxrss, usage.ru_maxrss / 1024)
        cpu += usage.ru_utime + usage.ru_stime
    return Run(sent, seconds, time.perf_counter() - start, maxrss, cpu)


def run_source(port: int, n: int, connections: int, size: int) -> Run:
    start = time.perf_counter()
    subprocess.run(
        [SOURCE, "-d", "-s", str(connections), "-m", str(n), "-l", str(size),
         "-f", "news@example.org", "-t", "reader@example.org", f"127.0.0.1:{port}"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    return Run(n, elapsed, elapsed, 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--size", type=int, default=30_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes sharing the connections"
    )
    parser.add_argument("--pg", help="also run on this PostgreSQL database (it is emptied)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench-delivery.md")
    parser.add_argument("--dkim", action="store_true", help="signing off vs on, same run")
    parser.add_argument("--ed25519", action="store_true", help="with --dkim: a second signature")
    parser.add_argument(
        "--tracking-ratio",
        action="store_true",
        help="DIGEST_TRACKING=aggregate vs off on a body of linked posts, same run",
    )
    parser.add_argument("--links", type=int, default=20, help="with --tracking-ratio: post links")
    args = parser.parse_args()
    ensure_postfix_tools()
    port = free_port()
    sink = start_sink(port)
    rows: list[str] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            stores = [("SQLite", f"sqlite:///{workdir / 'bench.db'}")]
            if args.pg:
                stores.append(("PostgreSQL", args.pg))
            for store, url in stores:
                db = Database(url)
                db.upgrade()
                if args.dkim:
                    rows += compare_signing(db, store, port, workdir, args)
                if args.tracking_ratio:
                    rows += compare_tracking(db, store, port, workdir, args)
                for n in [] if args.dkim or args.tracking_ratio else args.n:
                    prep = make_edition(db, n, args.size)
                    # smtp-source before and after, the faster counted: a busy machine slows
                    # the baseline too, and the ratio should not flatter digest for it.
                    before = run_source(port, n, args.connections, args.size)
                    ours = run_worker(db, port, args.connections, workdir, args.batch, args.workers)
                    after = run_source(port, n, args.connections, args.size)
                    base = max(before, after, key=lambda r: r.rate)
                    with db.transaction() as s:
                        sent = s.execute(
                            sa.select(sa.func.count()).where(Delivery.status == "sent")
                        ).scalar_one()
                    assert sent == n == ours.n, (sent, n, ours.n)
                    ratio = ours.rate / base.rate
                    label = store if args.workers == 1 else f"{store}, {args.workers} workers"
                    line = (
                        f"| {label} | {n:,} | {prep:.1f} s | {ours.rate:,.0f} msg/s "
                        f"({ours.seconds:.1f} s; {ours.wall:.1f} s with start-up) | "
                        f"{base.rate:,.0f} msg/s | **{ratio:.2f}** | "
                        f"{1e6 / ours.rate:.0f} µs | {ours.maxrss_mb:.0f} MB |"
                    )
                    print(line, flush=True)
                    rows.append(line)
                db.dispose()
                if os.path.exists(workdir / "bench.db"):
                    os.unlink(workdir / "bench.db")
    finally:
        sink.terminate()
        sink.wait()
    if not (args.dkim or args.tracking_ratio):
        write_report(args, rows)
    elif args.tracking_ratio:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        head = [
            "| store | messages | links | off | aggregate | aggregate / off "
            "| CPU per message, off / aggregate | smtp-source | aggregate / smtp-source |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        args.out.write_text("\n".join(head + rows) + "\n", encoding="utf-8")
        print(f"written to {args.out}")


def compare_signing(
    db: Database, store: str, port: int, workdir: Path, args: argparse.Namespace
) -> list[str]:
    """The worker's rate with DKIM signing off, on, and off again: rows of a Markdown table."""
    selector = f"b{uuid.uuid4().hex[:6]}"
    env = {"DIGEST_DKIM_SELECTOR": selector, "DIGEST_DKIM_KEY_FILE": str(workdir / "rsa.pem")}
    keygen(workdir / "rsa.pem", selector=selector, domain="example.org")
    if args.ed25519:
        keygen(workdir / "ed.pem", selector=selector + "e", domain="example.org", ed25519=True)
        env |= {"DIGEST_DKIM_ED25519_SELECTOR": selector + "e",
                "DIGEST_DKIM_ED25519_KEY_FILE": str(workdir / "ed.pem")}  # fmt: skip
    signing = "RSA-2048 + Ed25519" if args.ed25519 else "RSA-2048"
    rows = []
    for n in args.n:
        runs = []
        for signed in (False, True, False):
            make_edition(db, n, args.size)
            extra = env if signed else None
            runs.append(
                run_worker(db, port, args.connections, workdir, args.batch, 1, extra_env=extra)
            )
        off = max(runs[0], runs[2], key=lambda r: r.rate)
        on = runs[1]
        line = (
            f"| {store} | {n:,} | {signing} | {off.rate:,.0f} msg/s | {on.rate:,.0f} msg/s | "
            f"**{on.rate / off.rate:.2f}** | "
            f"{1e6 * off.cpu / n:.0f} µs | {1e6 * on.cpu / n:.0f} µs |"
        )
        print(line, flush=True)
        rows.append(line)
    return rows


def compare_tracking(
    db: Database, store: str, port: int, workdir: Path, args: argparse.Namespace
) -> list[str]:
    """The worker's rate with DIGEST_TRACKING off, aggregate, aggregate again, off again, on
    the same body (its links and its tracked variant), and smtp-source's: table rows."""
    rows = []
    for n in args.n:
        runs: dict[str, list[Run]] = {"off": [], "aggregate": []}
        # ABBA: a drift over the sitting (a warming cache, a growing file) favours neither.
        for mode in ("off", "aggregate", "aggregate", "off"):
            make_edition(db, n, args.size, args.links)
            env = {"DIGEST_TRACKING": mode}
            runs[mode].append(
                run_worker(db, port, args.connections, workdir, args.batch, 1, extra_env=env)
            )
            assert runs[mode][-1].n == n, runs[mode][-1]
        base = run_source(port, n, args.connections, args.size)
        # The better of two each: a busy machine (shared cores) slows one run, not the mode.
        off = max(runs["off"], key=lambda r: r.rate)
        on = max(runs["aggregate"], key=lambda r: r.rate)
        # CPU per message (the worker process's user + system time, mean of its two runs):
        # what tracking costs, less moved by the machine's other load than a rate.
        cpu_off, cpu_on = (1e6 * sum(r.cpu for r in runs[m]) / (2 * n) for m in runs)
        line = (
            f"| {store} | {n:,} | {args.links} | {off.rate:,.0f} msg/s | {on.rate:,.0f} msg/s | "
            f"**{on.rate / off.rate:.2f}** | {cpu_off:.0f} / {cpu_on:.0f} µs | "
            f"{base.rate:,.0f} msg/s | **{on.rate / base.rate:.2f}** |"
        )
        print(line, flush=True)
        rows.append(line)
    return rows


def write_report(args: argparse.Namespace, rows: list[str]) -> None:
    cmd = "python bench/send_throughput.py " + " ".join(
        ["--n", *map(str, args.n), "--connections", str(args.connections), "--size",
         str(args.size), "--batch", str(args.batch)]
        + (["--workers", str(args.workers)] if args.workers > 1 else [])
        + (["--pg", "URL"] if args.pg else [])
    )  # fmt: skip
    head = [
        "## Delivery: end-to-end send throughput",
        "",
        f"Reproduce: `.venv/bin/{cmd}` ({os.cpu_count()} CPUs, "
        f"{datetime.now(UTC):%Y-%m-%d}, Postfix smtp-sink on loopback).",
        "",
        f"Each message ~{args.size // 1000} KB, {args.connections} SMTP connections. digest: "
        "enqueue_digests, then one `digest worker --until-empty` process claims batches of "
        f"{args.batch}, builds each message (personal unsubscribe/preferences links, Message-ID), "
        "sends it and records the outcome. Baseline: `smtp-source -d` (C, nothing built or "
        "recorded) to the same sink in the same sitting, run just before and just after digest "
        "(the faster counted). Ratio = digest rate / smtp-source rate "
        "(target >= 0.25); peak memory = worker `ru_maxrss` (target < 300 MB).",
        "",
        "| store | messages | make edition | digest worker | smtp-source | ratio | per message "
        "| peak memory |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(head + rows) + "\n", encoding="utf-8")
    print(f"written to {args.out}")


if __name__ == "__main__":
    if not shutil.which("postfix") and os.geteuid() != 0:
        sys.exit("install Debian's postfix package first (apt-get install postfix)")
    main()
