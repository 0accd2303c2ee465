"""Does the time ``POST /subscribe`` takes tell an active subscriber from an unknown address?

Starts ``uvicorn`` serving ``create_app`` on a fresh store (a subprocess, over real HTTP), makes
``--probes`` active subscribers, then sends ``--probes`` requests for unknown addresses and as
many for the active ones, one at a time in a random order (each address asked once, as an
attacker testing a list would), and measures each answer's latency at the client. It prints
both distributions (median, p90), a two-sample Kolmogorov-Smirnov test, and the accuracy of
the best threshold classifier, learned on one half of the probes and scored on the other,
for one probe and for the median of ten: 50 % is a coin toss.

    .venv/bin/python bench/subscribe_timing.py [--probes 1000] [--database-url URL]

To measure another version of digest with this same script, put its ``src`` first on
``PYTHONPATH``. Results and the command are in ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import math
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from digest import subscriptions

SECRET = "bench-secret-key-0123456789-abcdefghijklmnop"


def serve(port: int, database_url: str, var_dir: str) -> None:
    """The server half: run in the subprocess."""
    import uvicorn

    from digest.config import load_settings
    from digest.db import Database
    from digest.web.app import create_app

    settings = load_settings(
        database_url=database_url,
        var_dir=Path(var_dir),
        smtp_url=f"file:{var_dir}/outbox",
        secret_key=SECRET,
        ip_limit=10_000_000,  # one client sends every probe
    )
    uvicorn.run(
        create_app(settings, Database(database_url)),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
    )


def seed(database_url: str, count: int) -> list[str]:
    """A migrated store holding ``count`` active subscribers; their addresses."""
    from digest.db import Database

    db = Database(database_url)
    db.upgrade()
    emails = [f"reader{i}@example.com" for i in range(count)]
    with db.transaction() as session:
        for email in emails:
            subscriptions.add(session, email, confirmed=True)
    db.dispose()
    return emails


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(base: str) -> None:
    for _ in range(200):
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("the server did not start")


def probe(base: str, probes: list[tuple[str, str]]) -> dict[str, list[float]]:
    """Latency in ms of each probe, sequential over one kept-alive connection, by kind."""
    out: dict[str, list[float]] = {"unknown": [], "active": []}
    with httpx.Client(base_url=base, timeout=10) as client:
        for kind, email in probes:
            started = time.perf_counter()
            answer = client.post("/subscribe", data={"email": email, "name": "Probe"})
            elapsed = (time.perf_counter() - started) * 1000
            if answer.status_code != 200:
                raise SystemExit(f"{email}: HTTP {answer.status_code}")
            if kind != "warm":
                out[kind].append(elapsed)
    return out


def ks_test(a: list[float], b: list[float]) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov: the statistic D and its asymptotic p-value."""
    xs, ys = sorted(a), sorted(b)
    n, m = len(xs), len(ys)
    i = j = 0
    d = 0.0
    while i < n and j < m:
        value = min(xs[i], ys[j])
        while i < n and xs[i] == value:
            i += 1
        while j < m and ys[j] == value:
            j += 1
        d = max(d, abs(i / n - j / m))
    ne = n * m / (n + m)
    lam = (math.sqrt(ne) + 0.12 + 0.11 / math.sqrt(ne)) * d
    p = 2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101))
    return d, min(1.0, max(0.0, p))


def threshold_accuracy(train: dict[str, list[float]], test: dict[str, list[float]]) -> float:
    """Accuracy on ``test`` of the threshold (and side) that best splits ``train``."""

    def accuracy(data: dict[str, list[float]], cut: float, active_faster: bool) -> float:
        right = sum((x < cut) == active_faster for x in data["active"])
        right += sum((x >= cut) == active_faster for x in data["unknown"])
        return right / (len(data["active"]) + len(data["unknown"]))

    cuts = sorted(train["active"] + train["unknown"])
    best = max(
        ((cut, side) for cut in cuts for side in (True, False)),
        key=lambda c: accuracy(train, *c),
    )
    return accuracy(test, *best)


def _scored(unknown: list[float], known: list[float]) -> float:
    """The classifier learned on every other value, scored on the rest."""
    train = {"unknown": unknown[0::2], "active": known[0::2]}
    return threshold_accuracy(train, {"unknown": unknown[1::2], "active": known[1::2]})


def _medians_of(values: list[float], size: int) -> list[float]:
    return [statistics.median(values[k : k + size]) for k in range(0, len(values) - size + 1, size)]


def _p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1]


def main() -> None:
    """Run the probes and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probes", type=int, default=1000, help="probes of each kind")
    parser.add_argument("--database-url", help="a store to use (default: a new SQLite file)")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="digest-timing-"))
    url = args.database_url or f"sqlite:///{tmp / 'timing.db'}"
    active = seed(url, args.probes)
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), url, str(tmp)],
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_up(base)
        rng = random.Random(args.seed)
        probes = [("unknown", f"stranger{i}@example.org") for i in range(args.probes)]
        probes += [("active", email) for email in active]
        rng.shuffle(probes)
        warm = [("warm", f"warm{i}@example.net") for i in range(100)]
        got = probe(base, warm + probes)
    finally:
        server.terminate()
        server.wait(timeout=30)
    unknown, known = got["unknown"], got["active"]
    d, p = ks_test(unknown, known)
    one = _scored(unknown, known)
    ten = _scored(_medians_of(unknown, 10), _medians_of(known, 10))
    store = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    print(f"store: {store}; probes: {len(unknown)} unknown, {len(known)} active")
    print("| kind | median ms | p90 ms | mean ms |")
    print("| --- | --- | --- | --- |")
    for kind, values in (("unknown", unknown), ("active", known)):
        row = (
            f"{statistics.median(values):.2f} | {_p90(values):.2f} | {statistics.mean(values):.2f}"
        )
        print(f"| {kind} | {row} |")
    print(f"Kolmogorov-Smirnov: D = {d:.3f}, p = {p:.3g}")
    print(f"threshold classifier, one probe: {one:.1%}; median of ten probes: {ten:.1%}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    else:
        main()
