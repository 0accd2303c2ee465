"""A stand-in for Amazon SNS in tests: a signing key, its certificate on a loopback HTTP server,
and posts signed the way SNS signs them, for ``SnsVerifier`` to check."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from digest.delivery.sns import SnsVerifier, string_to_sign
from tests.support.feed_server import FeedServer, Route
from tests.support.tls import certificate_builder

TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-bounces"
LOOPBACK = re.compile(r"127\.0\.0\.1")


def certificate(key: rsa.RSAPrivateKey, *, valid_from: datetime, valid_until: datetime) -> bytes:
    """A self-signed PEM certificate for ``key``, like SNS's own (issued to sns.amazonaws.com)."""
    builder = certificate_builder(key, "sns.amazonaws.com", (valid_from, valid_until))
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


class FakeSns:
    """Signs posts with its key; its certificate is served at ``cert_url``."""

    def __init__(self, server: FeedServer) -> None:
        self.server = server
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = datetime.now(UTC)
        self.serve("/cert.pem", self.key, now - timedelta(days=1), now + timedelta(days=30))
        self.cert_url = server.url("/cert.pem")
        server.routes["/confirm?Action=ConfirmSubscription&Token=t1"] = Route(b"<ok/>")
        self.subscribe_url = server.url("/confirm?Action=ConfirmSubscription&Token=t1")

    def serve(
        self, path: str, key: rsa.RSAPrivateKey, valid_from: datetime, valid_until: datetime
    ) -> str:
        """Serve a certificate for ``key`` at ``path``; its URL."""
        pem = certificate(key, valid_from=valid_from, valid_until=valid_until)
        self.server.routes[path] = Route(pem, content_type="application/x-pem-file")
        return self.server.url(path)

    def verifier(self) -> SnsVerifier:
        """A verifier that trusts this loopback server as it would trust sns.REGION hosts."""
        return SnsVerifier(hosts=LOOPBACK, scheme="http", timeout=5.0)

    def sign(
        self,
        post: dict[str, Any],
        *,
        version: str = "2",
        key: rsa.RSAPrivateKey | None = None,
        cert_url: str | None = None,
    ) -> dict[str, Any]:
        """``post`` with SignatureVersion, SigningCertURL and Signature added."""
        signed = {**post, "SignatureVersion": version, "SigningCertURL": cert_url or self.cert_url}
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = (key or self.key).sign(string_to_sign(signed), padding.PKCS1v15(), algorithm)
        signed["Signature"] = base64.b64encode(signature).decode()
        return signed

    def notification(self, message: str, **fields: Any) -> dict[str, Any]:
        """An unsigned SNS Notification post carrying ``message``."""
        return {
            "Type": "Notification",
            "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": TOPIC,
            "Message": message,
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            **fields,
        }

    def confirmation(self, **fields: Any) -> dict[str, Any]:
        """An unsigned SubscriptionConfirmation post."""
        return {
            "Type": "SubscriptionConfirmation",
            "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
            "Token": "t1",
            "TopicArn": TOPIC,
            "Message": f"You have chosen to subscribe to the topic {TOPIC}.\nTo confirm...",
            "SubscribeURL": self.subscribe_url,
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            **fields,
        }

    def confirmations_seen(self) -> int:
        """How many times the SubscribeURL was visited."""
        return sum(1 for seen in self.server.requests if seen.path.startswith("/confirm"))


@pytest.fixture
def fake_sns() -> Iterator[FakeSns]:
    """A FakeSns with its certificate server running."""
    server = FeedServer().start()
    try:
        yield FakeSns(server)
    finally:
        server.stop()
