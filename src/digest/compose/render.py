"""A selection as mail: subject, text and HTML of a body shared by everyone who gets the same
posts, with the personal parts left as placeholders for ``mail.message.assemble``.

One ``DigestRenderer`` serves one edition (or one process): it keeps the compiled templates,
each post's text wrapped once, and each body rendered and CSS-inlined once per key.
"""

from __future__ import annotations

import hashlib
import html
import re
import textwrap
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import css_inline
import jinja2
from jinja2 import nodes

from digest.addresses import clean_name
from digest.compose.select import Candidate, Selection
from digest.compose.templates import (
    load_templates,
    make_environment,
    render,
    template_version,
)
from digest.config import Settings
from digest.errors import TemplateProblem
from digest.mail.message import EMAIL, NAME, PREFERENCES_URL, UNSUBSCRIBE_URL

TEXT_WIDTH = 78
SUMMARY_CHARS = 320
DIGEST_TEMPLATES = ("digest_subject.txt", "digest.txt", "digest.html")
CONFIRM_TEMPLATES = ("confirm_subject.txt", "confirm.txt", "confirm.html")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")  # fmt: skip
_TAG = re.compile(r"<[^>]*>")
# Bodies carry "%%EMAIL%%"-style placeholders; text from a feed must never add one.
_PLACEHOLDER_LIKE = re.compile(r"%%(?=[A-Z_]+%%)")
_BODY_CACHE = 256
_VIEW_CACHE = 5000


def date_line(day: date) -> str:
    """The date as the site's header writes it: "Sunday, November 29, 2026" (any locale)."""
    return f"{_DAYS[day.weekday()]}, {_MONTHS[day.month - 1]} {day.day}, {day.year}"


def plain_summary(raw: str, limit: int = SUMMARY_CHARS) -> str:
    """A summary as one paragraph of plain text: tags dropped, entities decoded, cut at a word."""
    text = " ".join(html.unescape(_TAG.sub(" ", raw or "")).split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:.-")
    return cut + "…"


@dataclass(frozen=True)
class PostView:
    """A post as the templates see it; the text form is wrapped once, not per render."""

    id: int
    title: str
    link: str
    summary: str
    author: str
    image_url: str | None
    image_alt: str
    text_title: str  # wrapped at 78 columns
    text_summary: str  # wrapped at 78 columns, indented


@dataclass(frozen=True)
class RenderedBody:
    """One shared digest body; ``key`` names what makes it unique."""

    subject: str
    text: str
    html: str
    post_ids: tuple[int, ...]
    key: str


@dataclass(frozen=True)
class RenderedMail:
    """A transactional mail, complete (no placeholders)."""

    subject: str
    text: str
    html: str


def _wrap(text: str, indent: str = "") -> str:
    return textwrap.fill(
        text,
        width=TEXT_WIDTH,
        initial_indent=indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _inert_url(url: str | None) -> str:
    """A feed's URL with ``%%`` percent-encoded: the same URL to a browser, but never a
    placeholder that would put each subscriber's address or unsubscribe link into it."""
    return (url or "").replace("%%", "%25%25")


def _inert(text: str) -> str:
    """``text`` with anything shaped like a placeholder broken by a zero-width space."""
    return _PLACEHOLDER_LIKE.sub("%\u200b%", text) if "%%" in text else text


# Stand-ins for the personal parts of a confirmation mail, and awkward values to learn and
# check how the inlined HTML escapes each place they appear in (text, attribute, raw).
_NAME_MARK = "q7zDIGESTNAMEMARKz7q"
_URL_MARK = "q7zDIGESTURLMARKz7q"
_MARKS = re.compile(f"({_NAME_MARK}|{_URL_MARK})")
_PROBE_NAMES = ("<\"&'Zoë\u00a0> Ann", "\"<'&>\u00a0Bob é")
_PROBE_URLS = (
    "<\"&https://news.example.com/confirm/a?b=1&c='2'>\u00a0",
    '"<https://news.example.com/confirm/t?x="1"&y=<2>\'\u00a0',
)
_ESCAPES: tuple[Callable[[str], str], ...] = (
    lambda v: v,  # plain text parts
    # How the CSS inliner writes text and attribute values back out (html5ever's rules).
    lambda v: (
        v.replace("&", "&amp;")
        .replace("\u00a0", "&nbsp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
    ),
    lambda v: v.replace("&", "&amp;").replace("\u00a0", "&nbsp;").replace('"', "&quot;"),
)
_PERSONAL = frozenset({"name", "confirm_url"})


def _prints_only(env: jinja2.Environment, template_name: str) -> bool:
    """Whether the template only prints ``name``/``confirm_url`` as they are, or tests ``name``."""
    if env.loader is None:
        return False
    source, _, _ = env.loader.get_source(env, template_name)
    tree = env.parse(source)
    if any(True for _ in tree.find_all((nodes.Extends, nodes.Include, nodes.Import,
                                         nodes.FromImport))):  # fmt: skip
        return False

    def ok(node: nodes.Node) -> bool:
        for child in node.iter_child_nodes():
            if isinstance(child, nodes.Name) and child.name in _PERSONAL:
                printed = isinstance(node, nodes.Output)
                tested = isinstance(node, nodes.If) and child is node.test and child.name == "name"
                if not (printed or tested):
                    return False
            elif not ok(child):
                return False
        return True

    return ok(tree)


# One part of a shape: literal text, then (optionally) which value goes next and its escaping.
_Piece = tuple[str, int, Callable[[str], str] | None]


@dataclass(frozen=True)
class _ConfirmShape:
    """A rendered confirmation mail: where the name and link go, and how each is escaped."""

    parts: tuple[tuple[_Piece, ...], ...]  # subject, text, html

    @classmethod
    def learn(
        cls, marked: tuple[str, ...], learnt: tuple[str, ...], name: str, url: str
    ) -> _ConfirmShape | None:
        """The shape of ``marked``, each mark's escaping read off ``learnt`` (rendered with
        ``name`` and ``url``); None when ``learnt`` does not line up with ``marked``."""
        values = {_NAME_MARK: (0, name), _URL_MARK: (1, url)}
        parts = []
        for text, out in zip(marked, learnt, strict=True):
            chunks = _MARKS.split(text)
            pieces: list[_Piece] = []
            pos = 0
            for i in range(0, len(chunks), 2):
                literal = chunks[i]
                if not out.startswith(literal, pos):
                    return None
                pos += len(literal)
                if i + 1 == len(chunks):
                    pieces.append((literal, 0, None))
                    break
                index, value = values[chunks[i + 1]]
                escape = next((e for e in _ESCAPES if out.startswith(e(value), pos)), None)
                if escape is None:
                    return None
                pos += len(escape(value))
                pieces.append((literal, index, escape))
            if pos != len(out):
                return None
            parts.append(tuple(pieces))
        return cls(tuple(parts))

    def fill(self, name: str, url: str) -> tuple[str, str, str]:
        """Subject, text and HTML with this name and link."""
        values = (name, url)
        subject, text, html_ = (
            "".join(lit if esc is None else lit + esc(values[i]) for lit, i, esc in pieces)
            for pieces in self.parts
        )
        return subject, text, html_


class DigestRenderer:
    """Renders digest bodies, their web version, and confirmation mails for one installation."""

    def __init__(self, settings: Settings) -> None:
        self.site_name = settings.site_name
        self.env = make_environment(settings.templates_dir)
        self.version = template_version(self.env, DIGEST_TEMPLATES)
        self._templates = load_templates(self.env, DIGEST_TEMPLATES + CONFIRM_TEMPLATES)
        # Dark-mode and phone rules live in @media blocks that cannot be inlined; keep them.
        self._inliner = css_inline.CSSInliner(
            keep_at_rules=True, minify_css=True, load_remote_stylesheets=False
        )
        self._views: dict[tuple[int, str, str], PostView] = {}
        self._bodies: OrderedDict[str, RenderedBody] = OrderedDict()
        self._confirm_shapes: dict[tuple[bool, str], _ConfirmShape | None] = {}

    # -- posts ---------------------------------------------------------------------------

    def _view(self, post: Candidate) -> PostView:
        cache_key = (post.id, post.title, post.summary)
        view = self._views.get(cache_key)
        if view is None:
            title = _inert(_one_line(post.title)) or post.link
            summary = _inert(plain_summary(post.summary))
            view = PostView(
                id=post.id,
                title=title,
                link=_inert_url(post.link),
                summary=summary,
                author=_inert(_one_line(post.author)),
                image_url=_inert_url(post.image_url) or None,
                image_alt=_inert(_one_line(post.image_alt)) or title,
                text_title=_wrap(title),
                text_summary=_wrap(summary, "  ") if summary else "",
            )
            if len(self._views) >= _VIEW_CACHE:
                # A long-lived renderer (the web app's) must not grow without end.
                self._views.clear()
            self._views[cache_key] = view
        return view

    # -- digest --------------------------------------------------------------------------

    def body_key(
        self, selection: Selection, *, cadence: str, local_date: date, archive_url: str | None
    ) -> str:
        """What makes a body unique: sections and posts, cadence, date, link, site, templates.

        A post's words are part of it too, so an edited headline is never served from a body
        rendered before the edit.
        """
        sha = hashlib.sha256()
        for post in (*selection.featured, None, *selection.latest):
            if post is None:
                sha.update(b"\1")  # the section break: the same ids split otherwise differ
                continue
            for field in (str(post.id), post.title, post.link, post.summary, post.author,
                          post.image_url or "", post.image_alt):  # fmt: skip
                sha.update(field.encode("utf-8", "surrogatepass") + b"\0")
        parts = (
            sha.hexdigest(),
            cadence,
            local_date.isoformat(),
            archive_url or "",
            self.site_name,
            self.version,
        )
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]

    def _context(
        self,
        selection: Selection,
        *,
        cadence: str,
        local_date: date,
        archive_url: str | None,
        personal: bool,
    ) -> dict[str, object]:
        featured = [self._view(p) for p in selection.featured]
        latest = [self._view(p) for p in selection.latest]
        lead = (featured or latest or [None])[0]
        count = len(featured) + len(latest)
        return {
            "site_name": self.site_name,
            "cadence": cadence,
            "date_line": date_line(local_date),
            "featured": featured,
            "latest": latest,
            "lead": lead,
            "count": count,
            "more": count - 1 if lead else 0,
            "archive_url": archive_url,
            "personal": personal,
            "email": EMAIL,
            "name": NAME,
            "unsubscribe_url": UNSUBSCRIBE_URL,
            "preferences_url": PREFERENCES_URL,
        }

    def _html(self, name: str, context: dict[str, object]) -> str:
        # Inlined once per body: the shared HTML, never a per-person copy.
        try:
            return self._inliner.inline(render(self._templates[name], context))
        except css_inline.InlineError as exc:
            raise TemplateProblem(f"template {name}: its CSS cannot be inlined ({exc})") from None

    def render_body(
        self,
        selection: Selection,
        *,
        cadence: str,
        local_date: date,
        archive_url: str | None = None,
    ) -> RenderedBody:
        """The shared body of everyone with this selection, cadence and local date."""
        key = self.body_key(
            selection, cadence=cadence, local_date=local_date, archive_url=archive_url
        )
        cached = self._bodies.get(key)
        if cached is not None:
            self._bodies.move_to_end(key)
            return cached
        context = self._context(
            selection,
            cadence=cadence,
            local_date=local_date,
            archive_url=archive_url,
            personal=True,
        )
        body = RenderedBody(
            subject=_one_line(render(self._templates["digest_subject.txt"], context)),
            text=render(self._templates["digest.txt"], context),
            html=self._html("digest.html", context),
            post_ids=selection.post_ids,
            key=key,
        )
        self._bodies[key] = body
        if len(self._bodies) > _BODY_CACHE:
            self._bodies.popitem(last=False)
        return body

    def render_web_version(
        self,
        selection: Selection,
        *,
        cadence: str,
        local_date: date,
        archive_url: str | None = None,
    ) -> str:
        """The archive page of an edition: the digest HTML without anyone's personal links."""
        context = self._context(
            selection,
            cadence=cadence,
            local_date=local_date,
            archive_url=archive_url,
            personal=False,
        )
        return self._html("digest.html", context)

    # -- transactional -------------------------------------------------------------------

    def render_confirm(
        self, *, name: str, confirm_url: str, expiry: str = "7 days"
    ) -> RenderedMail:
        """The confirmation mail: complete, addressed to ``name``, with the confirm link."""
        name = clean_name(name)
        # Every subscribe request renders one: the templates and the CSS inlining run once per
        # shape (named or not, expiry), and each request only fills in its name and link.
        key = (bool(name), expiry)
        if key not in self._confirm_shapes:
            self._confirm_shapes[key] = self._confirm_shape(named=bool(name), expiry=expiry)
        shape = self._confirm_shapes[key]
        if shape is None:
            subject, text, html_ = self._confirm_parts(name, confirm_url, expiry)
        else:
            subject, text, html_ = shape.fill(name, confirm_url)
        return RenderedMail(subject=_one_line(subject), text=text, html=html_)

    def _confirm_parts(self, name: str, confirm_url: str, expiry: str) -> tuple[str, str, str]:
        """Subject (not yet on one line), text and inlined HTML, rendered from the templates."""
        context = {
            "site_name": self.site_name,
            "name": name,
            "confirm_url": confirm_url,
            "expiry": expiry,
        }
        return (
            render(self._templates["confirm_subject.txt"], context),
            render(self._templates["confirm.txt"], context),
            self._html("confirm.html", context),
        )

    def _confirm_shape(self, *, named: bool, expiry: str) -> _ConfirmShape | None:
        """The confirmation mail with marks for name and link, or None when it cannot be one.

        Only templates that print ``name`` and ``confirm_url`` as they are (or test ``name``
        alone) qualify: a filter or a comparison on them would not survive substitution. How
        each mark is escaped is learnt from a render of awkward values, and the shape is
        trusted only once it reproduces a second such render exactly.
        """
        if not all(_prints_only(self.env, name) for name in CONFIRM_TEMPLATES):
            return None
        names = _PROBE_NAMES if named else ("", "")
        marked = self._confirm_parts(_NAME_MARK if named else "", _URL_MARK, expiry)
        learnt = self._confirm_parts(names[0], _PROBE_URLS[0], expiry)
        shape = _ConfirmShape.learn(marked, learnt, names[0], _PROBE_URLS[0])
        if shape is None:
            return None
        check = self._confirm_parts(names[1], _PROBE_URLS[1], expiry)
        return shape if shape.fill(names[1], _PROBE_URLS[1]) == check else None
