"""Bearer tokens for the machine-facing endpoints: the admin API and the Prometheus scrape.

Both compare the presented token with a setting in constant time and answer 401 with
``WWW-Authenticate: Bearer`` when it is missing or wrong; only what happens while the setting
is unset differs (the admin API is off, the metrics are open), so that lives with each route.
"""

from __future__ import annotations

import hmac

from fastapi import HTTPException
from fastapi.security import HTTPAuthorizationCredentials


def require_bearer(
    credentials: HTTPAuthorizationCredentials | None, expected: str, *, what: str, setting: str
) -> None:
    """Raise 401 unless ``credentials`` carry ``expected``; the message names the setting."""
    given = credentials.credentials if credentials is not None else ""
    # compare_digest: the time taken must not tell how much of a guess was right.
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(
            401,
            f"a valid {what} token is required: Authorization: Bearer <{setting}>",
            headers={"WWW-Authenticate": "Bearer"},
        )
