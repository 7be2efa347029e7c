"""E-mail notifications: SES on AWS, `.eml` files in `LAKEHOUSE_HOME/outbox` locally.

Every notification carries an event id (the run, check or file it is about). An e-mail is sent at
most once per event id, so a retried sensor tick or run does not send it twice: locally the `.eml`
file is the record; on AWS a marker object is claimed with a conditional PUT (If-None-Match: *)
before SES is called. Sending is best effort: a failure is logged and never fails a data write.
"""

import hashlib
import logging
import os
import unicodedata
from collections.abc import Sequence
from email import policy
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path

import dagster as dg
from pydantic import Field

from resources.aws import client
from resources.landing.s3 import split_s3_uri
from resources.notifications.email_templates import render

logger = logging.getLogger(__name__)


# a subject longer than this is cut: it would only be folded over many lines
MAX_HEADER_CHARS = 200


def header_text(value: str) -> str:
    """A header value from untrusted names (file names, object keys): control characters, CR and
    LF among them, become U+FFFD, so no name can end a header and start another (`Bcc:`)."""
    text = "".join("\ufffd" if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in value)
    return text if len(text) <= MAX_HEADER_CHARS else text[: MAX_HEADER_CHARS - 1] + "\u2026"


def event_digest(event_id: str) -> str:
    return hashlib.sha256(event_id.encode()).hexdigest()[:32]


class Notifier(dg.ConfigurableResource):
    """Renders a template and sends it once per event id; returns True when an e-mail went out now."""

    environment: str = "local"
    sender: str = "lakehouse@localhost"
    recipients: list[str] = Field(default_factory=lambda: ["data-team@localhost"])

    def notify(self, kind: str, event_id: str, *, to: Sequence[str] = (), **fields: object) -> bool:
        """`to`: the recipients of this e-mail (an extract's consumers); the notifier's when empty."""
        subject, body = render(kind, self.environment, fields)
        # the default policy refuses a header value with a line break: a name that slipped past
        # `header_text` fails the e-mail (logged) rather than adding a header
        message = EmailMessage(policy=policy.default)
        message["From"] = self.sender
        message["To"] = ", ".join(header_text(address) for address in to or self.recipients)
        message["Subject"] = header_text(subject)
        message["Date"] = formatdate(usegmt=True)
        # the same event always gets the same Message-ID: mail clients collapse accidental repeats
        message["Message-ID"] = f"<{event_digest(event_id)}@lakehouse.{self.environment}>"
        message["X-Lakehouse-Event"] = header_text(event_id)
        message["X-Lakehouse-Kind"] = kind
        message.set_content(body)
        try:
            return self._send_once(event_id, message)
        except Exception:  # noqa: BLE001 - a notification must never fail the caller
            logger.exception("could not send the %s notification for %s", kind, event_id)
            return False

    def _send_once(self, event_id: str, message: EmailMessage) -> bool:
        raise NotImplementedError


class OutboxNotifier(Notifier):
    """Writes each e-mail as `<event digest>.eml`; an existing file means it was already sent."""

    directory: str

    def _send_once(self, event_id: str, message: EmailMessage) -> bool:
        outbox = Path(self.directory)
        outbox.mkdir(parents=True, exist_ok=True)
        path = outbox / f"{event_digest(event_id)}.eml"
        try:
            # exclusive creation is the "claim": two concurrent senders cannot both write it
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(message.as_bytes())
        return True


class SesNotifier(Notifier):
    """SES SendRawEmail; the ledger prefix on S3 holds one marker object per event sent."""

    ledger_uri: str = Field(description="s3://bucket/prefix for the sent-event markers")
    max_attempts: int = 5

    def _send_once(self, event_id: str, message: EmailMessage) -> bool:
        # botocore, like boto3 in `resources.aws`, is imported when an e-mail is sent, not on load
        from botocore.exceptions import ClientError

        bucket, prefix = split_s3_uri(self.ledger_uri)
        marker = f"{prefix}{event_digest(event_id)}"
        s3 = client("s3")
        try:
            s3.put_object(Bucket=bucket, Key=marker, Body=event_id.encode(), IfNoneMatch="*")
        except ClientError as error:
            if error.response["Error"]["Code"] in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                return False
            raise
        try:
            # botocore's standard retry mode backs off on SES "Throttling" (maximum sending rate)
            # no Destinations: SES takes the recipients from the To header, the one place they are named
            client("ses", self.max_attempts).send_raw_email(
                Source=self.sender, RawMessage={"Data": message.as_bytes()}
            )
        except Exception:
            # not sent: release the claim so that a later retry of the same event can send it
            s3.delete_object(Bucket=bucket, Key=marker)
            raise
        return True
