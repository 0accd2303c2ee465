"""Amazon SNS message signatures: is a post to ``/esp/ses`` really from SNS, and not stale?

SNS signs every post (Notification, SubscriptionConfirmation, UnsubscribeConfirmation) with the
key of an X.509 certificate it publishes at ``SigningCertURL``: SignatureVersion 1 is
SHA1withRSA, 2 is SHA256withRSA, over "Name\\nvalue\\n" lines of fixed fields in byte order
(AWS: "Verifying the signatures of Amazon SNS messages"). A certificate is only fetched over
https from an ``sns.REGION.amazonaws.com`` host (``.com.cn`` in China), whose TLS certificate
vouches for it, as the AWS SDKs' validators do.

A valid signature proves SNS sent the post, not that the topic is the operator's: anyone can
subscribe this URL to a topic of their own. Which topic counts is the route's business (the
``sns_topic`` option, or the Basic credentials only the operator's subscription knows).

``string_to_sign`` and ``fresh`` are pure; ``SnsVerifier`` fetches and caches certificates.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from digest.errors import SignatureRefused, SnsUnavailable

AWS_SNS_HOST = re.compile(r"sns\.[a-z]{2}(-[a-z]+)+-\d{1,2}\.amazonaws\.com(\.cn)?")
# SNS retries an HTTP(S) delivery for at most 3,600 s ("a hard limit", AWS: "Amazon SNS message
# delivery retries"), and only after a 5xx or no answer; a post older than that plus clock skew
# was not sent now by SNS: it is a replay.
MAX_AGE = timedelta(hours=1, minutes=15)
MAX_SKEW = timedelta(minutes=15)
MAX_CERT_BYTES = 64_000  # an SNS certificate in PEM is about 2 KB
_CACHE_SIZE = 16
_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
_FIELDS["UnsubscribeConfirmation"] = _FIELDS["SubscriptionConfirmation"]
_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}


def string_to_sign(post: Mapping[str, Any]) -> bytes:
    """The bytes SNS signed for ``post``; SignatureRefused when a field it needs is missing."""
    fields = _FIELDS.get(str(post.get("Type")))
    if fields is None:
        raise SignatureRefused("not an SNS message type digest knows")
    lines = []
    for name in fields:
        value = post.get(name)
        if value is None and name == "Subject":
            continue  # the one optional field: absent means left out, not empty
        if not isinstance(value, str):
            raise SignatureRefused(f"the SNS message has no {name}")
        lines.append(f"{name}\n{value}\n")
    return "".join(lines).encode()


def fresh(timestamp: Any, now: datetime) -> bool:
    """Whether an SNS ``Timestamp`` lies within the window a genuine delivery can arrive in."""
    try:
        sent = datetime.fromisoformat(str(timestamp).replace("Z", "+00:00"))
    except ValueError:
        return False
    if sent.tzinfo is None:
        return False
    return now - MAX_AGE <= sent <= now + MAX_SKEW


def _trusted(url: Any, hosts: re.Pattern[str], scheme: str) -> bool:
    parts = urlsplit(str(url))
    return (
        parts.scheme == scheme
        and parts.username is None
        and bool(parts.hostname)
        and hosts.fullmatch(parts.hostname or "") is not None
    )


class SnsVerifier:
    """Checks SNS signatures and confirms subscriptions; one per app, certificates cached.

    ``hosts`` and ``scheme`` exist for tests, which serve their own certificate on loopback;
    the app always builds the default, and no setting reaches them.
    """

    def __init__(
        self,
        *,
        hosts: re.Pattern[str] = AWS_SNS_HOST,
        scheme: str = "https",
        timeout: float = 10.0,
    ) -> None:
        self._hosts = hosts
        self._scheme = scheme
        self._timeout = timeout
        self._certificates: dict[str, x509.Certificate] = {}
        self._lock = threading.Lock()

    def verify(self, post: Mapping[str, Any], now: datetime | None = None) -> None:
        """Return if SNS signed ``post`` lately; SignatureRefused or SnsUnavailable if not."""
        now = now or datetime.now(UTC)
        algorithm = _HASHES.get(str(post.get("SignatureVersion")))
        if algorithm is None:
            raise SignatureRefused("SNS SignatureVersion must be 1 or 2")
        signed = string_to_sign(post)
        try:
            signature = base64.b64decode(str(post.get("Signature", "")), validate=True)
        except (binascii.Error, ValueError):
            raise SignatureRefused("the SNS Signature is not base64") from None
        url = post.get("SigningCertURL")
        if not _trusted(url, self._hosts, self._scheme):
            raise SignatureRefused("the SNS SigningCertURL is not an https URL of an SNS host")
        if not fresh(post.get("Timestamp"), now):
            raise SignatureRefused("the SNS Timestamp is too old (or in the future)")
        certificate = self._certificate(str(url))
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise SignatureRefused("the SNS signing certificate is expired")
        key = certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise SignatureRefused("the SNS signing certificate has no RSA key")
        try:
            key.verify(signature, signed, padding.PKCS1v15(), algorithm())
        except InvalidSignature:
            raise SignatureRefused("the SNS signature does not match the message") from None

    def confirm(self, post: Mapping[str, Any]) -> None:
        """Visit the SubscribeURL of a verified SubscriptionConfirmation."""
        url = post.get("SubscribeURL")
        query = parse_qs(urlsplit(str(url)).query)
        if not _trusted(url, self._hosts, self._scheme) or query.get("Action") != [
            "ConfirmSubscription"
        ]:
            raise SignatureRefused("the SubscribeURL is not an SNS ConfirmSubscription URL")
        try:
            with httpx.Client(timeout=self._timeout, follow_redirects=False) as client:
                answer = client.get(str(url))
        except httpx.HTTPError as exc:
            raise SnsUnavailable(f"SNS did not answer the confirmation: {exc}") from None
        if answer.status_code != 200:
            raise SnsUnavailable(f"SNS answered the confirmation with {answer.status_code}")

    def _certificate(self, url: str) -> x509.Certificate:
        with self._lock:
            cached = self._certificates.get(url)
        if cached is not None:
            return cached
        pem = self._fetch(url)
        try:
            certificate = x509.load_pem_x509_certificate(pem)
        except ValueError:
            raise SignatureRefused("the SigningCertURL does not hold a certificate") from None
        with self._lock:
            if len(self._certificates) >= _CACHE_SIZE:
                self._certificates.pop(next(iter(self._certificates)))
            self._certificates[url] = certificate
        return certificate

    def _fetch(self, url: str) -> bytes:
        try:
            with (
                httpx.Client(timeout=self._timeout, follow_redirects=False) as client,
                client.stream("GET", url) as answer,
            ):
                if answer.status_code >= 500:
                    raise SnsUnavailable(f"the SigningCertURL answered {answer.status_code}")
                if answer.status_code != 200:
                    raise SignatureRefused(f"the SigningCertURL answered {answer.status_code}")
                body = b""
                for chunk in answer.iter_bytes():
                    body += chunk
                    if len(body) > MAX_CERT_BYTES:
                        raise SignatureRefused("the SigningCertURL holds too much to be one")
                return body
        except httpx.HTTPError as exc:
            # A network fault, not the sender's: 503 makes SNS try again later.
            raise SnsUnavailable(f"cannot fetch the SNS signing certificate: {exc}") from None
