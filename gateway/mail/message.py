"""Outgoing mail as data (:class:`Message`) and its MIME form, built with the standard
library's ``email`` package: ``multipart/alternative`` with the plain text first and
the HTML last (the part clients prefer), and inline images as ``multipart/related``
parts of the HTML, referenced as ``<img src="cid:...">``."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, getaddresses, make_msgid
from typing import cast

_CID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class InlineImage:
    """An image shown inside the HTML body: reference it as ``<img src="cid:{cid}">``.

    :param cid: letters, digits, ``.``, ``_``, ``-`` (e.g. ``"chart-calls"``).
    :param data: the image bytes.
    :param subtype: ``image/<subtype>``: ``png``, ``jpeg``, ``gif``, ...
    """

    cid: str
    data: bytes
    subtype: str = "png"
    filename: str | None = None


@dataclass(frozen=True)
class Message:
    """One mail. ``to`` are plain addresses (``a@example.com``) or ``Name <a@...>``;
    every recipient sees the others in ``To``, so send one message per person when
    that matters.

    :param text: the plain-text body (always sent: some clients show only it).
    :param html: optional HTML body.
    :param images: inline images for the HTML (ignored without ``html``).
    :param headers: extra headers (``Reply-To``, ``List-Unsubscribe``, ...).
    """

    to: Sequence[str]
    subject: str
    text: str
    html: str | None = None
    images: Sequence[InlineImage] = ()
    headers: Mapping[str, str] = field(default_factory=dict)

    def recipients(self) -> list[str]:
        """The bare addresses, for the SMTP envelope."""
        return [addr for _name, addr in getaddresses(list(self.to)) if addr]


def _domain(sender: str) -> str:
    addresses = getaddresses([sender])
    address = addresses[0][1] if addresses else ""
    return address.rpartition("@")[2] or "localhost"


def build(message: Message, sender: str, now: datetime) -> EmailMessage:
    """The MIME message for ``message`` from ``sender``, dated ``now``.

    :raises ValueError: no recipient, a header with a line break, a bad image cid.
    """
    if not message.recipients():
        raise ValueError("a message needs at least one recipient")
    mime = EmailMessage(policy=SMTP)
    # The policy refuses header values with CR/LF: no header injection from data.
    mime["From"] = sender
    mime["To"] = ", ".join(message.to)
    mime["Subject"] = message.subject
    mime["Date"] = format_datetime(now)
    mime["Message-ID"] = make_msgid(domain=_domain(sender))
    for name, value in message.headers.items():
        mime[name] = value
    mime.set_content(message.text)
    if message.html is None:
        return mime
    mime.add_alternative(message.html, subtype="html")
    html_part = cast(list[EmailMessage], mime.get_payload())[-1]
    for image in message.images:
        if not _CID.match(image.cid):
            raise ValueError(f"inline image cid {image.cid!r} is not allowed")
        html_part.add_related(
            image.data,
            maintype="image",
            subtype=image.subtype,
            cid=f"<{image.cid}>",
            disposition="inline",
            filename=image.filename,
        )
    return mime


def bare_address(sender: str) -> str:
    """The address of ``"Name <a@example.com>"``, for the envelope sender."""
    addresses = getaddresses([sender])
    return addresses[0][1] if addresses and addresses[0][1] else sender


__all__ = ["InlineImage", "Message", "bare_address", "build"]
