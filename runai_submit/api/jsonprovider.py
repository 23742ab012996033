"""Flask's JSON answers encoded by orjson: the same bytes as Flask's own provider, for less CPU (issue 13).

Flask's ``DefaultJSONProvider.response`` encodes with ``json.dumps(separators=(",", ":"), ensure_ascii=True)``
and then encodes the text again as UTF-8. orjson writes compact JSON straight to bytes: the same bytes, except for
text that is not ASCII (json.dumps escapes it as ``\\uXXXX``) and a few tiny floats; those, sorted keys, indented
(debug) output and values orjson does not know go through Flask's own path, so answers never change.
"""
from __future__ import annotations

import re
from typing import Any

import orjson
from flask import Response
from flask.json.provider import DefaultJSONProvider

# Dates, times and dataclasses go to Flask's ``default`` (HTTP dates, asdict) exactly as json.dumps sends them.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
# The only floats the two spell differently: 1e-05..9e-07 (orjson 0.00001) and 1e-07..9e-09 (orjson 1e-7).
_OTHER_FLOAT_SPELLING = re.compile(rb"0\.0000|e-\d(?!\d)")


def same_as_json_dumps(encoded: bytes) -> bool:
    """True when orjson's compact output is also what ``json.dumps(ensure_ascii=True)`` writes for the same data.

    json.dumps escapes non-ASCII text and spells floats below 1e-4 with a two-digit exponent; orjson does
    neither. A string that merely contains such text is a false alarm: the caller then uses json.dumps.
    """
    if not encoded.isascii():
        return False
    # Two substring tests are cheaper than the search, and almost always enough.
    return (b"e-" not in encoded and b"0.0000" not in encoded) or _OTHER_FLOAT_SPELLING.search(encoded) is None


class FastJSONProvider(DefaultJSONProvider):
    """``DefaultJSONProvider`` whose compact answers are encoded by orjson."""

    def response(self, *args: Any, **kwargs: Any) -> Response:
        compact = not ((self.compact is None and self._app.debug) or self.compact is False)
        if compact and self.ensure_ascii and not self.sort_keys:
            obj = self._prepare_response_obj(args, kwargs)
            try:
                body = orjson.dumps(obj, default=self.default, option=_OPTIONS)
            except TypeError:  # e.g. integers beyond 64 bits, non-string keys: Flask's own path below
                body = b""
            if body and same_as_json_dumps(body):
                return self._app.response_class(body + b"\n", mimetype=self.mimetype)
        return super().response(*args, **kwargs)
