"""The job that mails one team's report (one ``cron.report.mail`` event per team and
window, see :mod:`plugins.cron.reports`).

- The recipients are read when the job runs: the team's active owners and admins, in
  one message (they all see each other, as team admins already do in the console).
- A server that is down or says "try later" fails the job: the queue retries it with
  backoff, and only this team's mail is sent again.
- A recipient the server refuses does not stop the others; it is logged (by count and
  code, never by address). When every recipient is deferred (4xx, e.g. greylisting),
  nobody got the mail: the job is retried like a server that is down.
- A server that refuses the login, the sender or the content dead-letters the job: a
  retry would not help until the configuration is fixed (then ``gateway jobs retry``).
- Mail no longer configured: nothing is sent, once logged.
"""

from __future__ import annotations

import logging
from email.utils import formataddr

from gateway.auth import ADMIN_ROLES
from gateway.events import JobContext, PermanentFailure
from gateway.identity import Membership
from gateway.mail import MailNotConfigured, MailRejected, MailUnavailable, Message, send_mail
from plugins.cron import render
from plugins.cron.settings import CronSettings

log = logging.getLogger("plugins.cron")


async def recipients(team_id: int) -> list[str]:
    rows = (
        await Membership.filter(team_id=team_id, role__in=ADMIN_ROLES, user__is_active=True)
        .order_by("user__email")
        .values_list("user__name", "user__email")
    )
    return [formataddr((name, address)) if name else address for name, address in rows]


class MailReport:
    def __init__(self, settings: CronSettings) -> None:
        self.settings = settings

    async def __call__(self, ctx: JobContext) -> None:
        payload = ctx.event.payload
        team_id = int(payload["team_id"])
        to = await recipients(team_id)
        if not to:
            log.info(
                "cron: team %s has no owner or admin to mail its %s report",
                team_id,
                payload.get("kind"),
            )
            return
        kind = payload.get("kind")
        if kind == "weekly":
            mail = render.weekly(payload, self.settings.top_outcomes)
        else:
            mail = render.daily(payload, self.settings.top_outcomes)
        message = Message(
            to=to,
            subject=mail.subject,
            text=mail.text,
            html=mail.html,
            headers={"Auto-Submitted": "auto-generated", "X-Renchi-Report": str(kind)},
        )
        try:
            report = await send_mail(ctx.app, message)
        except MailNotConfigured:
            return  # logged once by gateway.mail
        except MailRejected as exc:
            raise PermanentFailure(str(exc)) from None
        # MailUnavailable propagates: the job is retried later, for this team only.
        if not report.accepted and any(r.code < 500 for r in report.refused.values()):
            # Nobody got it and the server said "later" (greylisting): a retry sends it
            # to no one twice.
            codes = sorted({r.code for r in report.refused.values()})
            raise MailUnavailable(f"{kind} report of team {team_id}: recipients deferred {codes}")
        if report.refused:
            log.warning(
                "cron: %s report of team %s: %d of %d recipient(s) refused",
                kind,
                team_id,
                len(report.refused),
                len(to),
            )
