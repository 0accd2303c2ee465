"""Domain errors: specific classes with messages a person understands.

The web app maps them to HTTP responses in one handler (``web/errors.py``) and the CLI maps
them to exit codes in one place (``cli/__init__.py``); nothing else catches them broadly.
"""

from __future__ import annotations


class DigestError(Exception):
    """Base of every error digest reports to a person."""

    #: HTTP status the web app answers with.
    http_status: int = 400
    #: Exit code of the CLI.
    exit_code: int = 1


class SettingsError(DigestError):
    """A setting is missing or malformed; start-up stops."""

    exit_code = 78  # EX_CONFIG


class StoreUnavailable(DigestError):
    """The database cannot be reached or opened."""

    http_status = 503
    exit_code = 69  # EX_UNAVAILABLE


class InvalidEmail(DigestError):
    """An address that is not a valid email address."""

    http_status = 422
    exit_code = 65  # EX_DATAERR


class InvalidInput(DigestError):
    """A field with a value digest does not accept (cadence, timezone, hour, topics...)."""

    http_status = 422
    exit_code = 65


class ConfirmationRequired(DigestError):
    """Something that cannot be undone was asked for where nobody can be asked (no terminal)."""

    exit_code = 64  # EX_USAGE: run it again with --yes


class NotFound(DigestError):
    """Something asked for by name or id is not in the store."""

    http_status = 404
    exit_code = 66  # EX_NOINPUT


class SubscriberNotFound(NotFound):
    """No subscriber with that address."""


class NewsletterNotFound(NotFound):
    """No newsletter by that slug (or it is archived where only live ones count)."""


class NewsletterRequired(DigestError):
    """Several newsletters exist and the command did not say which (``--newsletter SLUG``)."""

    http_status = 422
    exit_code = 64  # EX_USAGE


class NewsletterBusy(DigestError):
    """The newsletter cannot be archived while an edition of it is being sent."""

    http_status = 409
    exit_code = 1


class PostNotFound(NotFound):
    """No post with that id, guid or link."""


class AlertRefused(DigestError):
    """A post cannot be sent as an alert: the newsletter is archived or offers no alerts, or
    nobody has opted in to its alerts."""

    http_status = 409
    exit_code = 1


class AlreadyAlerted(AlertRefused):
    """The post was sent as an alert in that newsletter before: an alert goes once."""


class FeedNotFound(NotFound):
    """No feed with that URL."""


class LinkNotFound(NotFound):
    """A tracked link (``/r/TOKEN``) that is not one of ours: tampered, cut short, made up, or
    leading to no web page. Answered with a page, never a redirect."""


class NothingToSend(DigestError):
    """A digest was asked for and no post is new for it (a test copy, for one)."""


class TestNotSent(DigestError):
    """A test copy was refused by the mail server, or the server could not be reached."""

    exit_code = 69  # EX_UNAVAILABLE


class Suppressed(DigestError):
    """The address is on the suppression list (erased, hard-bounced or complained)."""

    http_status = 409
    exit_code = 65


class InvalidToken(DigestError):
    """A link token that is forged, malformed, for another purpose, or expired."""

    http_status = 400
    exit_code = 65


class TokenExpired(InvalidToken):
    """A genuine token past its lifetime."""


class RateLimited(DigestError):
    """Too many requests; ``retry_after`` seconds until the next one is accepted."""

    http_status = 429
    exit_code = 75  # EX_TEMPFAIL

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ImportFileError(DigestError):
    """A file to import is missing, unreadable, empty or not in the expected shape."""

    exit_code = 66


class RowsRejected(DigestError):
    """An import went in, but some of its rows were rejected (each reported on its own)."""

    # Partial success, distinct from a file that could not be read at all (66).
    exit_code = 3


class FeedError(DigestError):
    """A feed could not be fetched or parsed; the message says why."""

    http_status = 502
    exit_code = 69


class UnsupportedMediaType(DigestError):
    """The request body is in a format this endpoint does not read."""

    http_status = 415


class TemplateProblem(DigestError):
    """A mail template is missing, does not compile, or fails to render."""

    http_status = 503
    exit_code = 78  # EX_CONFIG: the operator's templates are configuration


class NotAReport(DigestError):
    """The message is not a delivery status notification or a feedback report."""

    http_status = 422
    exit_code = 65


class WebhookRefused(DigestError):
    """A post to an email service's webhook without that service's credentials or signature."""

    http_status = 401
    exit_code = 65


class SignatureRefused(WebhookRefused):
    """A webhook post whose signature is missing, forged, stale or made with an untrusted key."""

    http_status = 403


class SnsUnavailable(DigestError):
    """SNS could not be reached to fetch its signing certificate or confirm a subscription."""

    http_status = 503
    exit_code = 69


class TryAgainLater(DigestError):
    """Bounce reports were read but could not be recorded now; the MTA should retry."""

    exit_code = 75  # EX_TEMPFAIL


class ReportsNotRecorded(DigestError):
    """Some messages failed in a way a retry would repeat; the others were recorded."""

    exit_code = 65  # EX_DATAERR


class ServiceStopped(DigestError):
    """A part of ``digest serve`` (the web server or the worker) stopped by itself, or the
    shutdown overran its time; the log says which."""


class BrokenInstall(DigestError):
    """A folder digest ships with its code is in neither place it can be."""

    http_status = 500
    exit_code = 70  # EX_SOFTWARE: reinstall, nothing the operator configured is wrong


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its class name when it has none: what a
    one-line answer to a person (a CLI error, a log field, a 503 body) shows of it."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class ConsentNotShown(DigestError):
    """An import holds rows that show no consent, and no status was named for them."""

    http_status = 422
    exit_code = 64  # EX_USAGE: run it again with --status


class AnnouncementNotFound(NotFound):
    """No announcement with that id."""


class NewsletterArchived(DigestError):
    """The newsletter is archived: nothing new goes out under its name."""

    http_status = 409
    exit_code = 65


class EmptyAudience(DigestError):
    """An announcement's audience matches no active reader: nothing would be sent."""

    http_status = 422
    exit_code = 65


class ScheduleInPast(DigestError):
    """A send time that has already passed (everywhere, for a local hour)."""

    http_status = 422
    exit_code = 65


class AnnouncementClosed(DigestError):
    """An announcement that was cancelled, or has all its mail out, cannot be changed so."""

    http_status = 409
    exit_code = 65


class Forbidden(DigestError):
    """A signed-in person asked for something their role does not allow, or a form came
    without its CSRF token."""

    http_status = 403
    exit_code = 77  # EX_NOPERM


class WeakPassword(DigestError):
    """A password too short, too common, or made of the account's own address."""

    http_status = 422
    exit_code = 65


class UserNotFound(NotFound):
    """No desk account with that address."""


class UserExists(DigestError):
    """A desk account with that address exists already."""

    http_status = 409
    exit_code = 65


class LastOwner(DigestError):
    """The change would leave the desk without an owner."""

    http_status = 409
    exit_code = 1


class SignInRequired(DigestError):
    """A desk page asked for without a live session: a browser is sent to the sign-in page
    and comes back to ``next_path`` afterwards; a program gets 401."""

    http_status = 401
    exit_code = 77

    def __init__(self, next_path: str) -> None:
        super().__init__("sign in to the desk first")
        self.next_path = next_path


class HygieneUnavailable(DigestError):
    """List hygiene was asked for where it cannot judge readers (tracking not per-reader)."""

    http_status = 409
    exit_code = 78  # EX_CONFIG: a setting has to change first


class WebhookNotFound(NotFound):
    """No webhook has this id (``digest webhooks``)."""
