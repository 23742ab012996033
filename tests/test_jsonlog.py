"""The fast JSON log formatter writes exactly what python-json-logger's JsonFormatter writes (issue 13)."""
from __future__ import annotations

import datetime
import logging
import sys

import pytest
from pythonjsonlogger.json import JsonFormatter

from runai_submit.jsonlog import FastJsonFormatter

# The service's configuration (runai_submit.app.configure_logging).
SERVICE = {"fmt": "{levelname}{name}{message}", "style": "{", "timestamp": "time",
           "rename_fields": {"levelname": "level", "name": "logger"}}


def record(msg, *args, extra=None, exc_info=None, stack_info=None, level=logging.INFO) -> logging.LogRecord:
    logger = logging.getLogger("runai_submit.test")
    rec = logger.makeRecord(logger.name, level, __file__, 1, msg, args, exc_info, extra=extra, sinfo=stack_info)
    rec.request_id = "abc123"  # what RequestIdFilter adds
    return rec


def _raised() -> tuple:
    try:
        raise ValueError("boom é")
    except ValueError:
        return sys.exc_info()


RECORDS = {
    "access line": lambda: record("%s %s %s", "POST", "/api/job", 200, extra={
        "method": "POST", "path": "/api/job", "status": 200, "duration_ms": 11.695, "remote": "127.0.0.1",
        "user": "john"}),
    "audit line": lambda: record("audit %s", "submit", extra={
        "event": "submit", "user": "jane", "groups": ["a", "b"], "auth_mode": "token", "project": "team-a",
        "job": "job-x", "dry_run": False, "namespace": "runai-team-a", "manifests": "sha256:00ff",
        "objects": ["RunaiJob job-x"], "status": 200, "outcome": "ok"}),
    "non-ASCII text": lambda: record("user %s", "jürgen 名前", extra={"user": "jürgen", "nested": {"ä": ["ö"]}}),
    "floats of every spelling": lambda: record("x", extra={"a": 1e-05, "b": 1e16, "c": 0.1, "d": float("inf"),
                                                           "e": -0.0, "f": 2.0}),
    "no extras, None values": lambda: record("plain", extra={"user": None}),
    "datetime and date values": lambda: record("t", extra={"at": datetime.datetime(2024, 1, 2, 3, 4, 5),
                                                           "day": datetime.date(2024, 1, 2)}),
    "values the encoder falls back on": lambda: record("odd", extra={"aset": {1}, "error": KeyError("k"),
                                                                     "kind": object}),
    "an exception": lambda: record("failed", exc_info=_raised()),
    "a stack": lambda: record("here", stack_info="Stack (most recent call last):\n  here"),
    "a dict as message": lambda: record({"event": "dict message", "n": 1}),
    "private and numeric keys": lambda: _with_attrs(record("keys"), {"_private": 1, 7: "seven"}),
    "a message with braces and percent": lambda: record("100%% done {x}"),
    "a warning": lambda: record("careful", level=logging.WARNING, extra={"what": "x"}),
}


def _with_attrs(rec: logging.LogRecord, attrs: dict) -> logging.LogRecord:
    rec.__dict__.update(attrs)
    return rec


@pytest.mark.parametrize("config", [SERVICE, {}, {"fmt": "%(levelname)s %(message)s"},
                                    {**SERVICE, "json_ensure_ascii": False},
                                    {**SERVICE, "static_fields": {"app": "x"}}, {**SERVICE, "timestamp": True}],
                         ids=["service", "defaults", "percent style", "no ascii escaping", "static fields",
                              "timestamp key"])
@pytest.mark.parametrize("name", list(RECORDS))
def test_same_line_as_the_library(config: dict, name: str) -> None:
    original = RECORDS[name]()
    same = logging.makeLogRecord(dict(original.__dict__))  # format() adds to a record: give each its own
    assert FastJsonFormatter(**config).format(same) == JsonFormatter(**config).format(original)


def test_fast_path_is_taken_for_the_service_lines() -> None:
    """The access and audit lines take the fast path (no JsonFormatter.format call): its point."""
    formatter = FastJsonFormatter(**SERVICE)
    calls = []
    original = JsonFormatter.format

    def counting(self, rec):
        calls.append(rec)
        return original(self, rec)

    JsonFormatter.format = counting
    try:
        formatter.format(RECORDS["access line"]())
        formatter.format(RECORDS["audit line"]())
        assert calls == []
        formatter.format(RECORDS["an exception"]())
        assert len(calls) == 1
    finally:
        JsonFormatter.format = original
