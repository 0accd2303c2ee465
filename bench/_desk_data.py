"""A PostgreSQL store of N subscribers shaped like a year-old list, for ``desk_load.py``.

Everything is written set-wise with ``INSERT ... SELECT generate_series`` (no ORM, no Python
row loop), deterministic (hashes of the row number, no random state), so the 10k store is the
first slice of the 1M one: the same people, statuses and dates in the same proportions.

The rows go in at schema 0010, before the list's counts exist; ``db upgrade`` then runs
migration 0011 over them, whose backfill fills the maintained counts exactly as it would for
an operator's store upgraded in place. ``check_counts`` holds them against a plain count.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session

from digest import newsletters
from digest.db import Database


def _words(text: str) -> list[str]:
    return text.split()


#: The revision the rows are loaded at: the last one before the list's counts (0011).
LOAD_AT = "0010"
FIRST = _words(
    "olivia emma amelia sophia mia isla ava lily grace freya ella chloe noah "
    "oliver leo george harry jack lucas arthur oscar theo henry mohammed james "
    "william liam ethan mateo sofia lucia martina julia sara hugo paul louis jules "
    "gabriel raphael chiara giulia marco luca anna lena maria jan piotr kasia yuki "
    "haruto sakura aarav diya chen wei mei kofi amara zara"
)
LAST = _words(
    "smith jones taylor brown williams wilson johnson davies robinson wright "
    "thompson evans walker white roberts green hall wood jackson clarke patel khan "
    "lewis james phillips mason mitchell rose davis rodriguez cox alexander garden "
    "campbell johnston moore smyth oneill doherty stewart quinn murphy graham "
    "mclaughlin hamilton murray hughes gray martin garcia martinez lopez gonzalez "
    "perez sanchez romero navarro muller schmidt schneider fischer weber meyer "
    "wagner becker schulz hoffmann dupont bernard dubois durand lefebvre moreau "
    "laurent simon michel rossi russo ferrari esposito bianchi romano colombo "
    "ricci marino greco nowak kowalski wisniewski tanaka suzuki takahashi watanabe "
    "ito yamamoto nakamura kobayashi kato sato wang li zhang liu chen yang huang "
    "zhao wu zhou xu sun ma zhu hu guo he lin mensah owusu boateng okafor adeyemi"
)
DOMAINS = _words("example.com example.org example.net mail.example news.example post.example")
ZONES = _words(
    "Europe/London Europe/Paris Europe/Berlin Europe/Madrid Europe/Warsaw "
    "America/New_York America/Chicago America/Denver America/Los_Angeles "
    "America/Sao_Paulo Asia/Tokyo Asia/Kolkata Asia/Shanghai Africa/Lagos "
    "Australia/Sydney UTC"
)
#: The few people every store holds whose address starts with this (the "few" search).
RARE = "ada.lovelace"
RARE_COUNT = 5
#: Newsletters beyond the first, and the share of people on each (per thousand).
MORE_NEWSLETTERS = (("sport", "Sport"), ("business", "Business"))
SHARE = {1: 900, 2: 350, 3: 200}


def _array(words: list[str]) -> str:
    return "ARRAY[" + ", ".join(f"'{w}'" for w in words) + "]"


def _h(expr: str, salt: int, mod: int) -> str:
    """A deterministic value in [0, mod) from ``expr`` (an integer) and ``salt``."""
    return f"(abs(hashint4(({expr}) * 16 + {salt})::bigint) % {mod})"


def _people_sql(n: int) -> str:
    # Every RARE_COUNT-th slice of the ids holds one "ada.lovelace" (ids 7, 7 + n/5, ...).
    step = max(n // RARE_COUNT, 1)
    first, last = f"({_array(FIRST)})", f"({_array(LAST)})"
    return f"""
INSERT INTO subscribers (id, email, name, timezone, send_hour, created_at, updated_at)
SELECT i,
       CASE WHEN i % {step} = 7 THEN '{RARE}' || i || '@example.com'
            ELSE f || '.' || l || i || '@' || d END,
       CASE WHEN i % {step} = 7 THEN 'Ada Lovelace'
            WHEN {_h("i", 9, 10)} = 0 THEN ''
            ELSE initcap(f) || ' ' || initcap(l) END,
       z, 6 + {_h("i", 4, 4)}, at, at
FROM (
  SELECT i,
         {first}[1 + {_h("i", 1, len(FIRST))}] AS f,
         {last}[1 + {_h("i", 2, len(LAST))}] AS l,
         ({_array(DOMAINS)})[1 + {_h("i", 3, len(DOMAINS))}] AS d,
         ({_array(ZONES)})[1 + {_h("i", 5, len(ZONES))}] AS z,
         now() - make_interval(secs => {_h("i", 6, 365 * 86400)}) AS at
  FROM generate_series(1, {n}) AS i
) AS p
"""


# Status by a draw in [0, 1000): active 80 %, pending 7 %, unsubscribed 10 %, bounced 2.5 %,
# complained 0.5 %.
_STATUS = """CASE WHEN r < 800 THEN 'active' WHEN r < 870 THEN 'pending'
  WHEN r < 970 THEN 'unsubscribed' WHEN r < 995 THEN 'bounced' ELSE 'complained' END"""


def _subscriptions_sql() -> str:
    draw = _h("s.id * 4 + k", 7, 1000)
    share = " OR ".join(f"(k = {k} AND {draw} < {v})" for k, v in SHARE.items())
    return f"""
INSERT INTO subscriptions (subscriber_id, newsletter_id, status, cadence, topics, consent_at,
  consent_source, consent_wording, created_at, updated_at, confirmed_at, unsubscribed_at,
  active_since, alerts)
SELECT id, k, status, cadence, '[]', created_at, 'form', 'v1', created_at,
       CASE WHEN status = 'pending' THEN created_at
            WHEN status = 'active' THEN confirmed
            ELSE left_at END,
       CASE WHEN status = 'pending' THEN NULL ELSE confirmed END,
       CASE WHEN status = 'unsubscribed' THEN left_at END,
       CASE WHEN status = 'active' THEN confirmed END,
       r % 5 = 0
FROM (
  SELECT s.id, k, s.created_at, r, {_STATUS} AS status,
         CASE WHEN {_h("s.id * 4 + k", 8, 4)} = 0 THEN 'weekly' ELSE 'daily' END AS cadence,
         s.created_at + interval '10 minutes' AS confirmed,
         -- left some time between confirming and now
         s.created_at + (now() - s.created_at) * ({_h("s.id * 4 + k", 10, 1000)} / 1000.0)
           AS left_at
  FROM subscribers AS s CROSS JOIN generate_series(1, 3) AS k
  CROSS JOIN LATERAL (SELECT {_h("s.id * 4 + k", 11, 1000)} AS r) AS draw
  WHERE {share}
) AS x
"""


# Yesterday's daily edition of newsletter 1, delivered to its active daily readers: mostly
# sent, some deferred, bounced or failed with the server's reply, as an outbox holds them.
_EDITION_SQL = """
INSERT INTO editions (newsletter_id, key, cadence, created_at, edition_at, is_test, subject,
  web_html, post_ids, recipients, skipped)
VALUES (1, '1/daily:bench', 'daily', now() - interval '1 day', now() - interval '1 day', false,
  'Yesterday', '<p>Yesterday</p>', '[]', 0, 0)
RETURNING id
"""
_DELIVERIES_SQL = """
INSERT INTO deliveries (kind, edition_id, subscriber_id, body_id, period_key, to_email, status,
  attempts, next_attempt_at, last_reply, message_id, created_at, updated_at, sent_at)
SELECT 'digest', :edition, s.id, :body, '1/daily:bench', s.email, st,
       CASE WHEN st = 'sent' THEN 1 ELSE 3 END, now() - interval '20 hours',
       CASE st WHEN 'sent' THEN '250 2.0.0 Ok: queued'
               WHEN 'deferred' THEN '451 4.7.1 Try again later'
               WHEN 'bounced' THEN '550 5.1.1 User unknown'
               ELSE '554 5.7.1 Rejected' END,
       '<' || s.id || '.bench@digest.example>', now() - interval '1 day',
       now() - interval '1 day' + make_interval(secs => s.id % 3600),
       CASE WHEN st = 'sent' THEN now() - interval '1 day' END
FROM subscriptions AS u JOIN subscribers AS s ON s.id = u.subscriber_id
CROSS JOIN LATERAL (SELECT CASE WHEN s.id % 1000 < 985 THEN 'sent'
  WHEN s.id % 1000 < 992 THEN 'deferred' WHEN s.id % 1000 < 998 THEN 'bounced'
  ELSE 'failed' END AS st) AS state
WHERE u.newsletter_id = 1 AND u.status = 'active' AND u.cadence = 'daily'
"""


def upgrade_to(db: Database, revision: str) -> None:
    """Migrate the store to ``revision`` with digest's own Alembic set-up (``db upgrade``
    takes it to the newest)."""
    from alembic import command

    from digest.db import alembic_config

    with db.engine.connect() as conn:
        cfg = alembic_config(db.url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        conn.commit()


def load(db: Database, n: int, *, deliveries: bool = True) -> None:
    """Fill a store at ``LOAD_AT`` with ``n`` people, their subscriptions to three newsletters
    and (``deliveries``) yesterday's digest of newsletter 1."""
    with db.transaction() as session:
        for slug, name in MORE_NEWSLETTERS:
            newsletters.add(session, slug, name=name)
    with db.transaction() as session:
        session.execute(sa.text(_people_sql(n)))
        session.execute(
            sa.text("SELECT setval('subscribers_id_seq', (SELECT max(id) FROM subscribers))")
        )
        session.execute(sa.text(_subscriptions_sql()))
        if deliveries:
            _deliveries(session)


def _deliveries(session: Session) -> None:
    edition = session.execute(sa.text(_EDITION_SQL)).scalar_one()
    body = session.execute(
        sa.text(
            "INSERT INTO bodies (edition_id, digest_key, subject, text, html, post_ids,"
            " created_at) VALUES (:e, 'bench', 'Yesterday', 'text', '<p>html</p>', '[]', now())"
            " RETURNING id"
        ),
        {"e": edition},
    ).scalar_one()
    session.execute(sa.text(_DELIVERIES_SQL), {"edition": edition, "body": body})


def vacuum_analyze(db: Database) -> None:
    """What autovacuum leaves on a store that has run a while: statistics and a visibility
    map (index-only scans need it)."""
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))


def check_counts(db: Database) -> list[str]:
    """Each maintained count table that disagrees with counting the rows; empty when right."""
    checks = {
        "subscription_counts": (
            "SELECT newsletter_id, status, n FROM subscription_counts WHERE n <> 0",
            "SELECT newsletter_id, status, count(*) FROM subscriptions"
            " GROUP BY newsletter_id, status",
        ),
        "subscription_slots": (
            "SELECT newsletter_id, cadence, timezone, send_hour, n FROM subscription_slots"
            " WHERE n <> 0",
            "SELECT u.newsletter_id, u.cadence, s.timezone, s.send_hour, count(*)"
            " FROM subscriptions AS u JOIN subscribers AS s ON s.id = u.subscriber_id"
            " WHERE u.status = 'active' GROUP BY 1, 2, 3, 4",
        ),
    }
    wrong = []
    with db.engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        for table, (kept, counted) in checks.items():
            if table not in tables:
                continue
            if set(conn.execute(sa.text(kept)).all()) != set(conn.execute(sa.text(counted)).all()):
                wrong.append(table)
        if "subscription_days" in tables:
            joined = conn.execute(sa.text("SELECT sum(joined) FROM subscription_days")).scalar()
            active = conn.execute(
                sa.text("SELECT count(*) FROM subscriptions WHERE status = 'active'")
            ).scalar()
            if int(joined or 0) < int(active or 0):
                wrong.append("subscription_days")
    return wrong
