"""The desk's sign-in limits: failed attempts counted per account and per client address,
refusing even the right password once reached, without telling which addresses exist.
Both stores; on PostgreSQL the counts are shared by every web process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
import time_machine

from tests.support.desk import PASSWORD, make_user, sign_in
from tests.support.web import client, make_app

EDITOR = "editor@newsroom.example"
OTHER = "other@newsroom.example"
LIMIT = 3
# Mid-way through a 15-minute window, so a fixed window of the store cannot roll over.
T0 = datetime(2026, 3, 2, 9, 7, 30, tzinfo=UTC)


@pytest.fixture
def frozen():  # type: ignore[no-untyped-def]
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def limited(db, make_settings):  # type: ignore[no-untyped-def]
    make_user(db, EDITOR, "editor")
    make_user(db, OTHER, "viewer")
    return make_app(make_settings(database_url=db.url, desk_login_limit=LIMIT), db)


async def fail(http: httpx.AsyncClient, email: str, times: int) -> None:
    for _ in range(times):
        answer = await sign_in(http, email, "not-the-password-at-all")
        assert answer.status_code == 401


async def test_signing_in_and_out_all_day_never_locks_out(limited, frozen) -> None:
    async with client(limited) as http:
        for _ in range(LIMIT + 3):
            assert (await sign_in(http, EDITOR)).status_code == 303


async def test_after_the_limit_even_the_right_password_is_refused(limited, frozen) -> None:
    async with client(limited, "198.51.100.1") as first, client(limited, "198.51.100.2") as other:
        await fail(first, EDITOR, LIMIT)
        refused = await sign_in(other, EDITOR)  # from another address: it is the account's count
        assert refused.status_code == 429
        assert "Too many sign-in attempts" in refused.text
        assert "digest_desk=" not in " ".join(refused.headers.get_list("set-cookie"))
        assert (await sign_in(other, OTHER)).status_code == 303  # other accounts unaffected
        frozen.shift(timedelta(minutes=16))
        assert (await sign_in(other, EDITOR)).status_code == 303


async def test_failures_below_the_limit_then_success(limited, frozen) -> None:
    async with client(limited) as http:
        await fail(http, EDITOR, LIMIT - 1)
        assert (await sign_in(http, EDITOR)).status_code == 303


async def test_one_address_trying_many_accounts_is_stopped(limited, frozen) -> None:
    async with client(limited, "198.51.100.9") as attacker, client(limited, "192.0.2.5") as fine:
        for n in range(LIMIT):
            await fail(attacker, f"guess{n}@newsroom.example", 1)
        refused = await sign_in(attacker, EDITOR)
        assert refused.status_code == 429
        assert (await sign_in(fine, EDITOR)).status_code == 303


async def test_the_locked_answer_does_not_tell_if_the_address_exists(limited, frozen) -> None:
    async with client(limited, "198.51.100.1") as http:
        await fail(http, EDITOR, LIMIT)
    async with client(limited, "198.51.100.2") as http:
        await fail(http, "nobody@newsroom.example", LIMIT)
    async with client(limited, "192.0.2.1") as http:
        known = await sign_in(http, EDITOR)
        unknown = await sign_in(http, "nobody@newsroom.example")
    assert known.status_code == unknown.status_code == 429
    assert known.text.replace(EDITOR, "@") == unknown.text.replace("nobody@newsroom.example", "@")


# PostgreSQL only: SQLite runs one web process, whose counts stay in that process's memory.
@pytest.mark.parametrize(
    "db", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_on_postgresql_the_count_is_shared_by_processes(db, make_settings, frozen) -> None:
    assert db.dialect == "postgresql"
    make_user(db, EDITOR, "editor")
    settings = make_settings(database_url=db.url, desk_login_limit=LIMIT)
    one, two = make_app(settings, db), make_app(settings, db)  # two processes' apps
    async with client(one) as first, client(two) as second:
        await fail(first, EDITOR, LIMIT - 1)
        await fail(second, EDITOR, 1)
        assert (await sign_in(first, EDITOR)).status_code == 429
        assert (await sign_in(second, EDITOR, PASSWORD)).status_code == 429
