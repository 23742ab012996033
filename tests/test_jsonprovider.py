"""Flask answers encoded by orjson (issue 13) are byte for byte what Flask's own provider writes."""
from __future__ import annotations

import dataclasses
import datetime
import decimal
import uuid

import pytest
from flask import Flask
from flask.json.provider import DefaultJSONProvider

from runai_submit.api.jsonprovider import FastJSONProvider


@dataclasses.dataclass
class Point:
    x: int
    y: float


VALUES = {
    "submit answer": {"name": "job-x", "project": "team-a", "namespace": "runai-team-a", "kind": "RunaiJob",
                      "objects": [{"kind": "RunaiJob", "name": "job-x"}], "defaulted": [], "warnings": []},
    "error envelope": {"status": 422, "message": "Invalid job.", "details": "",
                       "errors": [{"field": "/job/gpu", "message": "must be >= 0"}]},
    "a list": [1, 2.5, None, True, "x"],
    "non-ASCII": {"user": "jürgen 名前"},
    "floats of every spelling": [1e-05, 1e16, 0.1, -0.0, 123456789.125],
    "big integers": [2**63, -(2**64), 10**30],
    "dates, decimals, uuids, dataclasses": {"at": datetime.datetime(2024, 1, 2, 3, 4, 5), "d": datetime.date(2024, 1, 2),
                                            "n": decimal.Decimal("1.50"), "u": uuid.UUID(int=7), "p": Point(1, 2.0)},
    "non-string keys": {1: "one", None: "none"},
    "empty": {},
}


def _app(provider: type, **attrs) -> Flask:
    app = Flask(__name__)
    app.json = provider(app)
    app.json.sort_keys = False
    for name, value in attrs.items():
        setattr(app.json, name, value)
    return app


@pytest.mark.parametrize("attrs", [{}, {"ensure_ascii": False}, {"sort_keys": True}, {"compact": False}],
                         ids=["service", "utf-8", "sorted", "indented"])
@pytest.mark.parametrize("name", list(VALUES))
def test_same_answer_as_flask(name: str, attrs: dict) -> None:
    ours, flasks = _app(FastJSONProvider, **attrs), _app(DefaultJSONProvider, **attrs)
    with flasks.app_context():
        try:
            theirs = flasks.json.response(VALUES[name])
        except TypeError:  # Flask cannot sort mixed keys: neither can we
            with ours.app_context(), pytest.raises(TypeError):
                ours.json.response(VALUES[name])
            return
    with ours.app_context():
        mine = ours.json.response(VALUES[name])
    assert mine.get_data() == theirs.get_data()
    assert mine.mimetype == theirs.mimetype == "application/json"


@pytest.mark.parametrize("value", [1e-05, 2.5e-06, 1e-07, 9.5e-09, 1e-10, 1e-4, 0.5, 1e16, 1.5e300, 5e-324])
def test_every_float_spelling(value: float) -> None:
    assert _answer(value) == _answer(value, DefaultJSONProvider)
    assert _answer({"k": [-value]}) == _answer({"k": [-value]}, DefaultJSONProvider)


def _answer(value, provider: type = FastJSONProvider) -> bytes:
    app = _app(provider)
    with app.app_context():
        return app.json.response(value).get_data()
