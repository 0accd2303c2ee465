"""Reading a page's form as a browser would submit it: what a person sees is what gets posted."""

from __future__ import annotations

from html.parser import HTMLParser


class _Form(HTMLParser):
    def __init__(self, action: str) -> None:
        super().__init__()
        self.action = action
        self.inside = False
        self.fields: list[tuple[str, str]] = []
        self._select: str | None = None
        self._first_option: str | None = None
        self._selected = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("action") == self.action
        if not self.inside:
            return
        if tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            self.fields.append((a["name"], a.get("value", "on" if kind == "checkbox" else "")))
        elif tag == "select":
            self._select, self._first_option, self._selected = a.get("name"), None, False
        elif tag == "option" and self._select:
            if self._first_option is None:
                self._first_option = a.get("value", "")
            if "selected" in a and not self._selected:
                self.fields.append((self._select, a.get("value", "")))
                self._selected = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select" and self._select:
            if not self._selected and self._first_option is not None:
                self.fields.append((self._select, self._first_option))
            self._select = None


def form_fields(html: str, action: str) -> list[tuple[str, str]]:
    """The (name, value) pairs the form posting to ``action`` submits as the page stands."""
    parser = _Form(action)
    parser.feed(html)
    return parser.fields


def edit(
    fields: list[tuple[str, str]],
    *,
    put: dict[str, str] | None = None,
    tick: tuple[tuple[str, str], ...] = (),
    untick: tuple[tuple[str, str], ...] = (),
) -> list[tuple[str, str]]:
    """``fields`` as a person changes them: boxes unticked and ticked, one-value fields put."""
    out = [f for f in fields if f not in untick] + list(tick)
    for name, value in (put or {}).items():
        out = [f for f in out if f[0] != name] + [(name, value)]
    return out
