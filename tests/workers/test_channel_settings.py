"""Which channels a role's reminders go out on, as a person configuring Pathway expects: the
channels they configured, without having to name them again in PATHWAY_CHANNELS; and a
channel named but not configured stops every process at start, saying what to set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import engine
from tests.workers.conftest import ROOT, SECRET
from workers import channels
from workers.channels import EmailChannel, LogChannel, WebhookChannel
from workers.settings import WorkerSettings

COORDINATOR, CLINICIAN = engine.Role.COORDINATOR, engine.Role.CLINICIAN
WEBHOOK = {"webhook_url": "https://receiver.example/hook", "webhook_secret": SECRET}
EMAIL = {"smtp_host": "127.0.0.1", "smtp_recipients": {COORDINATOR: ["coord@hospital.example"]}}


def chosen(settings: WorkerSettings, *roles: str) -> list[type]:
    found = channels.channels_for(settings, roles=roles, clock=engine.SystemClock())
    return [type(channel) for channel in found]


def test_with_nothing_configured_every_role_is_reminded_in_the_log() -> None:
    settings = WorkerSettings()
    assert chosen(settings, COORDINATOR) == [LogChannel]
    assert chosen(settings, CLINICIAN, COORDINATOR) == [LogChannel]


def test_a_webhook_url_and_secret_alone_send_every_roles_reminders_to_the_webhook() -> None:
    settings = WorkerSettings(**WEBHOOK)
    assert chosen(settings, COORDINATOR) == [WebhookChannel]
    assert chosen(settings, CLINICIAN) == [WebhookChannel]
    assert chosen(settings, engine.Role.ADMIN) == [WebhookChannel]


def test_an_smtp_server_alone_emails_the_roles_that_have_addresses() -> None:
    settings = WorkerSettings(**EMAIL)
    assert chosen(settings, COORDINATOR) == [EmailChannel]
    # A role without an address has nowhere to be emailed: the log, not a failed reminder.
    assert chosen(settings, CLINICIAN) == [LogChannel]


def test_both_configured_send_on_both() -> None:
    settings = WorkerSettings(**WEBHOOK, **EMAIL)
    assert chosen(settings, COORDINATOR) == [WebhookChannel, EmailChannel]
    assert chosen(settings, CLINICIAN) == [WebhookChannel]


def test_pathway_channels_still_decides_when_it_is_set() -> None:
    settings = WorkerSettings(channels={COORDINATOR: ["email"]}, **WEBHOOK, **EMAIL)
    assert chosen(settings, COORDINATOR) == [EmailChannel]
    assert chosen(settings, CLINICIAN) == [LogChannel], "a role it does not name: the log"


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"channels": {COORDINATOR: ["email"]}}, "set PATHWAY_SMTP_HOST"),
        (
            {"channels": {CLINICIAN: ["email"]}, **EMAIL},
            "PATHWAY_SMTP_RECIPIENTS has no address for 'clinician'",
        ),
        ({"channels": {COORDINATOR: ["webhook"]}}, "set PATHWAY_WEBHOOK_URL"),
        (
            {"channels": {COORDINATOR: ["webhook"]}, "webhook_url": "https://r.example/h"},
            "set PATHWAY_WEBHOOK_SECRET",
        ),
        ({"channels": {COORDINATOR: ["pager"]}}, "'pager', which is unknown"),
        ({"webhook_url": "https://r.example/h"}, "PATHWAY_WEBHOOK_SECRET is not"),
        ({"smtp_host": "127.0.0.1"}, "PATHWAY_SMTP_RECIPIENTS has no address"),
    ],
)
def test_a_channel_that_cannot_work_is_a_settings_error(
    settings: dict[str, Any], named: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        WorkerSettings(**settings)
    assert named in str(caught.value)


def test_the_worker_refuses_to_start_with_a_channel_it_cannot_use(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "worker"],
        cwd=tmp_path,
        text=True,
        capture_output=True,
        timeout=60,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "PATHWAY_DATA_DIR": str(tmp_path),
            "PATHWAY_CHANNELS": json.dumps({"coordinator": ["email", "webhook"]}),
            "PATHWAY_WEBHOOK_SECRET": SECRET,
        },
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "'coordinator' the channel 'email', which is not configured: set PATHWAY_SMTP_HOST" in (
        result.stderr
    )
    assert "set PATHWAY_WEBHOOK_URL" in result.stderr
    assert "Traceback" not in result.stderr
    assert SECRET not in result.stdout + result.stderr
