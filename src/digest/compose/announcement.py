"""An announcement as mail: its Markdown (or a template set) in the newsletter's layout, one
body shared by every reader, with the personal parts left as placeholders for
``mail.message.assemble`` exactly as a digest's.

Markdown is rendered with markdown-it-py (CommonMark, tables, strikethrough); raw HTML in it
is allowed through the parser and then made safe with the feeds' allowlist
(``posts.sanitize``), so an editor's ``<script>`` goes the way a feed's does. The text part
is read from that same safe HTML, each link as "text (url)".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import css_inline
from markdown_it import MarkdownIt
from markupsafe import Markup

from digest.compose.readable import readable_text
from digest.compose.templates import load_templates, make_environment, render
from digest.compose.views import one_line
from digest.config import Settings
from digest.errors import TemplateProblem
from digest.mail.content import MailContent
from digest.mail.message import (
    EMAIL,
    NAME,
    PREFERENCES_URL,
    UNSUBSCRIBE_ALL_URL,
    UNSUBSCRIBE_URL,
)
from digest.posts.sanitize import sanitize_html

if TYPE_CHECKING:
    from digest.newsletter_config import NewsletterConfig

#: The template set an announcement is rendered with, unless it names its own.
ANNOUNCEMENT = "announcement"


def template_names(template_set: str) -> tuple[str, str, str]:
    """The three files of a template set: ``SET_subject.txt``, ``SET.txt``, ``SET.html``."""
    return (f"{template_set}_subject.txt", f"{template_set}.txt", f"{template_set}.html")


def markdown_html(markdown: str, base_url: str | None = None) -> str:
    """The Markdown as safe HTML: rendered, then through the feeds' allowlist."""
    parser = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    return sanitize_html(parser.render(markdown), base_url)


class AnnouncementRenderer:
    """Renders announcements of one newsletter, its template folder first as for digests."""

    def __init__(self, settings: Settings, newsletter: NewsletterConfig) -> None:
        self.settings = settings
        self.newsletter = newsletter
        self.env = make_environment(newsletter.templates_dir, settings.templates_dir)
        # Dark-mode and phone rules live in @media blocks that cannot be inlined; keep them.
        self._inliner = css_inline.CSSInliner(
            keep_at_rules=True, minify_css=True, load_remote_stylesheets=False
        )

    def render(self, *, subject: str, markdown: str, template: str | None = None) -> MailContent:
        """The shared body: ``subject`` and ``markdown`` through the announcement templates,
        or through the newsletter's template set ``template`` (given the same values)."""
        names = template_names(template or ANNOUNCEMENT)
        templates = load_templates(self.env, names)
        body_html = markdown_html(markdown, self.settings.base_url) if markdown.strip() else ""
        context = {
            "site_name": self.settings.site_name,
            "newsletter_name": self.newsletter.name,
            "subject": subject,
            # Made safe above; the template prints it as it is.
            "body_html": Markup(body_html),  # noqa: S704
            "body_text": readable_text(body_html),
            "personal": True,
            "email": EMAIL,
            "name": NAME,
            "unsubscribe_url": UNSUBSCRIBE_URL,
            "unsubscribe_all_url": UNSUBSCRIBE_ALL_URL,
            "preferences_url": PREFERENCES_URL,
        }
        subject_line = one_line(render(templates[names[0]], context))
        if not subject_line:
            raise TemplateProblem(f"template {names[0]} renders an empty subject")
        try:
            html = self._inliner.inline(render(templates[names[2]], context))
        except css_inline.InlineError as exc:
            raise TemplateProblem(
                f"template {names[2]}: its CSS cannot be inlined ({exc})"
            ) from None
        return MailContent(subject_line, render(templates[names[1]], context), html)
