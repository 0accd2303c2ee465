"""List hygiene's "Still want <newsletter>?" as mail: one per reader, with their own signed
"Yes, keep sending" link written in; their address and the unsubscribe links are left as
placeholders for ``mail.message.assemble``, as in every newsletter's mail.

The template set is ``repermission_subject.txt``, ``repermission.txt`` and
``repermission.html``, looked up in the newsletter's folder, then ``DIGEST_TEMPLATES_DIR``,
then ours, like every mail's.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import css_inline

from digest.compose.templates import load_templates, make_environment, prints_only, render
from digest.compose.views import one_line
from digest.config import Settings
from digest.errors import TemplateProblem
from digest.mail.content import MailContent
from digest.mail.message import EMAIL, NAME, PREFERENCES_URL, UNSUBSCRIBE_ALL_URL, UNSUBSCRIBE_URL

if TYPE_CHECKING:
    from digest.hygiene_rules import Policy
    from digest.newsletter_config import NewsletterConfig

REPERMISSION_TEMPLATES = ("repermission_subject.txt", "repermission.txt", "repermission.html")
# A link no escaping changes (signed tokens on a checked base URL): it may be put into a
# shape rendered once instead of rendering (and CSS-inlining) the mail again per reader.
_INERT_URL = re.compile(r"[A-Za-z0-9._~:/?#\[\]@!$()*+,;=%-]+")
_MARK = "https://q7zkeeplinkmarkz7q.invalid/stay/q7zMARKz7q"


class RepermissionRenderer:
    """Renders one newsletter's re-permission mails under its hygiene policy; the templates
    are compiled when it is made, so a broken override fails before anything is queued."""

    def __init__(self, settings: Settings, newsletter: NewsletterConfig, policy: Policy) -> None:
        env = make_environment(newsletter.templates_dir, settings.templates_dir)
        self._templates = load_templates(env, REPERMISSION_TEMPLATES)
        self._inliner = css_inline.CSSInliner(
            keep_at_rules=True, minify_css=True, load_remote_stylesheets=False
        )
        self._context: dict[str, object] = {
            "site_name": settings.site_name,
            "newsletter_name": newsletter.name,
            "description": newsletter.description,
            "weeks": policy.weeks,
            "digests": policy.digests,
            "grace_days": policy.grace_days,
            "email": EMAIL,
            "name": NAME,
            "unsubscribe_url": UNSUBSCRIBE_URL,
            "unsubscribe_all_url": UNSUBSCRIBE_ALL_URL,
            "preferences_url": PREFERENCES_URL,
        }
        self._shapeable = prints_only(env, REPERMISSION_TEMPLATES, "keep_url")
        self._shape: MailContent | None = None

    def render(self, keep_url: str) -> MailContent:
        """The mail with ``keep_url`` as its "Yes, keep sending" link."""
        inert = _INERT_URL.fullmatch(keep_url) is not None
        if self._shape is not None and inert:
            return _fill(self._shape, keep_url)
        mail = self._render(keep_url)
        if self._shapeable and inert and self._shape is None:
            # Trusted only once a real render came out exactly as the shape filled in.
            shape = self._render(_MARK)
            self._shapeable = _fill(shape, keep_url) == mail
            self._shape = shape if self._shapeable else None
        return mail

    def _render(self, keep_url: str) -> MailContent:
        context = {**self._context, "keep_url": keep_url}
        try:
            html = self._inliner.inline(render(self._templates["repermission.html"], context))
        except css_inline.InlineError as exc:
            raise TemplateProblem(
                f"template repermission.html: its CSS cannot be inlined ({exc})"
            ) from None
        return MailContent(
            subject=one_line(render(self._templates["repermission_subject.txt"], context)),
            text=render(self._templates["repermission.txt"], context),
            html=html,
        )


def _fill(shape: MailContent, url: str) -> MailContent:
    parts = (shape.subject, shape.text, shape.html)
    return MailContent(*(part.replace(_MARK, url) for part in parts))
