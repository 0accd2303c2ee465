"""Safe HTML as plain text a person reads: paragraphs, list items, quotes, and each link as
"text (url)" so the text part of a mail keeps what the HTML part points to (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from digest.posts.sanitize import DROPPED_WITH_CONTENT

_BLOCKS = frozenset(
    {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "figure", "figcaption", "table", "tr",
     "dl", "dt", "dd", "caption"}
)  # fmt: skip
_SPACES = re.compile(r"[ \t\r\n\f\v]+")


@dataclass
class _Block:
    text: str
    group: int  # items of one list (rows of one table) share it: they sit on consecutive lines


@dataclass
class _Reader(HTMLParser):
    blocks: list[_Block] = field(default_factory=list)
    line: list[str] = field(default_factory=list)
    links: list[tuple[str, int]] = field(default_factory=list)
    lists: list[int | None] = field(default_factory=list)  # per open list: its count, or None
    marker: str = ""
    quote: int = 0
    pre: int = 0
    skip: int = 0
    cells: int = 0
    groups: int = 0  # lists and tables opened so far
    group: int = 0  # the outermost open list's or table's number; 0: none

    def __post_init__(self) -> None:
        super().__init__(convert_charrefs=True)

    def flush(self, *, item: bool = False) -> None:
        """The text gathered so far as one block, with its list marker and quote marks."""
        text = "".join(self.line)
        if not self.pre:
            lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
            text = "\n".join(line for line in lines if line)
        if text.strip():
            indent = "  " * max(len(self.lists) - 1, 0)
            first, *rest = text.split("\n")
            hang = indent + " " * len(self.marker)
            lines = [indent + self.marker + first, *(hang + line for line in rest)]
            if self.quote:
                lines = [("> " * self.quote) + line for line in lines]
            grouped = (item or bool(self.marker)) and self.group
            self.blocks.append(_Block("\n".join(lines), grouped or 0))
            self.marker = ""  # an item's paragraphs after its first are not numbered again
        self.line = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skip or tag in DROPPED_WITH_CONTENT:
            self.skip += tag in DROPPED_WITH_CONTENT
            return
        found = dict(attrs)
        if tag in _BLOCKS or tag in ("blockquote", "pre", "ul", "ol", "hr"):
            self.flush()
        if tag in ("ul", "ol", "table") and not self.group:
            self.groups += 1
            self.group = self.groups
        if tag == "tr":
            self.cells = 0
        elif tag in ("td", "th"):
            if self.cells:
                self.line.append(" | ")
            self.cells += 1
        elif tag == "li":
            self.flush()
            count = self.lists[-1] if self.lists else None
            if count is None:
                self.marker = "- "
            else:
                self.lists[-1] = count + 1
                self.marker = f"{count + 1}. "
        elif tag in ("ul", "ol"):
            self.lists.append(0 if tag == "ol" else None)
        elif tag == "blockquote":
            self.quote += 1
        elif tag == "pre":
            self.pre += 1
        elif tag == "br":
            self.line.append("\n")
        elif tag == "hr":
            self.blocks.append(_Block("* * *", 0))
        elif tag == "a":
            self.links.append((found.get("href") or "", len(self.line)))
        elif tag == "img" and found.get("alt"):
            self.line.append(f"[{found['alt']}]")

    def handle_endtag(self, tag: str) -> None:
        if self.skip:
            self.skip -= tag in DROPPED_WITH_CONTENT
            return
        if tag == "a" and self.links:
            href, start = self.links.pop()
            text = _SPACES.sub(" ", "".join(self.line[start:])).strip()
            if href and not text:
                self.line.append(href)
            elif href and href not in (text, f"mailto:{text}", f"{text}/"):
                self.line.append(f" ({href})")
        elif tag == "li":
            self.flush(item=True)
        elif tag in ("ul", "ol") and self.lists:
            self.flush()
            self.lists.pop()
            self.group = self.group if self.lists else 0
        elif tag == "table":
            self.flush()
            self.group = self.group if self.lists else 0
        elif tag == "tr":
            self.flush(item=True)
        elif tag == "blockquote" and self.quote:
            self.flush()
            self.quote -= 1
        elif tag == "pre" and self.pre:
            self.flush()
            self.pre -= 1
        elif tag in _BLOCKS:
            self.flush(item=bool(self.marker))

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.line.append(data if self.pre else _SPACES.sub(" ", data))


def readable_text(html: str) -> str:
    """The text of a safe HTML fragment, laid out for a plain-text mail."""
    reader = _Reader()
    reader.feed(html)
    reader.close()
    reader.flush()
    out: list[str] = []
    previous: _Block | None = None
    for block in reader.blocks:
        if previous is not None:
            together = previous.group and previous.group == block.group
            out.append("\n" if together else "\n\n")
        out.append(block.text)
        previous = block
    return "".join(out).strip("\n")
