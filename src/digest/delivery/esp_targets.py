"""Where an email service's API is and how digest signs in to it, read from ``DIGEST_SMTP_URL``.

Three URL forms name a mail service instead of an SMTP relay (the contract's "More transports"):

* ``ses://REGION``: Amazon SES v2 in that region; credentials from the standard AWS variables;
* ``postmark://TOKEN@``: Postmark with that server token;
* ``mailgun://KEY@DOMAIN``: Mailgun with that API key, sending for that domain.

Each takes ``?endpoint=URL`` to reach another API host (a regional one, or a local server in
tests) and ``?webhook_secret=S``, which turns on the service's bounce and complaint webhook
(``web/esp_hooks.py``): for Mailgun its webhook signing key, for SES (through SNS) and Postmark
the password of the HTTP Basic credentials put in the webhook's URL, 24 characters or more.
SES also takes ``?sns_topic=ARN``: the SNS topic whose signed posts the webhook accepts, with
or instead of the Basic credentials (every SNS post's signature is checked either way).
Postmark also takes ``?stream=ID``, the message stream (``outbound`` unless given).
Pure: ``parse_esp_url`` raises ValueError with a message a person understands, which the
settings class reports as one line naming ``DIGEST_SMTP_URL``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

ESP_SCHEMES = ("ses", "postmark", "mailgun")
# AWS region names: us-east-1, eu-west-2, ap-southeast-1, us-gov-west-1, cn-north-1...
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
_DOMAIN = re.compile(
    r"(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)
# arn:aws:sns:eu-west-1:123456789012:ses-bounces (also the aws-cn and aws-us-gov partitions)
_SNS_TOPIC = re.compile(
    r"arn:aws(-cn|-us-gov)?:sns:[a-z]{2}(-[a-z]+)+-\d{1,2}:\d{12}:[A-Za-z0-9_-]{1,256}"
)
_STREAM = re.compile(r"[A-Za-z0-9_-]{1,64}")
_OPTIONS = {
    "ses": {"endpoint", "webhook_secret", "sns_topic"},
    "postmark": {"endpoint", "stream", "webhook_secret"},
    "mailgun": {"endpoint", "webhook_secret"},
}
MIN_WEBHOOK_SECRET = 24  # as for DIGEST_ADMIN_TOKEN: a password nobody guesses


@dataclass(frozen=True, slots=True)
class EspTarget:
    """One email service's API: which service, its base URL and what signs digest in."""

    service: str  # "ses", "postmark" or "mailgun"
    endpoint: str  # base URL without a trailing slash, e.g. https://api.postmarkapp.com
    region: str = ""  # SES only
    token: str = ""  # Postmark's server token or Mailgun's API key
    domain: str = ""  # Mailgun's sending domain
    stream: str = "outbound"  # Postmark's message stream
    webhook_secret: str = ""  # empty (and no sns_topic): the webhook route answers 404
    sns_topic: str = ""  # SES only: the topic ARN whose posts count


def is_esp_url(url: str) -> bool:
    """Whether ``url`` names an email service rather than SMTP or a folder."""
    return urlsplit(url).scheme in ESP_SCHEMES


def checked_esp_url(url: str) -> str:
    """``url`` itself once ``parse_esp_url`` finds nothing wrong with it."""
    parse_esp_url(url)
    return url


def parse_esp_url(url: str) -> EspTarget:
    """The service ``url`` names; ValueError saying what is wrong with it."""
    parts = urlsplit(url)
    service = parts.scheme
    if service not in ESP_SCHEMES:
        raise ValueError(f"not an email service URL: {service}://")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - _OPTIONS[service])
    if unknown:
        raise ValueError(f"{service}:// takes no option {unknown[0]!r}")
    endpoint = options.get("endpoint")
    if endpoint is not None:
        endpoint = _endpoint(endpoint)
    secret = options.get("webhook_secret", "")
    if secret and service != "mailgun" and len(secret) < MIN_WEBHOOK_SECRET:
        raise ValueError(f"webhook_secret needs {MIN_WEBHOOK_SECRET} characters or more")
    user = unquote(parts.username) if parts.username else ""
    host = parts.hostname or ""
    if service == "ses":
        if user or parts.password:
            raise ValueError("ses://REGION carries no credentials: set the AWS_* variables")
        if not _REGION.fullmatch(host):
            raise ValueError(f"not an AWS region: {host!r} (like ses://eu-west-1)")
        topic = options.get("sns_topic", "")
        if topic and not _SNS_TOPIC.fullmatch(topic):
            raise ValueError(f"not an SNS topic ARN: {topic!r}")
        base = endpoint or f"https://email.{host}.amazonaws.com"
        return EspTarget("ses", base, region=host, webhook_secret=secret, sns_topic=topic)
    if service == "postmark":
        if not user or host:
            raise ValueError("write postmark://SERVER_TOKEN@ (the token, then @)")
        stream = options.get("stream", "outbound")
        if not _STREAM.fullmatch(stream):
            raise ValueError(f"not a message stream ID: {stream!r}")
        base = endpoint or "https://api.postmarkapp.com"
        return EspTarget("postmark", base, token=user, stream=stream, webhook_secret=secret)
    if not user or not host:
        raise ValueError("write mailgun://API_KEY@DOMAIN")
    if not _DOMAIN.fullmatch(host):
        raise ValueError(f"not a mail domain: {host!r}")
    base = endpoint or "https://api.mailgun.net"
    return EspTarget("mailgun", base, token=user, domain=host, webhook_secret=secret)


def _endpoint(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"endpoint must be an http(s) URL, not {value!r}")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ValueError(f"bad port in endpoint {value!r}") from None
    return value.rstrip("/")
