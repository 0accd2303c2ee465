"""The alert mail: the story and the reader's way out, from templates an operator can override."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from digest.compose.alert_mail import AlertRenderer
from digest.models import Newsletter, Post
from digest.newsletter_config import configure

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def story(**fields: object) -> Post:
    values: dict[str, object] = {
        "id": 7,
        "guid": "https://news.example.com/storm",
        "title": "Storm hits the coast",
        "link": "https://news.example.com/storm",
        "summary": "<p>Roads are <b>closed</b> &amp; trains stopped.</p>",
        "author": "Ana Reporter",
        "published_at": NOW,
        "first_seen_at": NOW,
        "updated_at": NOW,
    }
    return Post(**(values | fields))


def renderer(make_settings, **overrides: object) -> AlertRenderer:  # type: ignore[no-untyped-def]
    settings = make_settings(**overrides)
    return AlertRenderer(
        settings, configure(Newsletter(id=1, slug="news", name="The News"), settings)
    )


def test_an_alert_carries_the_story_and_placeholders_for_each_reader(make_settings) -> None:  # type: ignore[no-untyped-def]
    mail = renderer(make_settings).render(story(image_url="https://img.example.com/s.jpg"))
    assert mail.subject == "Breaking: Storm hits the coast"
    assert "Roads are closed & trains stopped." in mail.text
    assert "By Ana Reporter" in mail.text
    assert "Read the story: https://news.example.com/storm" in mail.text
    assert "You get this because you asked for breaking-news alerts from The News" in mail.text
    assert "Turn off alerts (you keep the digest): %%UNSUBSCRIBE_URL%%" in mail.text
    assert "Change what you get: %%PREFERENCES_URL%%" in mail.text
    assert 'src="https://img.example.com/s.jpg"' in mail.html
    assert 'href="%%UNSUBSCRIBE_URL%%"' in mail.html and 'href="%%PREFERENCES_URL%%"' in mail.html
    assert "Read the story" in mail.html and "<style" in mail.html  # inlined, media rules kept


def test_feed_text_cannot_reach_into_a_readers_placeholders(make_settings) -> None:  # type: ignore[no-untyped-def]
    mail = renderer(make_settings).render(
        story(
            title="Win %%EMAIL%% now",
            summary="see %%UNSUBSCRIBE_URL%%",
            link="https://x.example/%%NAME%%",
        )
    )
    assert "%%EMAIL%%" not in mail.subject
    for part in (mail.text, mail.html):
        assert "%%NAME%%" not in part
        # Only the footer's own: "as %%EMAIL%%" and the turn-off link.
        assert part.count("%%EMAIL%%") == 1 and part.count("%%UNSUBSCRIBE_URL%%") == 1


def test_the_operator_overrides_the_alert_templates_file_by_file(
    make_settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "alert_subject.txt").write_text("URGENT | {{ newsletter_name }} | {{ title }}\n")
    mail = renderer(make_settings, templates_dir=folder).render(story())
    assert mail.subject == "URGENT | The News | Storm hits the coast"
    assert "Read the story: https://news.example.com/storm" in mail.text  # ours, unchanged
