"""Outgoing mail against a real SMTP server on loopback (aiosmtpd): MIME structure with
inline images, per-recipient refusals, login, STARTTLS and implicit TLS with a private
CA, "not configured", and a server that is down or silent."""

from __future__ import annotations

import logging
import socket

import pytest

from gateway.mail import (
    InlineImage,
    MailNotConfigured,
    MailRejected,
    MailUnavailable,
    Message,
    mail_configured,
    send_mail,
    send_mails,
)
from gateway.scheduling import TaskSkipped
from tests.support.smtp_server import SmtpServer, free_port, self_signed

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
FROM = "Renchi Reports <reports@renchi.test>"


def mail_settings(port: int, **extra):
    return {"host": "127.0.0.1", "port": port, "security": "none", "from_address": FROM, **extra}


async def test_html_and_text_with_an_inline_image_reach_every_recipient(make_app, clock):
    with SmtpServer() as server:
        app = await make_app(mail=mail_settings(server.port))
        report = await send_mail(
            app,
            Message(
                to=["Ann <ann@example.com>", "bob@example.com"],
                subject="Daily summary: 12 calls",
                text="12 calls today.",
                html='<p>12 calls today.</p><img src="cid:chart">',
                images=[InlineImage("chart", PNG, "png", "chart.png")],
                headers={"Reply-To": "support@renchi.test"},
            ),
        )
    assert report.accepted == ["ann@example.com", "bob@example.com"] and report.delivered_to_all
    assert server.sink.envelopes == [
        ("reports@renchi.test", ["ann@example.com", "bob@example.com"])
    ]
    mail = server.sink.mails[0]
    assert mail["From"] == FROM and mail["Subject"] == "Daily summary: 12 calls"
    assert mail["To"] == "Ann <ann@example.com>, bob@example.com"
    assert mail["Reply-To"] == "support@renchi.test"
    assert mail["Message-ID"] == report.message_id and report.message_id.endswith("@renchi.test>")
    assert mail["Date"] == "Thu, 01 Jan 2026 12:00:00 +0000"  # the gateway clock
    assert mail.get_content_type() == "multipart/alternative"
    plain, related = mail.get_payload()
    assert plain.get_content_type() == "text/plain"
    assert plain.get_content().strip() == "12 calls today."
    assert related.get_content_type() == "multipart/related"
    html, image = related.get_payload()
    assert html.get_content_type() == "text/html" and 'src="cid:chart"' in html.get_content()
    assert image.get_content_type() == "image/png" and image["Content-ID"] == "<chart>"
    assert image.get_content() == PNG and image.get_content_disposition() == "inline"
    assert mail.get_body(("html",)) is html and mail.get_body(("plain",)) is plain


async def test_text_only_message_is_a_single_part(make_app):
    with SmtpServer() as server:
        app = await make_app(mail=mail_settings(server.port))
        await send_mail(app, Message(to=["a@example.com"], subject="s", text="only text"))
    mail = server.sink.mails[0]
    assert mail.get_content_type() == "text/plain" and mail.get_content().strip() == "only text"


async def test_a_refused_recipient_does_not_stop_the_others(make_app):
    with SmtpServer() as server:
        server.sink.refuse["gone@example.com"] = "550 5.1.1 No such user"
        server.sink.refuse["full@example.com"] = "452 4.2.2 Mailbox full"
        app = await make_app(mail=mail_settings(server.port))
        report = await send_mail(
            app,
            Message(
                to=["gone@example.com", "ok@example.com", "full@example.com"],
                subject="s",
                text="t",
            ),
        )
        assert report.accepted == ["ok@example.com"]
        assert {a: (r.code, r.temporary) for a, r in report.refused.items()} == {
            "gone@example.com": (550, False),
            "full@example.com": (452, True),
        }
        assert server.sink.envelopes == [("reports@renchi.test", ["ok@example.com"])]
        # Every recipient refused: a report, not an exception.
        only_bad = Message(to=["gone@example.com"], subject="s", text="t")
        report = await send_mail(app, only_bad)
        assert report.accepted == [] and list(report.refused) == ["gone@example.com"]


async def test_several_messages_over_one_connection(make_app):
    with SmtpServer() as server:
        app = await make_app(mail=mail_settings(server.port))
        messages = [Message(to=[f"u{i}@example.com"], subject=f"n{i}", text="t") for i in range(3)]
        reports = await send_mails(app, messages)
    assert [r.accepted for r in reports] == [
        ["u0@example.com"],
        ["u1@example.com"],
        ["u2@example.com"],
    ]
    assert [m["Subject"] for m in server.sink.mails] == ["n0", "n1", "n2"]


# aiosmtpd only counts STARTTLS as TLS, and warns about AUTH on the implicit-TLS port.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_login_over_tls_with_a_private_ca(make_app, tmp_path, monkeypatch, security):
    cert = self_signed(tmp_path)
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cret-smtp-password")
    with SmtpServer(
        tls=security, cert=cert, credentials=("gateway", "s3cret-smtp-password")
    ) as srv:
        settings = mail_settings(
            srv.port,
            security=security,
            username="gateway",
            password={"env": "TEST_SMTP_PASSWORD"},
            ca_file=str(cert[0]),
        )
        app = await make_app(mail=settings)
        report = await send_mail(app, Message(to=["a@example.com"], subject="s", text="t"))
        assert report.accepted == ["a@example.com"] and len(srv.sink.mails) == 1
        # The certificate is checked: without the private CA the handshake fails.
        strict = await make_app(mail={**settings, "ca_file": None})
        with pytest.raises(MailRejected) as err:
            await send_mail(strict, Message(to=["a@example.com"], subject="s", text="t"))
        assert not err.value.retryable
        wrong = await make_app(mail={**settings, "password": "wrong-password"})
        with pytest.raises(MailRejected):
            await send_mail(wrong, Message(to=["a@example.com"], subject="s", text="t"))
    assert len(srv.sink.mails) == 1


async def test_not_configured_is_a_clear_skip_logged_once(make_app, caplog):
    app = await make_app()
    assert not mail_configured(app)
    caplog.set_level(logging.WARNING, "gateway.mail")
    for _ in range(2):
        with pytest.raises(MailNotConfigured) as err:
            await send_mail(app, Message(to=["a@example.com"], subject="s", text="t"))
        assert isinstance(err.value, TaskSkipped) and err.value.reason == "mail not configured"
    assert len([r for r in caplog.records if r.name == "gateway.mail"]) == 1


async def test_a_server_that_is_down_or_silent_is_a_retryable_error(make_app):
    app = await make_app(mail=mail_settings(free_port()))  # nothing listens there
    with pytest.raises(MailUnavailable) as err:
        await send_mail(app, Message(to=["a@example.com"], subject="s", text="t"))
    assert err.value.retryable and "127.0.0.1" in str(err.value)

    silent = socket.socket()  # accepts connections, never greets
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    try:
        port = silent.getsockname()[1]
        app = await make_app(mail=mail_settings(port, timeout_seconds=0.2))
        with pytest.raises(MailUnavailable):
            await send_mail(app, Message(to=["a@example.com"], subject="s", text="t"))
    finally:
        silent.close()


async def test_a_header_with_a_line_break_is_refused_before_sending(make_app):
    with SmtpServer() as server:
        app = await make_app(mail=mail_settings(server.port))
        bad = Message(to=["a@example.com"], subject="hi\r\nBcc: victim@example.com", text="t")
        with pytest.raises(ValueError):
            await send_mail(app, bad)
        with pytest.raises(ValueError):
            await send_mail(app, Message(to=[], subject="s", text="t"))
    assert server.sink.mails == []


@pytest.mark.parametrize(
    ("mail", "message"),
    [
        ({"host": "smtp.example.com"}, "from_address is required when host is set"),
        (
            {"host": "h", "from_address": "a@b.c", "username": "u"},
            "username and password go together",
        ),
        ({"host": "h", "from_address": "a@b.c", "security": "ssl"}, "mail.security"),
    ],
)
def test_bad_mail_settings_stop_startup_with_one_line(tmp_path, mail, message):
    from gateway.config import load_config
    from gateway.errors import StartupError

    with pytest.raises(StartupError) as err:
        load_config(data={"gateway": {"data_dir": str(tmp_path), "mail": mail}}, environ={})
    assert message in str(err.value) and str(err.value).startswith("gateway: key 'mail")


def test_the_password_never_shows_in_the_config_view(tmp_path, monkeypatch):
    from gateway.config import load_config

    monkeypatch.setenv("SMTP_PW", "hunter2-smtp-password")
    mail = {"host": "h", "from_address": "a@b.c", "username": "u", "password": {"env": "SMTP_PW"}}
    config = load_config(data={"gateway": {"data_dir": str(tmp_path), "mail": mail}}, environ={})
    assert config.gateway.mail.password.get_secret_value() == "hunter2-smtp-password"
    assert "hunter2" not in str(config.redacted())


class MailingTask:
    """A scheduled task that mails, as the report tasks will."""

    from gateway import hookimpl

    @hookimpl
    def register_scheduled_tasks(self, config):
        from gateway.scheduling import ScheduledTask

        async def report(ctx):
            msg = Message(to=["team@example.com"], subject=ctx.window_key, text="report")
            sent = await send_mail(ctx.app, msg)
            return {"sent": len(sent.accepted)}

        return [ScheduledTask("mail-report", "0 18 * * *", report)]


async def test_a_task_that_mails_is_skipped_when_mail_is_not_configured(make_app):
    from tests.support.cron_plugin import SECRET, bearer

    async def ping(query="", **gateway):
        app = await make_app(
            plugins={"mailer": {}},
            extra_plugins=[("mailer", MailingTask())],
            cron_secret=SECRET,
            **gateway,
        )
        resp = await app.test_client().get("/api/cron/mail-report" + query, headers=bearer())
        return await resp.get_json()

    body = await ping()
    assert (body["status"], body["detail"]) == ("skipped", "mail not configured")
    with SmtpServer() as server:  # skipped windows are not retried: force this one
        body = await ping("?force=true", mail=mail_settings(server.port))
    assert body["status"] == "succeeded" and body["figures"] == {"sent": 1}
    assert server.sink.mails[0]["Subject"] == "mail-report@2025-12-31T18:00:00+00:00"
