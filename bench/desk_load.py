"""Does the desk get slower as the list grows? Its pages at 10k and at 1M subscribers (issue 14).

Makes two PostgreSQL stores side by side (``--small`` and ``--large`` people, default 10,000
and 1,000,000; see ``_desk_data``: three newsletters, every status, two cadences, 16 zones,
a year of sign-ups and departures, yesterday's digest in the outbox), migrated with digest's
own migrations and counted by migration 0011's backfill, then ``VACUUM ANALYZE``. Each store
is served by ``uvicorn`` in a process of its own on loopback; one client per store signs in
through ``/desk/login`` as an editor would (its CSRF token, its cookie) and times GETs of:

- ``/desk/`` (Today), and one of the four charts it shows (``/desk/charts/churn-90.svg``),
- ``/desk/subscribers?q=ada.lovelace`` (a prefix only a few people have, in both stores),
- ``/desk/subscribers?q=olivia`` (a first name: thousands at 1M, a full page either way),
- ``/desk/subscribers?q=a`` (a tenth of the list, at its start),
- ``/desk/subscribers`` (the first page of the list),
- ``/desk/subscribers?after=<the middle address>`` (a page half-way down, as its keyset
  "Next page" link names it).

After ``--warm`` rounds untimed, ``--rounds`` rounds, each page requested from the small
store then the large one (the other way round every other round), so the machine's drift
falls on both alike. It prints each page's median at both sizes, their ratio and whether it is
within ``--bound`` (2.0), then ``EXPLAIN ANALYZE`` of the list's queries on the large store.

    .venv/bin/python bench/desk_load.py [--small 10000] [--large 1000000] [--rounds 30]

Results and the command are in ``docs/benchmarks.md``. The databases are dropped at the end.
"""

from __future__ import annotations

import argparse
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import quote

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))

import _desk_data as data
from _stores import DEFAULT_PG, store_sets

from digest import desk_accounts, outbox_tally, subscriber_search
from digest.audit import Actor
from digest.clock import utcnow
from digest.db import Database

SECRET = "bench-secret-key-0123456789-abcdefghijklmnop"
EDITOR = "editor@newsroom.example"
PASSWORD = "a-long-desk-passphrase-42"
CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')
IN_LIST = re.compile(r"\(%\(\w+\)s(?:, %\(\w+\)s)*\)")


def serve(port: int, database_url: str, var_dir: str) -> None:
    """The server half, run in a subprocess: the app as ``digest serve`` makes it."""
    import uvicorn

    from digest.config import load_settings
    from digest.web.app import create_app

    settings = load_settings(
        database_url=database_url,
        var_dir=Path(var_dir),
        smtp_url=f"file:{var_dir}/outbox",
        secret_key=SECRET,
    )
    uvicorn.run(
        create_app(settings, Database(database_url)),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
    )


def prepare(db: Database, people: int, *, deliveries: bool) -> dict[str, float]:
    """Migrate, fill, count and analyse one store; seconds each step took."""
    took: dict[str, float] = {}
    started = time.perf_counter()
    data.upgrade_to(db, data.LOAD_AT)
    data.load(db, people, deliveries=deliveries)
    took["load"] = time.perf_counter() - started
    started = time.perf_counter()
    db.upgrade()  # `digest db upgrade`: 0011 and later, over the rows
    took["upgrade"] = time.perf_counter() - started
    started = time.perf_counter()
    data.vacuum_analyze(db)
    took["vacuum"] = time.perf_counter() - started
    wrong = data.check_counts(db)
    if wrong:
        raise SystemExit(f"maintained counts disagree with the rows: {', '.join(wrong)}")
    with db.transaction() as session:
        desk_accounts.add(session, Actor.cli(), EDITOR, "editor", PASSWORD)
    return took


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(url: str, var_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A uvicorn process serving the store at ``url``; it and its base address."""
    port = _free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port), url, str(var_dir)])
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return server, base
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.terminate()
    raise SystemExit("the server did not start")


def signed_in(base: str) -> httpx.Client:
    """A client signed in as the editor through the sign-in form, as a browser does."""
    client = httpx.Client(base_url=base, timeout=60)
    form = client.get("/desk/login")
    token = CSRF.search(form.text)
    if token is None:
        raise SystemExit("no csrf_token on /desk/login")
    answer = client.post(
        "/desk/login",
        data={"email": EDITOR, "password": PASSWORD, "csrf_token": token.group(1)},
    )
    if answer.status_code != 303:
        raise SystemExit(f"sign-in answered {answer.status_code}")
    return client


def middle_address(db: Database) -> str:
    """The address half-way down the list, in address order."""
    with db.engine.connect() as conn:
        n = conn.execute(sa.text("SELECT count(*) FROM subscribers")).scalar_one()
        return str(
            conn.execute(
                sa.text("SELECT email FROM subscribers ORDER BY email OFFSET :k LIMIT 1"),
                {"k": n // 2},
            ).scalar_one()
        )


def pages(db: Database) -> dict[str, str]:
    """The pages timed, by label, for one store."""
    return {
        "Today": "/desk/",
        "Today's chart (churn, 90 days)": "/desk/charts/churn-90.svg",
        f"search '{data.RARE}' (a few)": f"/desk/subscribers?q={data.RARE}",
        "search 'olivia' (a full page)": "/desk/subscribers?q=olivia",
        "search 'a' (a full page, early)": "/desk/subscribers?q=a",
        "list, first page": "/desk/subscribers",
        "list, page half-way": f"/desk/subscribers?after={quote(middle_address(db))}",
    }


def timed(client: httpx.Client, path: str) -> float:
    """One GET's latency in ms, checked to be the page (200)."""
    started = time.perf_counter()
    answer = client.get(path)
    elapsed = (time.perf_counter() - started) * 1000
    if answer.status_code != 200:
        raise SystemExit(f"GET {path}: HTTP {answer.status_code}")
    return elapsed


def measure(
    clients: list[httpx.Client], paths: list[dict[str, str]], rounds: int, warm: int
) -> dict[str, list[list[float]]]:
    """Latencies per page label, per store, interleaving the stores request by request."""
    got: dict[str, list[list[float]]] = {label: [[], []] for label in paths[0]}
    for r in range(warm + rounds):
        order = (0, 1) if r % 2 == 0 else (1, 0)
        for label in got:
            for k in order:
                ms = timed(clients[k], paths[k][label])
                if r >= warm:
                    got[label][k].append(ms)
    return got


def explain(db: Database, middle: str) -> None:
    """EXPLAIN ANALYZE of the list's id queries on ``db``: index scans, not the table."""
    cases = {
        f"q={data.RARE}": (data.RARE, None),
        "q=olivia": ("olivia", None),
        "first page": ("", None),
        "page half-way": ("", middle),
    }
    with db.transaction() as session:
        for label, (q, after) in cases.items():
            stmt = subscriber_search.statement(
                session, q, subscriber_search.Filters(), after=after, limit=50
            )
            compiled = stmt.compile(session.get_bind())
            plan = session.connection().exec_driver_sql(
                f"EXPLAIN (ANALYZE, COSTS OFF) {compiled}", compiled.params
            )
            print(f"\nEXPLAIN ANALYZE, {label}:")
            for (line,) in plan:
                print("    " + line)


def statement_costs(db: Database, var_dir: Path, path: str, rounds: int) -> dict[str, float]:
    """Median ms of each SQL statement one GET of ``path`` runs, served in this process (the
    same app, signed in the same way), timed at the driver; what a page's time is made of."""
    with warnings.catch_warnings():  # starlette's note about httpx: not this bench's concern
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from digest.config import load_settings
    from digest.web.app import create_app

    settings = load_settings(
        database_url=db.url, var_dir=var_dir, smtp_url=f"file:{var_dir}/outbox", secret_key=SECRET
    )
    times: dict[str, list[float]] = {}
    started: list[float] = []

    def before(*_: object) -> None:
        started.append(time.perf_counter())

    def after(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        # One key for an IN list of any length.
        key = IN_LIST.sub("(...)", " ".join(statement.split()))
        times.setdefault(key, []).append((time.perf_counter() - started.pop()) * 1000)

    with TestClient(create_app(settings, Database(db.url))) as client:
        form = client.get("/desk/login")
        token = CSRF.search(form.text)
        assert token is not None
        client.post(
            "/desk/login",
            data={"email": EDITOR, "password": PASSWORD, "csrf_token": token.group(1)},
            follow_redirects=False,
        )
        client.get(path)  # warm
        sa.event.listen(sa.engine.Engine, "before_cursor_execute", before)
        sa.event.listen(sa.engine.Engine, "after_cursor_execute", after)
        try:
            for _ in range(rounds):
                client.get(path)
        finally:
            sa.event.remove(sa.engine.Engine, "before_cursor_execute", before)
            sa.event.remove(sa.engine.Engine, "after_cursor_execute", after)
    # A statement run k times per page counts k times its median.
    return {sql: statistics.median(t) * len(t) / rounds for sql, t in times.items()}


def print_costs(label: str, sizes: tuple[int, int], costs: list[dict[str, float]]) -> None:
    """The statements of a page that cost most at the large size, at both sizes."""
    print(f"\nSQL of {label}, ms per page (in process, medians), the costliest at {sizes[1]:,}:")
    print(f"| statement | {sizes[0]:,} | {sizes[1]:,} |")
    print("| --- | ---: | ---: |")
    small, large = costs
    for sql in sorted(large, key=large.__getitem__, reverse=True)[:5]:
        print(f"| `{sql[:110]}` | {small.get(sql, 0.0):.2f} | {large[sql]:.2f} |")
    print(f"| all statements | {sum(small.values()):.2f} | {sum(large.values()):.2f} |")


def main() -> None:
    """Build both stores, time the pages, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=10_000, help="people in the small store")
    parser.add_argument("--large", type=int, default=1_000_000, help="people in the large store")
    parser.add_argument("--rounds", type=int, default=30, help="timed requests of each page")
    parser.add_argument("--warm", type=int, default=5, help="untimed rounds first")
    parser.add_argument("--bound", type=float, default=2.0, help="largest ratio allowed")
    parser.add_argument("--no-deliveries", action="store_true", help="leave the outbox empty")
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL admin URL")
    args = parser.parse_args()
    sizes = (args.small, args.large)
    with ExitStack() as stack:
        sets = store_sets(args.pg, count=2, kinds="pg")
        _, dbs = next(sets, ("", ()))
        if not dbs:
            raise SystemExit("PostgreSQL is needed")
        stack.callback(lambda: next(sets, None))  # drops the databases
        for db, n in zip(dbs, sizes, strict=True):
            took = prepare(db, n, deliveries=not args.no_deliveries)
            steps = ", ".join(f"{k} {v:.1f} s" for k, v in took.items())
            print(f"store of {n:,} people: {steps}", flush=True)
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="digest-desk-")))
        clients, paths = [], []
        for k, db in enumerate(dbs):
            server, base = start_server(db.url, tmp / str(k))
            stack.callback(server.wait, 30)
            stack.callback(server.terminate)
            client = signed_in(base)
            stack.callback(client.close)
            clients.append(client)
            paths.append(pages(db))
        for db in dbs:
            # What `digest serve`'s scheduler does once a minute: count the outbox for Today.
            with db.transaction() as session:
                outbox_tally.refresh(session, utcnow())
        got = measure(clients, paths, args.rounds, args.warm)
        print(f"\n{args.rounds} requests of each page per store, medians, after {args.warm} rounds")
        print(f"| page | {sizes[0]:,} | {sizes[1]:,} | ratio | within {args.bound}x |")
        print("| --- | ---: | ---: | ---: | --- |")
        for label, (small, large) in got.items():
            a, b = statistics.median(small), statistics.median(large)
            ok = "yes" if b / a <= args.bound else "**no**"
            print(f"| {label} | {a:.1f} ms | {b:.1f} ms | {b / a:.2f} | {ok} |")
        for label, path in (("Today", "/desk/"), ("search 'olivia'", "/desk/subscribers?q=olivia")):
            costs = [statement_costs(db, tmp / f"c{k}", path, 10) for k, db in enumerate(dbs)]
            print_costs(label, sizes, costs)
        explain(dbs[1], middle_address(dbs[1]))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    else:
        main()
