"""Notifiers against real receivers: an SMTP server (aiosmtpd) and an HTTP server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from pytest_httpserver import HTTPServer

from engine import ReminderMessage
from tests.api.conftest import free_port
from tests.workers.conftest import SECRET, Collector, verify
from workers import notifiers

BASE_URL = "https://pathway.example"
PATIENT_REF = "MRN-SYNTH-0042"
WEBHOOK_PATH = "/hooks/pathway"


def reminder(**changes: Any) -> ReminderMessage:
    """A synthetic reminder (id 7) for case c-123."""
    base = ReminderMessage(
        id=7,
        case_id="c-123",
        patient_ref=PATIENT_REF,
        kind="referral_due_2_weeks",
        step="refer_specialist",
        recipients=("coordinator",),
        due_at=datetime(2024, 5, 1, 9, 30, tzinfo=UTC),
        attempt=1,
        delivered=frozenset(),
        open_steps=("refer_specialist", "physio_review"),
    )
    return replace(base, **changes)


@pytest.fixture
def smtp() -> Iterator[tuple[Collector, dict[str, Any]]]:
    collector = Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield (
            collector,
            {
                "host": "127.0.0.1",
                "port": controller.port,
                "sender": "pathway@hospital.example",
                "recipients": ["coord@hospital.example"],
            },
        )
    finally:
        controller.stop()


@pytest.fixture
def webhook(httpserver: HTTPServer) -> dict[str, Any]:
    return {"url": httpserver.url_for(WEBHOOK_PATH), "secret": SECRET}


def body_text(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("plain",))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content


def test_render_names_case_patient_due_time_open_steps_and_link() -> None:
    subject, body = notifiers.render(reminder(), base_url=BASE_URL)
    assert "Specialist referral due (2 weeks after conservative care started)" in subject
    assert "c-123" in subject
    assert PATIENT_REF not in subject
    assert "2024-05-01T09:30:00Z" in body
    assert "refer_specialist, physio_review" in body
    assert f"{BASE_URL}/cases/c-123" in body
    assert PATIENT_REF in body


@pytest.mark.parametrize(
    ("kind", "phrase"),
    [
        ("reassessment_due_6_weeks", "6-week reassessment due"),
        (
            "referral_escalation_3_months",
            "ESCALATION: specialist referral not done 3 months after symptom onset",
        ),
        ("urgent_action_overdue", "Urgent MRI / specialist referral still open"),
        ("something_new", "something_new"),
    ],
)
def test_render_phrases_each_kind(kind: str, phrase: str) -> None:
    subject, body = notifiers.render(reminder(kind=kind), base_url=BASE_URL)
    assert phrase in subject
    assert body.startswith(phrase)


def test_email_arrives_with_stable_message_id_on_retry(
    smtp: tuple[Collector, dict[str, Any]],
) -> None:
    collector, config = smtp
    notifiers.send_email(reminder(), base_url=BASE_URL, **config)
    notifiers.send_email(reminder(attempt=2), base_url=BASE_URL, **config)

    assert len(collector.messages) == 2
    first, retry = collector.messages
    assert first["Message-ID"] == "<reminder-7@pathway>"
    assert retry["Message-ID"] == "<reminder-7@pathway>"
    assert first["Subject"] == (
        "[Pathway] Specialist referral due (2 weeks after conservative care started) - case c-123"
    )
    assert collector.envelopes[0] == ("pathway@hospital.example", ["coord@hospital.example"])

    text = body_text(first)
    assert f"{BASE_URL}/cases/c-123" in text
    assert PATIENT_REF in text
    # Nothing else of the patient: every non-empty line is one of the known fields.
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines == [
        "Specialist referral due (2 weeks after conservative care started)",
        "Case: c-123",
        f"Patient reference: {PATIENT_REF}",
        "Due since: 2024-05-01T09:30:00Z",
        "Open steps: refer_specialist, physio_review",
        f"Open the case: {BASE_URL}/cases/c-123",
    ]


def test_email_to_a_closed_port_raises() -> None:
    with pytest.raises(OSError):
        notifiers.send_email(
            reminder(),
            host="127.0.0.1",
            port=free_port(),
            sender="pathway@hospital.example",
            recipients=["coord@hospital.example"],
            base_url=BASE_URL,
            timeout=2,
        )


def test_webhook_is_signed_and_keeps_its_id_across_sends(
    httpserver: HTTPServer, webhook: dict[str, Any]
) -> None:
    httpserver.expect_request(WEBHOOK_PATH, method="POST").respond_with_data("ok")
    fixed = datetime(2024, 5, 2, 8, 0, tzinfo=UTC)
    notifiers.send_webhook(reminder(), base_url=BASE_URL, now=lambda: fixed, **webhook)
    notifiers.send_webhook(reminder(attempt=2), base_url=BASE_URL, **webhook)

    assert len(httpserver.log) == 2
    (first, _), (second, _) = httpserver.log
    body = first.get_data()
    assert first.headers["webhook-id"] == "reminder-7"
    assert second.headers["webhook-id"] == "reminder-7"
    assert first.headers["webhook-timestamp"] == str(int(fixed.timestamp()))
    assert first.headers["webhook-signature"].startswith("v1,")
    assert verify(SECRET, first.headers, body)
    assert verify(SECRET, second.headers, second.get_data())

    tampered = body.replace(b"c-123", b"c-999")
    assert tampered != body
    assert not verify(SECRET, first.headers, tampered)
    assert not verify("whsec_" + base64.b64encode(b"another-secret").decode(), first.headers, body)

    assert json.loads(body) == {
        "type": "reminder",
        "reminder_id": 7,
        "case_id": "c-123",
        "patient_ref": PATIENT_REF,
        "kind": "referral_due_2_weeks",
        "due_at": "2024-05-01T09:30:00Z",
        "open_steps": ["refer_specialist", "physio_review"],
        "link": f"{BASE_URL}/cases/c-123",
    }


def test_webhook_plain_secret_signs_with_its_utf8_bytes(httpserver: HTTPServer) -> None:
    httpserver.expect_request(WEBHOOK_PATH, method="POST").respond_with_data("ok")
    notifiers.send_webhook(
        reminder(), url=httpserver.url_for(WEBHOOK_PATH), secret="plain-secret", base_url=BASE_URL
    )
    (request, _) = httpserver.log[0]
    body = request.get_data()
    signed = f"reminder-7.{request.headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(b"plain-secret", signed, hashlib.sha256).digest())
    assert request.headers["webhook-signature"] == "v1," + expected.decode()


def test_webhook_unreachable_raises_without_patient_data() -> None:
    with pytest.raises(notifiers.DeliveryError) as caught:
        notifiers.send_webhook(
            reminder(),
            url=f"http://127.0.0.1:{free_port()}/hook",
            secret=SECRET,
            base_url=BASE_URL,
            timeout=2,
        )
    assert PATIENT_REF not in str(caught.value)


def test_deliver_reports_503_for_webhook_while_email_succeeds(
    httpserver: HTTPServer,
    smtp: tuple[Collector, dict[str, Any]],
    webhook: dict[str, Any],
) -> None:
    collector, email = smtp
    httpserver.expect_request(WEBHOOK_PATH, method="POST").respond_with_data("down", status=503)
    outcomes = notifiers.deliver(
        reminder(),
        channels=["webhook", "email"],
        email=email,
        webhook=webhook,
        base_url=BASE_URL,
    )
    assert outcomes["email"] is None
    assert outcomes["webhook"] is not None
    assert "503" in outcomes["webhook"]
    assert PATIENT_REF not in outcomes["webhook"]
    assert len(collector.messages) == 1
    assert len(httpserver.log) == 1


def test_deliver_skips_channels_already_delivered(
    httpserver: HTTPServer,
    smtp: tuple[Collector, dict[str, Any]],
    webhook: dict[str, Any],
) -> None:
    collector, email = smtp
    httpserver.expect_request(WEBHOOK_PATH, method="POST").respond_with_data("ok")
    outcomes = notifiers.deliver(
        reminder(attempt=2, delivered=frozenset({"email"})),
        channels=["email", "webhook"],
        email=email,
        webhook=webhook,
        base_url=BASE_URL,
    )
    assert outcomes == {"webhook": None}
    assert collector.messages == []
    assert len(httpserver.log) == 1


def test_deliver_names_the_missing_setting() -> None:
    outcomes = notifiers.deliver(
        reminder(),
        channels=["email", "webhook", "log"],
        email=None,
        webhook=None,
        base_url=BASE_URL,
    )
    assert outcomes["log"] is None
    assert outcomes["email"] is not None and "PATHWAY_SMTP_HOST" in outcomes["email"]
    assert outcomes["webhook"] is not None and "PATHWAY_WEBHOOK_URL" in outcomes["webhook"]


def test_log_channel_writes_a_line_without_the_patient(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="workers.notifiers"):
        outcomes = notifiers.deliver(
            reminder(), channels=["log"], email=None, webhook=None, base_url=BASE_URL
        )
    assert outcomes == {"log": None}
    records = [r for r in caplog.records if r.name == "workers.notifiers"]
    assert len(records) == 1
    line = records[0].getMessage()
    assert records[0].levelno == logging.WARNING
    assert "7" in line and "c-123" in line and "referral_due_2_weeks" in line
    assert f"{BASE_URL}/cases/c-123" in line
    assert PATIENT_REF not in caplog.text
