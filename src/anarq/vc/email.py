"""Email out of the node, for the verified-email credential: one message with a one-use
link, through the operator's relay (`ANARQ_SMTP_URL`). Nothing else leaves by email."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from anarq.kernel.errors import AnarqError

TIMEOUT_SECONDS = 20


class MailRelayMissing(AnarqError):
    code = "vc.no_mail_relay"
    status = 503
    title = "This node sends no email"


class MailRelayFailed(AnarqError):
    code = "vc.mail_relay_failed"
    status = 502
    title = "The mail relay refused the message"


def send(relay_url: str, sender: str, to: str, subject: str, body: str) -> None:
    """Hand one plain-text message to the relay; `MailRelayFailed` if it will not take it."""
    if not relay_url:
        raise MailRelayMissing("the operator has set no mail relay (ANARQ_SMTP_URL)")
    parts = urlsplit(relay_url)
    scheme = parts.scheme.lower()
    if scheme not in ("smtp", "smtp+starttls", "smtps") or not parts.hostname:
        raise MailRelayMissing(f"ANARQ_SMTP_URL has an unknown scheme {scheme!r}")
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    port = parts.port or {"smtp": 25, "smtp+starttls": 587, "smtps": 465}[scheme]
    try:
        if scheme == "smtps":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                parts.hostname, port, timeout=TIMEOUT_SECONDS, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(parts.hostname, port, timeout=TIMEOUT_SECONDS)
        with client:
            if scheme == "smtp+starttls":
                client.starttls(context=ssl.create_default_context())
            if parts.username:
                client.login(unquote(parts.username), unquote(parts.password or ""))
            client.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        # The reason, never the relay's credentials.
        raise MailRelayFailed(f"{type(exc).__name__}: {str(exc)[:200]}") from None
