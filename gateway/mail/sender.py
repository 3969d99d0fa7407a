"""Sending mail through the configured SMTP server (``[gateway.mail]``) with aiosmtplib.

Outcomes a caller can act on:

- :class:`MailNotConfigured`: no ``host``; logged once per app. It is a
  :class:`~gateway.scheduling.TaskSkipped`, so a scheduled task that lets it propagate
  is recorded as "skipped: mail not configured".
- :class:`MailUnavailable`: the server could not be reached or answered "try later"
  (connection refused, timeout, 4xx): retry later (a job's retry does).
- :class:`MailRejected`: the server refused the sender, the login or the content (5xx):
  retrying the same mail will not help.
- Otherwise a :class:`SendReport` per message: recipients accepted and refused (with
  the server's code), so one bad address does not stop the others.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiosmtplib
from quart import Quart

from gateway.config import MailSettings
from gateway.mail.message import Message, bare_address, build
from gateway.scheduling.task import TaskSkipped

log = logging.getLogger("gateway.mail")

_WARNED_KEY = "gateway_mail_not_configured_logged"
NOT_CONFIGURED = "mail not configured"


class MailError(Exception):
    """Base of the mail errors. ``retryable`` says whether trying later may help."""

    retryable = False


class MailUnavailable(MailError):
    """The server is down, slow, or said "try again later"."""

    retryable = True

    def __init__(self, message: str, reports: Sequence[SendReport] = ()) -> None:
        super().__init__(message)
        self.reports = list(reports)  # messages already sent before the failure


class MailRejected(MailError):
    """The server refused the login, the sender or the content."""


class MailNotConfigured(TaskSkipped):
    """``[gateway.mail] host`` is not set. ``figures``: what the task did anyway, kept
    on its run when it lets this propagate."""

    def __init__(
        self, figures: Mapping[str, int | float | str | bool | None] | None = None
    ) -> None:
        super().__init__(NOT_CONFIGURED, figures)


@dataclass(frozen=True)
class Refusal:
    code: int
    message: str

    @property
    def temporary(self) -> bool:
        """4xx: the server may accept this recipient later."""
        return 400 <= self.code < 500


@dataclass
class SendReport:
    """What happened to one message: the Message-ID it was sent with, recipients the
    server accepted, and those it refused."""

    message_id: str
    accepted: list[str] = field(default_factory=list)
    refused: dict[str, Refusal] = field(default_factory=dict)

    @property
    def delivered_to_all(self) -> bool:
        return not self.refused


def settings_of(app: Quart) -> MailSettings:
    return app.extensions["gateway"].config.gateway.mail


def mail_configured(app: Quart) -> bool:
    """Whether mail can be sent at all (check before fanning out work that mails)."""
    return settings_of(app).configured


def not_configured(app: Quart, figures: Mapping[str, Any] | None = None) -> MailNotConfigured:
    """The "mail not configured" error to raise, logged once per app: a task that finds
    mail unconfigured before fanning out work raises it (with its figures), and its run
    is recorded as skipped for mail."""
    if not app.extensions.get(_WARNED_KEY):
        app.extensions[_WARNED_KEY] = True
        log.warning("mail not configured ([gateway.mail] host is not set): not sending")
    return MailNotConfigured(figures)


def _tls_context(settings: MailSettings) -> ssl.SSLContext:
    # Certificates are always verified; a private CA is trusted through ca_file.
    cafile = str(settings.ca_file) if settings.ca_file else None
    return ssl.create_default_context(cafile=cafile)


def _client(settings: MailSettings) -> aiosmtplib.SMTP:
    secure = settings.security != "none"
    return aiosmtplib.SMTP(
        hostname=settings.host,
        port=settings.resolved_port,
        username=settings.username,
        password=settings.password.get_secret_value() if settings.password else None,
        timeout=settings.timeout_seconds,
        use_tls=settings.security == "tls",
        # "starttls": required (an offer missing means no mail, never plain text);
        # "none": never upgraded, for a relay on localhost.
        start_tls=settings.security == "starttls",
        tls_context=_tls_context(settings) if secure else None,
    )


def _failure(settings: MailSettings, exc: BaseException) -> MailError:
    where = f"{settings.host}:{settings.resolved_port}"
    code = getattr(exc, "code", None)
    text = f"SMTP server {where}: {type(exc).__name__}" + (f" {code}" if code else "")
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError | aiosmtplib.SMTPNotSupported):
        return MailRejected(text)
    if isinstance(exc, ssl.SSLError) or isinstance(exc.__cause__, ssl.SSLError):
        # A certificate that does not verify stays so: a configuration problem.
        return MailRejected(f"{text} (TLS: check security, port and ca_file)")
    if isinstance(exc, aiosmtplib.SMTPResponseException) and isinstance(code, int):
        return MailUnavailable(text) if code < 500 else MailRejected(text)
    # Connection refused or reset, timeouts, the server hanging up: try later.
    return MailUnavailable(text)


async def _send_one(
    smtp: aiosmtplib.SMTP, settings: MailSettings, message: Message, app: Quart
) -> SendReport:
    sender = settings.from_address or ""
    mime = build(message, sender, app.extensions["gateway"].clock.now())
    report = SendReport(message_id=str(mime["Message-ID"]))
    recipients = message.recipients()
    errors: Mapping[str, Any]  # refused address -> an answer with .code and .message
    try:
        errors, _reply = await smtp.send_message(
            mime, sender=bare_address(sender), recipients=recipients
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:  # every recipient refused
        errors = {r.recipient: r for r in exc.recipients}
    for address in recipients:
        refused = errors.get(address)
        if refused is None:
            report.accepted.append(address)
        else:
            report.refused[address] = Refusal(int(refused.code), str(refused.message))
    if report.refused:
        log.warning(
            "mail %s: %d recipient(s) refused (codes %s)",
            report.message_id,
            len(report.refused),
            sorted({r.code for r in report.refused.values()}),
        )
    return report


async def send_mails(app: Quart, messages: Sequence[Message]) -> list[SendReport]:
    """Send ``messages`` over one SMTP connection; one report per message, in order.

    :raises MailNotConfigured: no SMTP host is configured (logged once per app).
    :raises MailUnavailable: retry later; ``.reports`` holds the messages already sent.
    :raises MailRejected: the server refused the login, the sender or the content.
    :raises ValueError: a message without recipients or with a line break in a header.
    """
    settings = settings_of(app)
    if not settings.configured:
        raise not_configured(app)
    reports: list[SendReport] = []
    smtp = _client(settings)
    try:
        await smtp.connect()
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise _failure(settings, exc) from None
    try:
        for message in messages:
            try:
                reports.append(await _send_one(smtp, settings, message, app))
            except (aiosmtplib.SMTPException, OSError) as exc:
                error = _failure(settings, exc)
                if isinstance(error, MailUnavailable):
                    error.reports = reports
                raise error from None
    finally:
        try:
            await smtp.quit()
        except (aiosmtplib.SMTPException, OSError):
            smtp.close()  # already broken: just drop the connection
    return reports


async def send_mail(app: Quart, message: Message) -> SendReport:
    """Send one message (see :func:`send_mails` for the outcomes)."""
    return (await send_mails(app, [message]))[0]
