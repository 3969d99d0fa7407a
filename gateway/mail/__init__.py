"""Outgoing mail: ``await send_mail(app, Message(...))`` through the SMTP server of
``[gateway.mail]`` (see docs/configuration.md and docs/scheduling.md)."""

from __future__ import annotations

from gateway.mail.message import InlineImage, Message, build
from gateway.mail.sender import (
    NOT_CONFIGURED,
    MailError,
    MailNotConfigured,
    MailRejected,
    MailUnavailable,
    Refusal,
    SendReport,
    mail_configured,
    not_configured,
    send_mail,
    send_mails,
)

__all__ = [
    "NOT_CONFIGURED",
    "InlineImage",
    "MailError",
    "MailNotConfigured",
    "MailRejected",
    "MailUnavailable",
    "Message",
    "Refusal",
    "SendReport",
    "build",
    "mail_configured",
    "not_configured",
    "send_mail",
    "send_mails",
]
