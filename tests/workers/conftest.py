"""Fixtures shared by the scheduler tests."""

from tests.workers.test_scheduler import broker, mailbox

__all__ = ["broker", "mailbox"]
