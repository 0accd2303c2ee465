"""Who makes a change through the admin API, for the audit log: the holder of the admin token,
from the client's address. A mutating route declares ``ApiActorDep`` and records with
``audit.record`` in its own transaction (the ``SessionDep`` it writes with), or with
``audit.record_after`` when the change commits itself; the actions are those of the CLI
(``digest.cli.audited``) where the change is the same.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from digest.audit import Actor
from digest.web.deps import SettingsDep
from digest.web.ratelimit import client_ip, forwarded_for


async def api_actor(request: Request, settings: SettingsDep) -> Actor:
    """The admin token's holder, calling from the client's IP (as the trusted proxies in
    ``DIGEST_TRUSTED_PROXIES`` report it, else as the server sees it)."""
    peer = request.client.host if request.client else None
    return Actor.api(client_ip(peer, forwarded_for(request.headers), settings.trusted_proxies))


ApiActorDep = Annotated[Actor, Depends(api_actor)]
