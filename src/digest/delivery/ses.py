"""The Amazon SES transport: each message sent as raw MIME through the SES API v2.

``POST /v2/email/outbound-emails`` (SendEmail) with the JSON body
``{"Destination": {"ToAddresses": [rcpt]}, "Content": {"Raw": {"Data": BASE64}},
"FeedbackForwardingEmailAddress": envelope sender}``: SES sends the bytes digest built, so the
Message-ID, List-Unsubscribe and a DKIM signature survive, and forwards bounces and complaints
to the envelope sender (a VERP address included). It answers 200 ``{"MessageId": ...}``, or an
error whose type is in the ``x-amzn-ErrorType`` header (``TooManyRequestsException`` 429,
``MessageRejected``, ``SendingPausedException``...) and whose text is the body's ``message``.

Requests are signed with botocore's SigV4 signer, never by hand, with the credentials of the
standard variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``).
"""

from __future__ import annotations

import base64
import json

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, EnvProvider

from digest.delivery.esp_http import (
    Answer,
    ApiReply,
    ApiRequest,
    EspTransport,
    answer_for_status,
    json_field,
)
from digest.delivery.esp_targets import EspTarget
from digest.errors import SettingsError

PATH = "/v2/email/outbound-emails"
# Error types that say "fewer requests, please" (v2's name, and the older API's).
_THROTTLED = {"TooManyRequestsException", "Throttling", "ThrottlingException"}
# Refusals of digest's account or setup, not of this message: retried once the operator fixes
# them, and counted by the breaker.
_SETUP = {
    "AccountSuspendedException",
    "SendingPausedException",
    "MailFromDomainNotVerifiedException",
    "LimitExceededException",
    "NotFoundException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "AccessDeniedException",
    "ExpiredTokenException",
}


def environment_credentials() -> Credentials:
    """The AWS credentials of the standard environment variables; SettingsError when unset."""
    credentials = EnvProvider().load()
    if credentials is None:
        raise SettingsError(
            "DIGEST_SMTP_URL: ses:// needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY set"
        )
    return credentials


def judge(response: ApiReply) -> tuple[Answer, str]:
    """What an SES v2 reply means, by its error type and status."""
    if response.ok:
        return Answer.ACCEPTED, json_field(response, "MessageId")
    # "TooManyRequestsException:http://internal.amazon.com/..." in the header; some
    # gateways put "__type" in the body instead.
    kind = response.headers.get("x-amzn-errortype", "").partition(":")[0]
    kind = kind or json_field(response, "__type").rpartition("#")[2]
    detail = f"{kind} {json_field(response, 'message', 'Message')}".strip()
    if kind in _THROTTLED:
        return Answer.THROTTLED, detail
    if kind in _SETUP:
        return Answer.SETUP, detail
    return answer_for_status(response.status), detail


class SesRequests:
    """Builds the signed SendEmail request of each message."""

    def __init__(self, target: EspTarget, credentials: Credentials) -> None:
        self.url = target.endpoint + PATH
        self.signer = SigV4Auth(credentials, "ses", target.region)

    def build(self, envelope_from: str, rcpt: str, data: bytes) -> ApiRequest:
        """The signed request that sends ``data`` to ``rcpt``."""
        # Joined around the base64 text, which JSON needs no escape for: encoding a 40 KB
        # string through json.dumps scanned it for nothing and was a fifth of the build.
        head = json.dumps(
            {
                "Destination": {"ToAddresses": [rcpt]},
                "FeedbackForwardingEmailAddress": envelope_from,
            }
        ).encode()
        body = head[:-1] + b', "Content": {"Raw": {"Data": "' + base64.b64encode(data) + b'"}}}'
        signed = AWSRequest(
            method="POST", url=self.url, data=body, headers={"Content-Type": "application/json"}
        )
        self.signer.add_auth(signed)
        return ApiRequest(self.url, dict(signed.headers.items()), body)


def ses_transport(
    target: EspTarget,
    *,
    connections: int,
    timeout: float,
    credentials: Credentials | None = None,
) -> EspTransport:
    """The SES transport for ``target`` (credentials from the environment unless given)."""
    requests = SesRequests(target, credentials or environment_credentials())
    return EspTransport("SES", requests.build, judge, connections=connections, timeout=timeout)
