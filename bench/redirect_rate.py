"""Tracked-link redirect: ``GET /r/TOKEN`` against ``GET /healthz`` on one server, one run.

Starts ``digest serve`` (uvicorn on loopback, SQLite store, aggregate tracking: every
redirect hands its click to the recorder, which stores and folds them each second), then:

1. flat out: ``--connections`` keep-alive connections, each sending its next request when
   the answer came, for ``--seconds``, alternating healthz and /r/ rounds (two each);
2. steady: /r/ at a quarter of its flat-out rate, latency counted from when each request was
   due (a slow server cannot hide its queue), p50 and p99.

The client is a small raw-socket HTTP/1.1 client on asyncio (httpx costs more CPU per
request than the server does, on the same two cores). Prints the markdown for
docs/benchmarks.md.

    .venv/bin/python bench/redirect_rate.py [--seconds 8] [--connections 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
DIGEST = str(Path(sys.executable).parent / "digest")
SECRET = "bench-secret-key-0123456789-abcdefghijklmnop"
AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tokens(count: int) -> list[str]:
    """Paths of tracked links: 10 stories of one edition, each path a copy of its own."""
    from digest.tracking import MailKind, MailRef, aggregate_copy, link_token

    mail = MailRef(MailKind.EDITION, 1)
    shared = [
        link_token(SECRET.encode(), mail, f"https://news.example/2026/12/story-{i}?utm_source=x")
        for i in range(10)
    ]
    rng = random.Random(7)
    return [f"/r/{rng.choice(shared)}{aggregate_copy(SECRET.encode(), mail)}" for _ in range(count)]


class Connection:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def get(self, path: str) -> int:
        """Send one GET, read the whole answer; its status."""
        self.writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {AGENT}\r\n\r\n".encode()
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


async def flat_out(port: int, paths: list[str], seconds: float, connections: int) -> dict:
    """Requests as fast as answers come back, over ``connections`` connections."""
    conns = [await Connection.open(port) for _ in range(connections)]
    done = 0
    bad = 0
    stop = time.perf_counter() + seconds

    async def run(conn: Connection, offset: int) -> None:
        nonlocal done, bad
        i = offset
        while time.perf_counter() < stop:
            status = await conn.get(paths[i % len(paths)])
            bad += status not in (200, 302)
            done += 1
            i += connections

    start = time.perf_counter()
    await asyncio.gather(*(run(c, k) for k, c in enumerate(conns)))
    elapsed = time.perf_counter() - start
    for c in conns:
        c.close()
    return {"rps": done / elapsed, "requests": done, "bad": bad}


async def steady(port: int, paths: list[str], rate: float, seconds: float, pool: int) -> dict:
    """``rate`` requests a second on schedule; latency from each request's due time."""
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(pool):
        idle.put_nowait(await Connection.open(port))
    count = int(rate * seconds)
    latencies: list[float] = []
    bad = 0
    start = time.perf_counter() + 0.2

    async def one(i: int) -> None:
        nonlocal bad
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        conn = await idle.get()
        status = await conn.get(paths[i % len(paths)])
        latencies.append((time.perf_counter() - due) * 1000)
        bad += status not in (200, 302)
        idle.put_nowait(conn)

    await asyncio.gather(*(one(i) for i in range(count)))
    while not idle.empty():
        idle.get_nowait().close()
    latencies.sort()
    return {
        "rate": rate,
        "requests": count,
        "p50": statistics.median(latencies),
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "max": latencies[-1],
        "bad": bad,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="digest-redirect-"))
    port = _free_port()
    url = f"sqlite:///{tmp / 'digest.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(
        DIGEST_DATABASE_URL=url,
        DIGEST_SECRET_KEY=SECRET,
        DIGEST_SMTP_URL=f"file:{tmp / 'outbox'}",
        DIGEST_VAR_DIR=str(tmp),
        DIGEST_BASE_URL=f"http://127.0.0.1:{port}",
        DIGEST_TRACKING="aggregate",
    )
    log = (tmp / "serve.log").open("w")
    server = subprocess.Popen(
        [DIGEST, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env, stderr=log
    )
    paths = tokens(20_000)
    try:
        for _ in range(300):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise SystemExit("digest serve did not start")
        assert httpx.get(f"http://127.0.0.1:{port}{paths[0]}").status_code == 302
        load_before = os.getloadavg()[0]
        warm = asyncio.run(flat_out(port, paths, 1.0, args.connections))
        health: list[dict] = []
        redirect: list[dict] = []
        for _ in range(2):
            health.append(asyncio.run(flat_out(port, ["/healthz"], args.seconds, args.connections)))
            redirect.append(asyncio.run(flat_out(port, paths, args.seconds, args.connections)))
        r_rps = statistics.mean(r["rps"] for r in redirect)
        h_rps = statistics.mean(h["rps"] for h in health)
        time.sleep(10)  # the flat-out clicks stored and folded first: steady state only
        quarter = asyncio.run(steady(port, paths, r_rps / 4, args.seconds, args.connections))
        time.sleep(7)  # its clicks folded, so the reference runs on a quiet server too
        reference = asyncio.run(
            steady(port, ["/healthz"], r_rps / 4, args.seconds, args.connections)
        )
        load_after = os.getloadavg()[0]
        time.sleep(9)  # every click folded
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        log.close()
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        counted = conn.execute(sa.text("SELECT sum(human + machine) FROM link_clicks")).scalar()
        waiting = conn.execute(sa.text("SELECT count(*) FROM click_events")).scalar()
    engine.dispose()
    sent = sum(r["requests"] for r in redirect) + quarter["requests"] + 1 + warm["requests"]
    print(
        _report(args, health, redirect, h_rps, r_rps, quarter, reference, counted, waiting,
                sent, (load_before, load_after))
    )  # fmt: skip
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _report(args, health, redirect, h_rps, r_rps, quarter, reference, counted, waiting, sent,
            load) -> str:  # fmt: skip  # type: ignore[no-untyped-def]
    rows = [
        f"| round {i + 1}: GET /healthz | {h['requests']} | {h['rps']:.0f} | {h['bad']} |\n"
        f"| round {i + 1}: GET /r/TOKEN | {r['requests']} | {r['rps']:.0f} | {r['bad']} |"
        for i, (h, r) in enumerate(zip(health, redirect, strict=True))
    ]
    return "\n".join(
        [
            "## Tracked-link redirect",
            "",
            f"`.venv/bin/python bench/redirect_rate.py --seconds {args.seconds:g} "
            f"--connections {args.connections}`",
            "",
            f"`digest serve` (uvicorn, SQLite, `DIGEST_TRACKING=aggregate`) and the benchmark's "
            f"raw-socket asyncio client on the same {os.cpu_count()}-CPU machine, "
            f"{args.connections} keep-alive connections, {args.seconds:g} s per round, "
            "healthz and /r/ rounds alternating; 20,000 distinct tracked links (10 stories, "
            "a random copy tag each). Every redirect hands its click to the recorder, which "
            "inserts and folds them each second in the same process. "
            f"Load average {load[0]:.1f} before, {load[1]:.1f} after.",
            "",
            "| flat out | requests | requests/s | not 200/302 |",
            "| --- | ---: | ---: | ---: |",
            *rows,
            "",
            f"- /r/ / healthz: **{r_rps / h_rps:.2f}** (target at least 0.5)",
            f"- /r/ at a quarter of its flat-out rate ({quarter['rate']:.0f}/s, "
            f"{quarter['requests']} requests): p50 {quarter['p50']:.1f} ms, "
            f"**p99 {quarter['p99']:.1f} ms** (target under 50 ms), max {quarter['max']:.1f} ms, "
            f"{quarter['bad']} not 302; GET /healthz at the same rate, same connections: "
            f"p50 {reference['p50']:.1f} ms, p99 {reference['p99']:.1f} ms, "
            f"max {reference['max']:.1f} ms",
            f"- afterwards: {counted} clicks in `link_clicks`, {waiting} events still waiting "
            f"(redirects sent: {sent})",
            "",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
