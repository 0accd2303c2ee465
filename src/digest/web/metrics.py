"""``GET /metrics``: how digest stands, in Prometheus text format, read from the store at scrape.

A custom collector queries the store on each scrape rather than counting in memory, so every
process (several workers, ``digest send`` from cron) is reflected, and a restart loses nothing.
Each app gets its own ``CollectorRegistry``; nothing global is built at import time.

While ``DIGEST_METRICS_TOKEN`` is unset, only this machine (a loopback client) may scrape,
403 otherwise; with it set, a scrape needs ``Authorization: Bearer <token>`` (Prometheus:
``authorization: {credentials: ...}``), 401 otherwise. How many people subscribe is a
newsroom's business; and none of the figures moves with a stranger's subscribe request
(``stats.figures``), so even a scraper cannot use them to learn who subscribes.

The figures come from ``digest/stats.py``, as those of ``digest status`` and ``/api/stats`` do.
Send latency (``sent_at - created_at``: from enqueueing to the server's acceptance) is
cumulative over every sent row, as a Prometheus histogram must be.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from sqlalchemy.exc import SQLAlchemyError

from digest.click_totals import ClickTotal
from digest.db import Database
from digest.errors import DigestError, StoreUnavailable, first_line
from digest.stats import figures
from digest.web.bearer import require_bearer
from digest.web.deps import DatabaseDep, SettingsDep
from digest.web.errors import public_message
from digest.web.ratelimit import is_local

router = APIRouter(tags=["metrics"])
_bearer = HTTPBearer(auto_error=False, description="the value of DIGEST_METRICS_TOKEN, when set")


class StoreCollector(Collector):
    """Reads the counts from the store each time Prometheus scrapes."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        """The metric families, from one read transaction."""
        with self.db.transaction() as session:
            found = figures(session)
        counts, latency = found.counts, found.latency
        subs = GaugeMetricFamily(
            "digest_subscribers",
            "Active subscribers (other statuses move with strangers' subscribe requests).",
            labels=["status"],
        )
        for status, n in sorted(counts.subscribers.items()):
            subs.add_metric([status], n)
        yield subs
        deliveries = GaugeMetricFamily(
            "digest_deliveries",
            "Outbox rows (messages) by state, confirmation mails left out.",
            labels=["state"],
        )
        for state, n in sorted(counts.deliveries.items()):
            deliveries.add_metric([state], n)
        yield deliveries
        smtp = GaugeMetricFamily(
            "digest_smtp_replies",
            "Deliveries by the class of the mail server's last reply.",
            labels=["class"],
        )
        for cls, n in sorted(found.replies.items()):
            smtp.add_metric([cls], n)
        yield smtp
        buckets = [(floatToGoString(bound), float(n)) for bound, n in latency.buckets]
        buckets.append(("+Inf", float(latency.count)))
        yield HistogramMetricFamily(
            "digest_send_latency_seconds",
            "Seconds from enqueueing a message to the server accepting it (sent rows).",
            buckets=buckets,
            sum_value=latency.seconds,
        )
        alerts = CounterMetricFamily(
            "digest_alerts",
            "Breaking-news alerts per reader: sent, held by budget or quiet hours, expired "
            "unsent, folded into a digest.",
            labels=["outcome"],
        )
        for outcome, n in sorted(counts.alerts.items()):
            alerts.add_metric([outcome], n)
        yield alerts
        yield from _clicks(found.clicks)
        yield GaugeMetricFamily("digest_editions", "Editions made.", value=counts.editions)
        yield GaugeMetricFamily("digest_feeds", "Feeds polled on schedule.", value=counts.feeds)
        yield GaugeMetricFamily(
            "digest_feeds_failing", "Feeds whose polls are failing now.", value=counts.feeds_failing
        )


def _clicks(totals: list[ClickTotal]) -> Iterator[Metric]:
    """Clicks per newsletter, readers' and machines' apart (unique clicks are per mail, in
    ``digest stats``: summing them here would read every clicked copy on every scrape)."""
    clicks = CounterMetricFamily(
        "digest_clicks",
        "Clicks on tracked links: by readers (human) and by link scanners (machine).",
        labels=["newsletter", "kind"],
    )
    for t in totals:
        clicks.add_metric([t.newsletter, "human"], t.human)
        clicks.add_metric([t.newsletter, "machine"], t.machine)
    yield clicks


def registry_for(request: Request, db: Database) -> CollectorRegistry:
    """The app's registry, made on the first scrape (one per app, so two apps never clash)."""
    registry = getattr(request.app.state, "metrics_registry", None)
    if registry is None:
        # auto_describe=False: registering must not run the store queries.
        registry = CollectorRegistry(auto_describe=False)
        registry.register(StoreCollector(db))
        request.app.state.metrics_registry = registry
    return registry


def require_scraper(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """With ``DIGEST_METRICS_TOKEN`` set, only a scrape carrying it; else only this machine."""
    if settings.metrics_token:
        require_bearer(
            credentials, settings.metrics_token, what="metrics", setting="DIGEST_METRICS_TOKEN"
        )
        return
    peer = request.client.host if request.client else None
    if not is_local(peer, request.headers, settings.trusted_proxies):
        raise HTTPException(
            403,
            "/metrics answers only this machine while DIGEST_METRICS_TOKEN is unset; set it "
            "and scrape with Authorization: Bearer <DIGEST_METRICS_TOKEN>",
        )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    dependencies=[Depends(require_scraper)],
    responses={
        401: {"description": "DIGEST_METRICS_TOKEN is set and was not presented"},
        403: {"description": "DIGEST_METRICS_TOKEN is unset and the client is not loopback"},
    },
)
async def metrics(request: Request, db: DatabaseDep) -> Response:
    """Subscribers, outbox, SMTP replies, send latency, clicks per newsletter, editions and
    feeds, as Prometheus text."""
    registry = registry_for(request, db)
    try:
        body = await run_in_threadpool(generate_latest, registry)
    except (DigestError, SQLAlchemyError) as exc:
        # The store is down: say so plainly (its address only in the log); Prometheus records
        # the failed scrape.
        fault = exc if isinstance(exc, DigestError) else StoreUnavailable(first_line(exc))
        reason = public_message(fault, "GET /metrics")
        return Response(f"# metrics unavailable: {reason}\n", status_code=503)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
