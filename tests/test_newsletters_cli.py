"""``digest newsletters``, driven through the real entry point, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest

from digest.db import Database
from tests.support.cli import run
from tests.support.newsletters import queue_edition


def test_the_first_newsletter_exists_with_the_store(
    cli_env: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run(capsys, "newsletters", "list", "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert [(d["slug"], d["name"], d["public"], d["archived"]) for d in data] == [
        ("digest", "digest", True, False)
    ]
    assert data[0]["subscribers"]["active"] == 0


def test_add_list_show_edit_archive(
    cli_env: Database, capsys: pytest.CaptureFixture[str], tmp_path
) -> None:  # type: ignore[no-untyped-def]
    r = run(
        capsys,
        *("newsletters", "add", "tech", "--name", "Tech news", "--description", "Gadgets"),
        *("--cadences", "weekly", "--from", "Tech Desk <tech@example.com>", "--private"),
    )
    assert (r.code, r.out.strip()) == (0, "newsletter added: tech (Tech news)"), r.err
    assert run(capsys, "subscribers", "add", "ann@example.com", "--newsletter", "tech").code == 0

    data = json.loads(run(capsys, "newsletters", "list", "--json").out)
    assert [(d["slug"], d["name"]) for d in data] == [("digest", "digest"), ("tech", "Tech news")]
    tech = data[1]
    assert (tech["public"], tech["cadences"], tech["from"]) == (
        False,
        ["weekly"],
        "Tech Desk <tech@example.com>",
    )
    assert tech["subscribers"]["pending"] == 1
    text = run(capsys, "newsletters", "list").out
    assert "tech\tTech news\tprivate\tweekly\tsubscribers: pending 1" in text

    shown = run(capsys, "newsletters", "show", "tech")
    assert "Tech Desk <tech@example.com>" in shown.out and "Gadgets" in shown.out
    # An unset field says what it comes to: the settings' send hour.
    assert "(from the settings: 7)" in shown.out

    templates = tmp_path / "tech-templates"
    templates.mkdir()
    r = run(
        capsys,
        *("newsletters", "edit", "tech", "--slug", "technology", "--public"),
        *("--send-hour", "9", "--topics", "AI,Phones", "--templates-dir", str(templates)),
    )
    assert r.code == 0 and "was tech" in r.out, r.err
    # The old slug still finds it, for every command that takes one.
    after = json.loads(run(capsys, "newsletters", "show", "tech", "--json").out)
    assert (after["slug"], after["former_slugs"], after["public"]) == ("technology", ["tech"], True)
    assert (after["send_hour"], after["topics"]) == (9, ["AI", "Phones"])
    assert after["templates_dir"] == str(templates)
    listed = run(capsys, "subscribers", "list", "--newsletter", "tech", "--json")
    assert [s["email"] for s in json.loads(listed.out)] == ["ann@example.com"]

    r = run(capsys, "newsletters", "archive", "tech")
    assert (r.code, r.out.strip()) == (0, "newsletter archived: technology")
    assert [d["slug"] for d in json.loads(run(capsys, "newsletters", "list", "--json").out)] == [
        "digest"
    ]
    everything = run(capsys, "newsletters", "list", "--archived", "--json")
    assert [d["archived"] for d in json.loads(everything.out)] == [False, True]


def test_archive_is_refused_while_an_edition_is_in_the_outbox(
    cli_env: Database, make_settings, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    assert run(capsys, "newsletters", "add", "tech", "--name", "Tech").code == 0
    queue_edition(cli_env, make_settings(database_url=cli_env.url), "tech")
    r = run(capsys, "newsletters", "archive", "tech")
    assert r.code == 1
    assert r.err.startswith("error: newsletter 'tech' has an edition being sent (1 messages")
    assert len(r.err.strip().splitlines()) == 1
    assert json.loads(run(capsys, "newsletters", "show", "tech", "--json").out)["archived"] is False


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("add", "digest", "--name", "Again"), 65, "a newsletter 'digest' exists already"),
        (("add", "Bad Slug", "--name", "X"), 65, "newsletter slug must be lower-case"),
        (("add", "x", "--name", "X", "--from", "nobody"), 65, "From: no valid address"),
        (("add", "x", "--name", "X", "--reply-to", "a@"), 65, "Reply-To: no valid address"),
        (("add", "x", "--name", "X", "--cadences", "hourly"), 65, "cadences must be daily"),
        (("add", "x", "--name", "X", "--templates-dir", "missing"), 65, "templates folder"),
        (("add", "x", "--name", "  "), 65, "a newsletter needs a name"),
        (("show", "nope"), 66, "no newsletter 'nope'"),
        (("edit", "nope", "--name", "Y"), 66, "no newsletter 'nope'"),
        (("archive", "nope"), 66, "no newsletter 'nope'"),
    ],
)
def test_bad_input_is_one_line_and_an_exit_code(
    cli_env: Database,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    code: int,
    message: str,
) -> None:
    r = run(capsys, "newsletters", *args)
    assert r.code == code
    assert r.err.startswith(f"error: {message}") and len(r.err.strip().splitlines()) == 1
    assert len(json.loads(run(capsys, "newsletters", "list", "--json").out)) == 1


def test_a_rename_cannot_take_another_newsletters_slug(
    cli_env: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "newsletters", "add", "tech", "--name", "Tech").code == 0
    r = run(capsys, "newsletters", "edit", "tech", "--slug", "digest")
    assert (r.code, r.err.strip()) == (65, "error: a newsletter 'digest' exists already")


def test_with_two_newsletters_a_command_must_name_one(
    cli_env: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "subscribers", "list").code == 0  # one newsletter: it may be left out
    assert run(capsys, "newsletters", "add", "tech", "--name", "Tech").code == 0
    r = run(capsys, "subscribers", "list")
    assert r.code == 64
    assert r.err.strip() == (
        "error: there are several newsletters (digest, tech): name one with --newsletter"
    )
    assert run(capsys, "subscribers", "list", "--newsletter", "tech").code == 0


def test_utm_is_on_by_default_and_can_be_turned_off_and_on(
    cli_env: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    r = run(capsys, "newsletters", "add", "city", "--name", "City", "--no-utm")
    assert r.code == 0, r.err
    assert json.loads(run(capsys, "newsletters", "show", "city", "--json").out)["utm"] is False
    assert "utm: False" in run(capsys, "newsletters", "show", "city").out
    first = json.loads(run(capsys, "newsletters", "show", "digest", "--json").out)
    assert (first["utm"], first["effective"]["utm"]) == (True, True)
    assert run(capsys, "newsletters", "edit", "city", "--utm").code == 0
    assert json.loads(run(capsys, "newsletters", "show", "city", "--json").out)["utm"] is True
    # Only the options given change: an edit of another field leaves it as it was.
    assert run(capsys, "newsletters", "edit", "digest", "--no-utm").code == 0
    assert run(capsys, "newsletters", "edit", "digest", "--send-hour", "8").code == 0
    assert json.loads(run(capsys, "newsletters", "show", "digest", "--json").out)["utm"] is False
