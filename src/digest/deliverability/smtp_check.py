"""The SMTP half of ``digest check``: the relay answers, offers STARTTLS, takes AUTH when
credentials are configured and accepts the envelope sender (MAIL FROM, then RSET: nothing is
sent)."""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit

import aiosmtplib

from digest.config import Settings
from digest.deliverability import report as r
from digest.deliverability.report import Finding
from digest.delivery.smtp import SmtpTarget
from digest.errors import first_line
from digest.mail.verp import verp_address

_REACH = "check DIGEST_SMTP_URL's host and port, and that this machine may connect there"
# A delivery id for a VERP address of typical length; no delivery is named by it in a check.
_SAMPLE_DELIVERY = 36**6
_BROKEN = (aiosmtplib.SMTPException, OSError, TimeoutError)


async def smtp_findings(
    settings: Settings, *, tls_context: ssl.SSLContext | None = None
) -> list[Finding]:
    """Talk to the relay as the worker would, without sending; one skip for a file: outbox or
    a mail service's API."""
    folder = settings.file_outbox
    if folder is not None:
        return [r.skip("SMTP", f"not checked: mail is written to {folder} (a file: outbox)")]
    scheme = urlsplit(settings.smtp_url).scheme
    if scheme not in ("smtp", "smtps"):
        return [r.skip("SMTP", f"not checked: mail goes through the {scheme}: API, not SMTP")]
    target = SmtpTarget.from_url(settings.smtp_url)
    where = f"{target.host}:{target.port}"
    client = aiosmtplib.SMTP(
        hostname=target.host,
        port=target.port,
        use_tls=target.implicit_tls,
        start_tls=False,  # upgraded below, where a refusal becomes its own finding
        timeout=settings.smtp_timeout,
        tls_context=tls_context,
    )
    try:
        greeting = await client.connect()
    except _BROKEN as exc:
        return [r.fail("SMTP relay", f"{where} cannot be reached: {_describe(exc)}", _REACH)]
    findings: list[Finding] = []
    try:
        await client.ehlo()
        findings.append(r.ok("SMTP relay", f"{where} answers: {_reply(greeting)}"))
        findings.append(await _tls(client, target, where, tls_context))
        if not client.is_connected:
            return findings  # the TLS handshake failed: nothing more to ask
        if target.username:
            findings.append(await _auth(client, target))
        findings.append(await _sender(client, envelope_sender(settings)))
    except _BROKEN as exc:
        findings.append(
            r.fail("SMTP relay", f"{where} broke off the dialogue: {_describe(exc)}", _REACH)
        )
    finally:
        if client.is_connected:
            try:
                await client.quit()
            except _BROKEN:
                client.close()
    return findings


def envelope_sender(settings: Settings) -> str:
    """The MAIL FROM to try: with VERP, one shaped as a message's own (``LOCAL+TOKEN@DOMAIN``),
    since a relay may refuse the plus form of an address it accepts."""
    if settings.verp and settings.secret_key:
        return verp_address(settings.envelope_from, _SAMPLE_DELIVERY, settings.secret)
    return settings.envelope_from


async def _tls(
    client: aiosmtplib.SMTP, target: SmtpTarget, where: str, context: ssl.SSLContext | None
) -> Finding:
    if target.implicit_tls:
        return r.ok("STARTTLS", "implicit TLS (smtps://), the certificate verifies")
    if not client.supports_extension("starttls"):
        return r.fail(
            "STARTTLS",
            f"{where} does not offer STARTTLS: mail and password would cross the network in clear",
            "turn STARTTLS on at the relay, or use smtps:// where it offers implicit TLS",
        )
    try:
        await client.starttls(tls_context=context)
    except (aiosmtplib.SMTPException, ssl.SSLError, OSError) as exc:
        client.close()
        return r.fail(
            "STARTTLS",
            f"{where} offers STARTTLS but the TLS handshake failed: {_describe(exc)}",
            f"give the relay a certificate that verifies for {target.host}",
        )
    await client.ehlo()  # RFC 3207: what the server offers may change once encrypted
    return r.ok("STARTTLS", "offered, and the certificate verifies")


async def _auth(client: aiosmtplib.SMTP, target: SmtpTarget) -> Finding:
    if not client.supports_extension("auth"):
        return r.fail(
            "SMTP AUTH",
            "DIGEST_SMTP_URL carries a user, but the relay offers no AUTH",
            "remove user:password from DIGEST_SMTP_URL, or enable AUTH at the relay",
        )
    try:
        await client.login(target.username or "", target.password or "")
    except aiosmtplib.SMTPResponseException as exc:
        return r.fail(
            "SMTP AUTH",
            f"the relay refused the login of {target.username}: {exc.code} {_line(exc.message)}",
            "correct the user and password in DIGEST_SMTP_URL (percent-encode @ and :)",
        )
    except aiosmtplib.SMTPException as exc:
        return r.fail(
            "SMTP AUTH",
            f"no login for {target.username}: {_describe(exc)}",
            "correct the user and password in DIGEST_SMTP_URL (percent-encode @ and :)",
        )
    return r.ok("SMTP AUTH", f"logged in as {target.username}")


async def _sender(client: aiosmtplib.SMTP, envelope_from: str) -> Finding:
    options = ["SMTPUTF8"] if not envelope_from.isascii() else []
    try:
        reply = await client.mail(envelope_from, options=options)
    except aiosmtplib.SMTPResponseException as exc:
        return r.fail(
            "envelope sender",
            f"MAIL FROM:<{envelope_from}> refused: {exc.code} {_line(exc.message)}",
            "let the relay accept this sender, or set DIGEST_RETURN_PATH to one it accepts",
        )
    await client.rset()  # nothing is sent
    return r.ok("envelope sender", f"MAIL FROM:<{envelope_from}> accepted: {_reply(reply)}")


def _line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:200]


def _reply(reply: aiosmtplib.SMTPResponse) -> str:
    return f"{reply.code} {_line(reply.message)}"


def _describe(exc: BaseException) -> str:
    return first_line(exc)[:200]
