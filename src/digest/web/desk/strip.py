"""``POST /desk/posts/strip``: an editor sets the order of the "Don't Miss" strip.

The page offers "move up" and "move down" beside each post of a newsletter's strip; each is a
form carrying the whole new order, so a click is one idempotent write (two clicks of the same
button leave the same order, not a post moved twice).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form
from fastapi.responses import RedirectResponse, Response

from digest import audit
from digest.errors import InvalidInput
from digest.posts import store
from digest.web.deps import SessionDep
from digest.web.desk.guard import EditorPost, desk_enabled

router = APIRouter(
    prefix="/desk", tags=["desk"], include_in_schema=False, dependencies=[Depends(desk_enabled)]
)
#: More places than any strip shows (DIGEST_MAX_FEATURED is at most a handful).
MAX_PLACES = 50


def moves(ids: list[int]) -> list[tuple[str | None, str | None]]:
    """For each post of a strip in order, the order "move up" and "move down" would make
    (None where the post cannot move that way), as the forms send them."""
    found: list[tuple[str | None, str | None]] = []
    for i in range(len(ids)):
        up = down = None
        if i > 0:
            swapped = [*ids[: i - 1], ids[i], ids[i - 1], *ids[i + 1 :]]
            up = ",".join(map(str, swapped))
        if i + 1 < len(ids):
            swapped = [*ids[:i], ids[i + 1], ids[i], *ids[i + 2 :]]
            down = ",".join(map(str, swapped))
        found.append((up, down))
    return found


def parse_order(text: str) -> list[int]:
    """The post ids of an order ("3,1,2"); InvalidInput for anything else."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or len(parts) > MAX_PLACES:
        raise InvalidInput(f"an order names 1 to {MAX_PLACES} posts")
    if not all(p.isascii() and p.isdigit() and len(p) < 10 for p in parts):
        raise InvalidInput("an order is post ids separated by commas")
    return [int(p) for p in parts]


@router.post("/posts/strip")
def set_order(
    desk: EditorPost,
    session: SessionDep,
    order: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """Put the strip's posts in this order (in every newsletter that features them)."""
    ids = parse_order(order)
    before = store.set_strip_order(session, ids)
    audit.record(
        session,
        desk.actor,
        "post.strip_order",
        "Don't Miss",
        before={"order": before},
        after={"order": ids},
    )
    return RedirectResponse("/desk/posts#dont-miss-title", status_code=303)
