"""The patterns the OpenAPI document shows are the languages the service really reads.

Where the service reads a value with other code than the pattern (shlex for commands, the SECRET: parser for
environment values, str.isspace for blanks), the two are compared on generated strings; and the query flags and
path parameters are read exactly as documented.
"""
from __future__ import annotations

import shlex

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runai_submit.schemas import fields as F
from runai_submit.schemas.fields import _secret_or_literal
from runai_submit.schemas.job import PORT_STRING, PVC_STRING, VOLUME_STRING
from runai_submit.units import DURATION_INPUT, POSITIVE_QUANTITY_INPUT, duration_seconds, normalize_quantity
from tests.conftest import SEED_JOB, submit

SETTINGS = settings(max_examples=120, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
SHELLISH = st.text(alphabet="ab '\"\\ \t\n$", max_size=12)


def _shlex_accepts(text: str) -> bool:
    try:
        shlex.split(text)
    except ValueError:
        return False
    return True


@SETTINGS
@given(st.one_of(SHELLISH, st.from_regex(F.SHELL_WORDS, fullmatch=True)))
def test_command_pattern_is_what_shlex_splits(text):
    assert (F.SHELL_WORDS.fullmatch(text) is not None) == _shlex_accepts(text)


SECRETISH = st.builds(lambda parts: "".join(parts), st.lists(st.sampled_from(
    ["SECRET:", "s", "my-secret", ".", "..", ",", " ", "\u2003", "key", "K_1", "A", "-", "x" * 250]), max_size=6))


@SETTINGS
@given(st.one_of(SECRETISH, st.from_regex(F.ENV_VALUE, fullmatch=True)))
def test_environment_value_pattern_is_what_the_secret_parser_takes(text):
    problems: list[str] = []
    _secret_or_literal("A", text, problems)
    word_rule = [p for p in problems if p.startswith(F.RULE_SECRET_NAME_LENGTH)]  # stated in words, not the pattern
    assert (F.ENV_VALUE.fullmatch(text) is not None) == (not problems or problems == word_rule), problems


@pytest.mark.parametrize("char", [chr(c) for c in range(0x3100) if chr(c).isspace()] + ["\u3000"])
def test_blank_is_what_str_strip_removes(char):
    assert F.NO_WHITESPACE.fullmatch(f"a{char}b") is None
    assert (f"x{char}".strip() == "x")


def test_no_whitespace_pattern_allows_every_other_character():
    others = [chr(c) for c in range(0x3100) if not chr(c).isspace()]
    assert all(F.NO_WHITESPACE.fullmatch(char) for char in others)


@SETTINGS
@given(st.from_regex(POSITIVE_QUANTITY_INPUT, fullmatch=True))
def test_every_quantity_the_pattern_takes_is_read_and_more_than_zero(text):
    from runai_submit.units import quantity_value
    assert quantity_value(normalize_quantity(text)) > 0


@SETTINGS
@given(st.from_regex(DURATION_INPUT, fullmatch=True))
def test_every_duration_the_pattern_takes_is_read_without_error(text):
    assert duration_seconds(text) >= 0


@pytest.mark.parametrize(("pattern", "good", "bad"), [
    (PORT_STRING, ["80", "080", "65535", "30080:80", "1:1"], ["0", "65536", "80:", ":80", "1:2:3", " 80", "+80"]),
    (VOLUME_STRING, ["/h:/c", "/h:/c:ro", "/a/b..:/c:rw", "/:/"], ["h:/c", "/h", "/h:/c:xx", "/a/../b:/c", "/..:/c"]),
    (PVC_STRING, [":1Gi:/d", "fast:10G:/d:ro", "claim:/d", "claim:/d:rw"],
     ["/d", "a:b:c:d:e", ":lots:/d", "claim:d", ":0:/d", "Claim:/d", "a" * 254 + ":/d"]),
])
def test_string_forms(pattern, good, bad):
    assert all(pattern.fullmatch(text) for text in good), [t for t in good if not pattern.fullmatch(t)]
    assert not any(pattern.fullmatch(text) for text in bad), [t for t in bad if pattern.fullmatch(t)]


# --- parameters, as the document says ------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1", "0", "yes", "no", "all", "", "True", "FALSE", " true"])
def test_query_flags_are_exactly_true_or_false(client, value):
    response = submit(client, {**SEED_JOB, "name": "flagged"}, query=f"?dryRun={value}")
    assert response.status_code == 400, response.json
    assert response.json["errors"][0]["field"] == "/dryRun"
    deleted = client.delete(f"/api/job?deletePvcs={value}", json=[], headers={"RA-USER": "john"})
    assert deleted.status_code == 400, deleted.json


@pytest.mark.parametrize(("value", "created"), [("true", False), ("false", True)])
def test_query_flag_values(client, fake_api, value, created):
    response = submit(client, {**SEED_JOB, "name": "flagged"}, query=f"?dryRun={value}")
    assert response.status_code == 200, response.json
    assert bool(fake_api.objects("RunaiJob")) is created


@pytest.mark.parametrize("name", ["Bad_Name", "-x", "a" * 254])
def test_get_with_a_job_name_that_breaks_the_path_pattern_is_422_naming_it(client, name):
    response = client.get(f"/api/v1/job/team-a/{name}")
    assert response.status_code == 422, response.json
    assert [error["field"] for error in response.json["errors"]] == ["/name"]
