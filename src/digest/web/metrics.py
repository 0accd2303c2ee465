"""``GET /metrics``: how digest stands, in Prometheus text format, read from the store at scrape.

A custom collector queries the store on each scrape rather than counting in memory, so every
process (several workers, ``digest send`` from cron) is reflected, and a restart loses nothing.
Each app gets its own ``CollectorRegistry``; nothing global is built at import time.

Open to anyone who can reach it unless ``DIGEST_METRICS_TOKEN`` is set; then a scrape needs
``Authorization: Bearer <token>`` (Prometheus: ``authorization: {credentials: ...}``), 401
otherwise. The counts are not personal, but how many people subscribe is a newsroom's business.

Send latency is derived from the outbox rows (``sent_at - created_at``: from enqueueing to the
server's acceptance), because the worker keeps no in-process histogram; it is cumulative over
every sent row, as a Prometheus histogram must be.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from digest.db import Database
from digest.delivery.stats import outbox_counts
from digest.errors import DigestError, first_line
from digest.models import Delivery, Edition, Feed
from digest.subscribers import count_by_status
from digest.web.bearer import require_bearer
from digest.web.deps import DatabaseDep, SettingsDep

router = APIRouter(tags=["metrics"])
_bearer = HTTPBearer(auto_error=False, description="the value of DIGEST_METRICS_TOKEN, when set")

D = Delivery.__table__  # type: ignore[attr-defined]
E = Edition.__table__  # type: ignore[attr-defined]
F = Feed.__table__  # type: ignore[attr-defined]
# Seconds from enqueueing to acceptance: a digest normally goes within minutes of its hour.
LATENCY_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 24 * 3600.0)


def _reply_classes(session: Session) -> dict[str, int]:
    """Deliveries by the class of the server's last reply (rows without an SMTP code left out:
    skips and cancellations, whose last_reply is a note of ours)."""
    first = sa.func.substr(D.c.last_reply, 1, 1)
    has_code = sa.or_(*(D.c.last_reply.like(f"{digit}__ %") for digit in "245"))
    counts = {"2xx": 0, "4xx": 0, "5xx": 0}
    for digit, n in session.execute(
        sa.select(first, sa.func.count()).where(has_code).group_by(first)
    ):
        counts[f"{digit}xx"] = int(n)
    return counts


def _is_pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _latency_seconds(session: Session) -> sa.ColumnElement[float]:
    if _is_pg(session):
        return sa.func.extract("epoch", D.c.sent_at - D.c.created_at)
    return (sa.func.julianday(D.c.sent_at) - sa.func.julianday(D.c.created_at)) * 86400.0


def _latency(session: Session) -> tuple[list[tuple[str, float]], float]:
    """Cumulative bucket counts and the sum of seconds, in one pass over the sent rows."""
    seconds = _latency_seconds(session)
    columns = [sa.func.count(), sa.func.coalesce(sa.func.sum(seconds), 0.0)]
    columns += [sa.func.count(sa.case((seconds <= b, 1))) for b in LATENCY_BUCKETS]
    row = session.execute(sa.select(*columns).where(D.c.sent_at.is_not(None))).one()
    total, total_seconds, *under = row
    buckets = [(floatToGoString(b), float(n)) for b, n in zip(LATENCY_BUCKETS, under, strict=True)]
    buckets.append(("+Inf", float(total)))
    return buckets, float(total_seconds)


class StoreCollector(Collector):
    """Reads the counts from the store each time Prometheus scrapes."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        """The metric families, from one read transaction."""
        with self.db.transaction() as session:
            people = count_by_status(session)
            outbox = outbox_counts(session)
            replies = _reply_classes(session)
            buckets, latency_sum = _latency(session)
            editions = int(session.execute(sa.select(sa.func.count()).select_from(E)).scalar_one())
            feeds = session.execute(
                sa.select(sa.func.count(), sa.func.count(F.c.failing_since))
            ).one()
        subs = GaugeMetricFamily("digest_subscribers", "Subscribers by status.", labels=["status"])
        for status, n in sorted(people.items()):
            subs.add_metric([status], n)
        yield subs
        deliveries = GaugeMetricFamily(
            "digest_deliveries", "Outbox rows (messages) by state.", labels=["state"]
        )
        for state, n in sorted(outbox.items()):
            deliveries.add_metric([state], n)
        yield deliveries
        smtp = GaugeMetricFamily(
            "digest_smtp_replies",
            "Deliveries by the class of the mail server's last reply.",
            labels=["class"],
        )
        for cls, n in sorted(replies.items()):
            smtp.add_metric([cls], n)
        yield smtp
        yield HistogramMetricFamily(
            "digest_send_latency_seconds",
            "Seconds from enqueueing a message to the server accepting it (sent rows).",
            buckets=buckets,
            sum_value=latency_sum,
        )
        yield GaugeMetricFamily("digest_editions", "Editions made.", value=editions)
        yield GaugeMetricFamily("digest_feeds", "Feeds polled on schedule.", value=feeds[0])
        yield GaugeMetricFamily(
            "digest_feeds_failing", "Feeds whose polls are failing now.", value=feeds[1]
        )


def registry_for(request: Request, db: Database) -> CollectorRegistry:
    """The app's registry, made on the first scrape (one per app, so two apps never clash)."""
    registry = getattr(request.app.state, "metrics_registry", None)
    if registry is None:
        # auto_describe=False: registering must not run the store queries.
        registry = CollectorRegistry(auto_describe=False)
        registry.register(StoreCollector(db))
        request.app.state.metrics_registry = registry
    return registry


def require_metrics_token(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """With ``DIGEST_METRICS_TOKEN`` set, only a scrape carrying it gets through."""
    if settings.metrics_token:
        require_bearer(
            credentials, settings.metrics_token, what="metrics", setting="DIGEST_METRICS_TOKEN"
        )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    dependencies=[Depends(require_metrics_token)],
    responses={401: {"description": "DIGEST_METRICS_TOKEN is set and was not presented"}},
)
async def metrics(request: Request, db: DatabaseDep) -> Response:
    """Subscribers, outbox, SMTP replies, send latency, editions and feeds, as Prometheus text."""
    registry = registry_for(request, db)
    try:
        body = await run_in_threadpool(generate_latest, registry)
    except (DigestError, SQLAlchemyError) as exc:
        # The store is down: say so plainly; Prometheus records the failed scrape.
        return Response(f"# metrics unavailable: {first_line(exc)}\n", status_code=503)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
