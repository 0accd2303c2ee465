"""A breaking-news alert as mail: one body shared by every reader it goes to, the reader's
address and links left as placeholders for ``mail.message.assemble``.

The template set is ``alert_subject.txt``, ``alert.txt`` and ``alert.html``, looked up in the
newsletter's folder, then ``DIGEST_TEMPLATES_DIR``, then ours, like every mail's. The footer's
"turn off alerts" link is the ``%%UNSUBSCRIBE_URL%%`` placeholder: for an alert the worker
fills it (and List-Unsubscribe) with the link that turns off the newsletter's alerts and keeps
its digest (``delivery/worker.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import css_inline

from digest.compose.select import Candidate, normalize_topics
from digest.compose.templates import load_templates, make_environment, render
from digest.compose.views import PostViews, one_line
from digest.config import Settings
from digest.errors import TemplateProblem
from digest.mail.content import MailContent
from digest.mail.message import EMAIL, NAME, PREFERENCES_URL, UNSUBSCRIBE_URL

if TYPE_CHECKING:
    from digest.models import Post
    from digest.newsletter_config import NewsletterConfig

ALERT_TEMPLATES = ("alert_subject.txt", "alert.txt", "alert.html")


class AlertRenderer:
    """Renders the alert mails of one newsletter; templates are compiled once, when made, so a
    broken override fails here rather than half-way through queuing."""

    def __init__(self, settings: Settings, newsletter: NewsletterConfig) -> None:
        self.site_name = settings.site_name
        self.newsletter_name = newsletter.name
        env = make_environment(newsletter.templates_dir, settings.templates_dir)
        self._templates = load_templates(env, ALERT_TEMPLATES)
        self._inliner = css_inline.CSSInliner(
            keep_at_rules=True, minify_css=True, load_remote_stylesheets=False
        )

    def render(self, post: Post) -> MailContent:
        """The alert of ``post``: its title, summary, image and link, with placeholders for the
        reader's address, their "turn off alerts" link and their preference centre."""
        # The same view as a digest's: one-line text, wrapped text, no placeholder-like text
        # from a feed, so a headline cannot put a reader's address or link anywhere.
        view = PostViews().view(
            Candidate(
                id=post.id or 0,
                title=post.title,
                link=post.link,
                summary=post.summary,
                topics=normalize_topics([*post.categories, *post.tags]),
                published_at=post.published_at,
                first_seen_at=post.first_seen_at,
                image_url=post.image_url,
                image_alt=post.image_alt,
                author=post.author,
            )
        )
        context = {
            "site_name": self.site_name,
            "newsletter_name": self.newsletter_name,
            "title": view.title,
            "text_title": view.text_title,
            "summary": view.summary,
            "text_summary": view.text_summary,
            "link": view.link,
            "author": view.author,
            "image_url": view.image_url,
            "image_alt": view.image_alt,
            "email": EMAIL,
            "name": NAME,
            "alerts_off_url": UNSUBSCRIBE_URL,
            "preferences_url": PREFERENCES_URL,
        }
        try:
            html = self._inliner.inline(render(self._templates["alert.html"], context))
        except css_inline.InlineError as exc:
            problem = f"template alert.html: its CSS cannot be inlined ({exc})"
            raise TemplateProblem(problem) from None
        return MailContent(
            subject=one_line(render(self._templates["alert_subject.txt"], context)),
            text=render(self._templates["alert.txt"], context),
            html=html,
        )
