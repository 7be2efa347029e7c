"""File names and object keys in e-mail headers and metric dimensions: no injected header, no
dimension CloudWatch would refuse."""

import json
from email import policy
from email.parser import BytesParser

from resources.metrics import MAX_DIMENSION_CHARS, JsonLinesMetrics, Metric, dimension_value
from resources.notifications.notifier import OutboxNotifier

EVIL = "evil\r\nBcc: attacker@example.com.csv"


def test_a_key_with_a_line_break_adds_no_header_to_the_outbox_email(tmp_path):
    notifier = OutboxNotifier(directory=str(tmp_path), recipients=["data-team@localhost"])
    sent = notifier.notify(
        "output_generated", f"output/{EVIL}", asset=EVIL, partition=EVIL, run_id="r1", metadata=EVIL
    )
    assert sent is True
    (eml,) = tmp_path.glob("*.eml")
    message = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
    assert sorted(message.keys()) == sorted(
        [
            "From",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "X-Lakehouse-Event",
            "X-Lakehouse-Kind",
            "Content-Type",
            "Content-Transfer-Encoding",
            "MIME-Version",
        ]
    )
    assert message["Bcc"] is None
    assert message["To"] == "data-team@localhost"
    assert "\n" not in message["Subject"] and "\r" not in message["Subject"]
    assert "evil\ufffd\ufffdBcc: attacker@example.com.csv" in message["Subject"]
    assert "evil" in message["X-Lakehouse-Event"]


def test_a_5000_character_key_stays_within_the_dimension_limit_and_distinct(tmp_path):
    first, second = "x" * 5000 + "a", "x" * 5000 + "b"
    assert len(dimension_value(first)) == MAX_DIMENSION_CHARS
    assert dimension_value(first) != dimension_value(second)
    assert dimension_value("a\nb") != dimension_value("a\rb")
    assert dimension_value("a\nb").isprintable()
    assert dimension_value("flights") == "flights"
    publisher = JsonLinesMetrics(directory=str(tmp_path))
    assert publisher.publish([Metric("FilesArrived", 1, "Count", {"file": first + "\r\n"})]) == 1
    (written,) = tmp_path.glob("*.jsonl")
    (line,) = written.read_text().splitlines()
    value = json.loads(line)["dimensions"]["file"]
    assert len(value) <= MAX_DIMENSION_CHARS and value.isprintable()
