"""No input makes the Subscribers section answer 500: whatever the address bar or a form
carries (NUL, huge numbers, broken CSV, stray mappings), the answer is a page or a refusal."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from digest import subscriptions
from digest.db import Database
from tests.support.desk import desk_client
from tests.support.web import client

texts = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "1", "0", "-1", "99999999999999999999", "²", "active", "weekly", "UTC"]),
)
ids = st.one_of(st.integers(min_value=0, max_value=2**70), st.just(1))
csv_files = st.one_of(
    st.binary(max_size=200),
    st.lists(st.lists(st.text(max_size=12), min_size=1, max_size=4), max_size=5).map(
        lambda rows: "\n".join(",".join(r) for r in [["email", "name"], *rows]).encode()
    ),
)


def _signed_in(app: FastAPI, db: Database) -> tuple[dict[str, str], str]:
    async def go() -> tuple[dict[str, str], str]:
        http, csrf = await desk_client(app, db, "editor")
        jar = dict(http.cookies)
        await http.aclose()
        return jar, csrf

    return asyncio.run(go())


async def _requests(
    app: FastAPI, jar: dict[str, str], csrf: str, values: dict[str, Any]
) -> list[tuple[str, int]]:
    http = client(app)
    http.cookies.update(jar)
    answers = []
    async with http:
        keys = ("q", "newsletter", "status", "cadence", "zone", "after", "before")
        params = {k: values[k] for k in keys}
        answers.append(("search", (await http.get("/desk/subscribers", params=params)).status_code))
        pid = values["id"]
        answers.append(("person", (await http.get(f"/desk/subscribers/{pid}")).status_code))
        form = {"csrf_token": csrf, "newsletter_id": values["newsletter"]}
        for action, extra in [
            ("preferences", {"cadence": values["cadence"], "topics": values["q"]}),
            ("erase", {"confirm_email": values["q"]}),
            ("unsubscribe", {}),
        ]:
            answer = await http.post(f"/desk/subscribers/{pid}/{action}", data=form | extra)
            answers.append((action, answer.status_code))
        data = {
            "csrf_token": csrf,
            "step": values["step"],
            "newsletter": values["newsletter"],
            "status": values["status"],
            "csv": values["after"],
            "header": [values["q"], "email"],
            "field": [values["cadence"], values["zone"]],
        }
        files = {"file": ("list.csv", values["file"], "text/csv")}
        answer = await http.post("/desk/subscribers/import", data=data, files=files)
        answers.append(("import", answer.status_code))
        data.pop("csv")
        answer = await http.post("/desk/subscribers/import", data=data | {"csv": values["zone"]})
        answers.append(("import-carried", answer.status_code))
        export = await http.post(
            "/desk/subscribers/export.csv",
            data={
                "csrf_token": csrf,
                "newsletter": values["newsletter"],
                "status": values["status"],
            },
        )
        answers.append(("export", export.status_code))
        done = await http.get("/desk/subscribers/import", params={"added": values["after"]})
        answers.append(("import-form", done.status_code))
    return answers


def test_no_input_answers_500(make_settings, db: Database) -> None:  # type: ignore[no-untyped-def]
    from tests.support.web import make_app

    app = make_app(make_settings(database_url=db.url), db)
    with db.transaction() as session:
        person = subscriptions.add(session, "fuzz@example.org", name="Fuzz", confirmed=True)
        pid = person.id
    jar, csrf = _signed_in(app, db)

    # Each example runs against the store: shrinking would take minutes, so none.
    @settings(
        max_examples=30,
        deadline=None,
        phases=(Phase.explicit, Phase.reuse, Phase.generate),
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        values=st.fixed_dictionaries(
            {
                k: texts
                for k in ("q", "newsletter", "status", "cadence", "zone", "after", "before", "step")
            }
            | {"id": st.one_of(ids, st.just(pid)), "file": csv_files}
        )
    )
    def check(values: dict[str, Any]) -> None:
        for what, status in asyncio.run(_requests(app, jar, csrf, values)):
            assert status < 500, (what, status, values)

    check()
