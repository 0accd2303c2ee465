"""``/desk/audit``: the audit log, newest first, a page at a time (``?before=ID``, so each
page costs the same however long the log grows), filtered by action (``?action=``)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response

from digest import audit
from digest.models import AuditEntry
from digest.web.deps import SessionDep
from digest.web.desk.guard import Viewer, desk_enabled
from digest.web.desk.render import desk_page

router = APIRouter(
    prefix="/desk", tags=["desk"], include_in_schema=False, dependencies=[Depends(desk_enabled)]
)

#: Entries per page.
PAGE = 50
MAX_ACTION = 64  # the column's length


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def changes(entry: AuditEntry) -> list[dict[str, str]]:
    """What the entry changed, one line per field: its value before and after ("" if none)."""
    before, after = entry.before or {}, entry.after or {}
    keys = list(before) + [k for k in after if k not in before]
    return [
        {
            "field": key,
            "before": _shown(before[key]) if key in before else "",
            "after": _shown(after[key]) if key in after else "",
        }
        for key in keys
    ]


def _before_id(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit() or len(value) > 18:
        raise HTTPException(400, "The page to start from (before=) must be an entry's number.")
    return int(value)


@router.get("/audit")
def audit_log(
    request: Request,
    desk: Viewer,
    session: SessionDep,
    before: str | None = None,
    action: str | None = None,
) -> Response:
    """The log, newest first, ``PAGE`` entries from ``before``, of one action when given."""
    wanted = (action or "").strip()[:MAX_ACTION]
    entries = audit.recent(session, limit=PAGE, before_id=_before_id(before), action=wanted)
    rows = [{"entry": e, "changes": changes(e)} for e in entries]
    older = None
    if len(entries) == PAGE:
        query = {"before": entries[-1].id} | ({"action": wanted} if wanted else {})
        older = "/desk/audit?" + urlencode(query)
    return desk_page(
        request,
        "audit",
        desk,
        title="Audit log",
        rows=rows,
        action=wanted,
        older=older,
        paged=before is not None and before != "",
    )
