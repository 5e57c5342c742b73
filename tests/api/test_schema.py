"""The OpenAPI document speaks the domain's words: statuses, event types as enums."""

from __future__ import annotations

from typing import Any

import engine
from tests.api.conftest import Server


def _resolve(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _query_enum(document: dict[str, Any], path: str, name: str) -> list[str]:
    (parameter,) = [p for p in document["paths"][path]["get"]["parameters"] if p["name"] == name]
    schema = parameter["schema"]
    (choice,) = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
    enum: list[str] = _resolve(choice, document)["enum"]
    return enum


def _field_enum(document: dict[str, Any], model: str, field: str) -> list[str]:
    enum: list[str] = _resolve(
        document["components"]["schemas"][model]["properties"][field], document
    )["enum"]
    return enum


def test_statuses_and_event_types_are_enums_of_the_vocabulary(api_server: Server) -> None:
    with api_server.client() as anonymous:
        document = anonymous.get("/openapi.json").json()
    cases, reminders = list(engine.CaseStatus), list(engine.ReminderStatus)
    assert _query_enum(document, "/cases", "status") == cases
    assert _query_enum(document, "/reminders", "status") == reminders
    assert _field_enum(document, "CaseOut", "status") == cases
    assert _field_enum(document, "CaseSummaryOut", "status") == cases
    assert _field_enum(document, "ReminderOut", "status") == reminders
    assert _field_enum(document, "ReminderRecordOut", "status") == reminders
    assert _field_enum(document, "EventOut", "type") == list(engine.EventType)
