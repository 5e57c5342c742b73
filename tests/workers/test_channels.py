"""Reminder channels against real receivers: an SMTP server (aiosmtpd) and an HTTP server;
webhook signatures checked by the Standard Webhooks package's own verifier."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from pytest_httpserver import HTTPServer

import engine
from engine import ReminderMessage
from tests.api.conftest import free_port
from tests.workers.conftest import SECRET, Collector, verify
from workers import channels
from workers.channels import EmailChannel, LogChannel, MemoryChannel, WebhookChannel
from workers.settings import WorkerSettings

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
        recipients=(engine.Role.COORDINATOR,),
        due_at=datetime(2024, 5, 1, 9, 30, tzinfo=UTC),
        attempt=1,
        delivered=frozenset(),
        open_steps=("refer_specialist", "physio_review"),
        text="Specialist referral due (2 weeks after conservative care started)",
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
                "recipients": ("coord@hospital.example",),
                "base_url": BASE_URL,
            },
        )
    finally:
        controller.stop()


@pytest.fixture
def webhook(httpserver: HTTPServer) -> dict[str, Any]:
    return {
        "url": httpserver.url_for(WEBHOOK_PATH),
        "secret": SECRET,
        "base_url": BASE_URL,
        "clock": engine.SystemClock(),
    }


def body_text(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("plain",))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content


def test_render_names_case_patient_due_time_open_steps_and_link() -> None:
    subject, body = channels.render(reminder(), base_url=BASE_URL)
    assert "Specialist referral due (2 weeks after conservative care started)" in subject
    assert "c-123" in subject
    assert PATIENT_REF not in subject
    assert "2024-05-01T09:30:00Z" in body
    assert "refer_specialist, physio_review" in body
    assert f"{BASE_URL}/cases/c-123" in body
    assert PATIENT_REF in body


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("Dressing review due", "Dressing review due"),
        ("  Dressing review\n due  ", "Dressing review due"),  # one line, whatever it holds
        ("", "referral_due_2_weeks"),  # no words at all: the kind, never an empty subject
    ],
)
def test_render_says_what_the_message_carries_from_the_diagram(text: str, phrase: str) -> None:
    subject, body = channels.render(reminder(text=text), base_url=BASE_URL)
    assert subject == f"[Pathway] {phrase} - case c-123"
    assert body.startswith(phrase + "\n")


def test_email_arrives_with_stable_message_id_on_retry(
    smtp: tuple[Collector, dict[str, Any]],
) -> None:
    collector, config = smtp
    email = EmailChannel(**config)
    email.send(reminder())
    email.send(reminder(attempt=2))

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
        EmailChannel(
            host="127.0.0.1",
            port=free_port(),
            sender="pathway@hospital.example",
            recipients=("coord@hospital.example",),
            base_url=BASE_URL,
            timeout=2,
        ).send(reminder())


def test_webhook_is_signed_and_keeps_its_id_across_sends(
    httpserver: HTTPServer, webhook: dict[str, Any]
) -> None:
    httpserver.expect_request(WEBHOOK_PATH, method="POST").respond_with_data("ok")
    # A whole second shortly before now: the verifier refuses timestamps 5 minutes off.
    fixed = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    WebhookChannel(**{**webhook, "clock": engine.SimulatedClock(fixed)}).send(reminder())
    WebhookChannel(**webhook).send(reminder(attempt=2))

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
        "text": "Specialist referral due (2 weeks after conservative care started)",
        "due_at": "2024-05-01T09:30:00Z",
        "open_steps": ["refer_specialist", "physio_review"],
        "link": f"{BASE_URL}/cases/c-123",
    }


def test_webhook_plain_secret_signs_with_its_utf8_bytes(httpserver: HTTPServer) -> None:
    httpserver.expect_request(WEBHOOK_PATH, method="POST").respond_with_data("ok")
    WebhookChannel(
        url=httpserver.url_for(WEBHOOK_PATH),
        secret="plain-secret",
        base_url=BASE_URL,
        clock=engine.SystemClock(),
    ).send(reminder())
    (request, _) = httpserver.log[0]
    body = request.get_data()
    signed = f"reminder-7.{request.headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(b"plain-secret", signed, hashlib.sha256).digest())
    assert request.headers["webhook-signature"] == "v1," + expected.decode()


def test_webhook_unreachable_raises_without_patient_data() -> None:
    with pytest.raises(channels.DeliveryError) as caught:
        WebhookChannel(
            url=f"http://127.0.0.1:{free_port()}/hook",
            secret=SECRET,
            base_url=BASE_URL,
            clock=engine.SystemClock(),
            timeout=2,
        ).send(reminder())
    assert PATIENT_REF not in str(caught.value)


def test_deliver_reports_503_for_webhook_while_email_succeeds(
    httpserver: HTTPServer,
    smtp: tuple[Collector, dict[str, Any]],
    webhook: dict[str, Any],
) -> None:
    collector, email = smtp
    httpserver.expect_request(WEBHOOK_PATH, method="POST").respond_with_data("down", status=503)
    outcomes = channels.deliver(reminder(), [WebhookChannel(**webhook), EmailChannel(**email)])
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
    outcomes = channels.deliver(
        reminder(attempt=2, delivered=frozenset({"email"})),
        [EmailChannel(**email), WebhookChannel(**webhook)],
    )
    assert outcomes == {"webhook": None}
    assert collector.messages == []
    assert len(httpserver.log) == 1


def test_log_channel_writes_a_line_without_the_patient(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="workers.channels.log"):
        outcomes = channels.deliver(reminder(), [LogChannel(base_url=BASE_URL)])
    assert outcomes == {"log": None}
    records = [r for r in caplog.records if r.name == "workers.channels.log"]
    assert len(records) == 1
    line = records[0].getMessage()
    assert records[0].levelno == logging.WARNING
    assert "7" in line and "c-123" in line and "referral_due_2_weeks" in line
    assert f"{BASE_URL}/cases/c-123" in line
    assert PATIENT_REF not in caplog.text


def test_each_role_gets_the_channels_the_settings_name_for_it() -> None:
    settings = WorkerSettings(
        channels={
            engine.Role.COORDINATOR: ["email"],
            engine.Role.CLINICIAN: ["webhook", "email"],
        },
        smtp_host="127.0.0.1",
        smtp_recipients={
            engine.Role.COORDINATOR: ["coord@hospital.example"],
            engine.Role.CLINICIAN: ["lee@hospital.example"],
        },
        webhook_url="https://receiver.example/hook",
        webhook_secret=SECRET,
        public_url=BASE_URL,
    )
    clock = engine.SystemClock()
    both = channels.channels_for(
        settings, roles=(engine.Role.COORDINATOR, engine.Role.CLINICIAN), clock=clock
    )
    assert [c.name for c in both] == ["email", "webhook"]
    (email, _) = both
    assert isinstance(email, EmailChannel)
    assert email.recipients == ("coord@hospital.example", "lee@hospital.example")
    # A role the settings name no channel for is reminded in the log.
    (fallback,) = channels.channels_for(settings, roles=(engine.Role.ADMIN,), clock=clock)
    assert isinstance(fallback, LogChannel)


def test_a_channel_that_fails_is_recorded_while_the_others_deliver() -> None:
    def down(message: ReminderMessage) -> None:
        raise ConnectionRefusedError(f"pager for case {message.case_id} is down")

    pager = MemoryChannel(name="pager", handler=down)
    inbox = MemoryChannel(name="inbox")
    outcomes = channels.deliver(reminder(), [pager, inbox])
    assert outcomes == {
        "pager": "ConnectionRefusedError: pager for case c-123 is down",
        "inbox": None,
    }
    assert [m.id for m in inbox.sent] == [7]
    assert pager.sent == []
