"""The pure "Don't Miss" rules: editor, sticky, categories, and end times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from digest.models import Post
from digest.posts.featuring import in_featured_category, is_featured, normalize_category

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
CATS = ["Featured", "Don't Miss"]


def post(**kwargs: object) -> Post:
    return Post(guid="g", title="t", link="https://e.com/", **kwargs)


def test_plain_post_is_not_featured() -> None:
    assert not is_featured(post(categories=["World"]), CATS, NOW)


def test_sticky_is_featured() -> None:
    assert is_featured(post(sticky=True), CATS, NOW)


@pytest.mark.parametrize(
    "name", ["Don't Miss", "DON’T MISS", "don‘t  miss", "featured", " Featured "]
)
def test_featured_category_any_case_and_apostrophe(name: str) -> None:
    assert is_featured(post(categories=["World", name]), CATS, NOW)


def test_editor_feature_and_unfeature_win() -> None:
    assert is_featured(post(editor_featured=True), CATS, NOW)
    assert not is_featured(post(editor_featured=False, sticky=True), CATS, NOW)
    assert not is_featured(post(editor_featured=False, categories=["Featured"]), CATS, NOW)


def test_end_time_ends_the_feature() -> None:
    later, earlier = NOW + timedelta(hours=1), NOW - timedelta(seconds=1)
    assert is_featured(post(editor_featured=True, featured_until=later), CATS, NOW)
    assert not is_featured(post(editor_featured=True, featured_until=earlier), CATS, NOW)
    assert not is_featured(post(editor_featured=True, featured_until=NOW), CATS, NOW)
    assert not is_featured(post(sticky=True, featured_until=earlier), CATS, NOW)


def test_settings_categories_are_honoured() -> None:
    assert not is_featured(post(categories=["Don't Miss"]), ["Editor's Pick"], NOW)
    assert is_featured(post(categories=["Editor’s pick"]), ["Editor's Pick"], NOW)
    assert not in_featured_category([], CATS)
    assert normalize_category("  Don’t\tMiss ") == "don't miss"
