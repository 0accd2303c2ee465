"""Reading a tracked link in a received mail back to where it goes, for the tests that check
which URL a mail links to (with tracking on by default, each goes through ``/r/``)."""

from __future__ import annotations

from digest.config import Settings
from digest.tracking import read_token


def target(settings: Settings, url: str) -> str:
    """The URL a tracked link (``BASE/r/TOKEN``) redirects to; AssertionError when it is not
    one of this installation's tracked links."""
    prefix = settings.base_url + "/r/"
    assert url.startswith(prefix), f"not a tracked link: {url}"
    return read_token(settings.secret, url[len(prefix) :]).url
