"""The OpenAPI document: valid, complete (derived from the app's own routes), served with a CDN-free docs page.
That it is true of the API is the fuzzing gate's job (test_openapi_fuzz.py)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from urllib.parse import urljoin

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate

from runai_submit import schemas, units
from runai_submit.api.spec import USER_HEADER
from runai_submit.app import create_app
from runai_submit.render import names

HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}
# Served by Flask or by the docs blueprint for the docs page itself; not API operations.
NOT_OPERATIONS = {"static", "docs.docs_page", "docs.docs_init", "docs.docs_asset", "docs.openapi_json"}
DOCS_ASSETS = {
    "swagger-ui-bundle.js": "javascript",
    "swagger-ui-standalone-preset.js": "javascript",
    "swagger-ui.css": "text/css",
    "init.js": "javascript",
}


@pytest.fixture(scope="module")
def offline_app(tmp_path_factory):
    return create_app({"backend": "offline", "offline_dir": str(tmp_path_factory.mktemp("offline"))})


@pytest.fixture(scope="module")
def document(offline_app):
    response = offline_app.test_client().get("/api/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.json


def openapi_path(rule: str) -> str:
    """Flask's ``/api/v1/job/<project>/<path:name>`` -> OpenAPI's ``/api/v1/job/{project}/{name}``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def served_operations(app) -> set[tuple[str, str]]:
    return {
        (openapi_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.endpoint not in NOT_OPERATIONS
        for method in rule.methods & HTTP_METHODS
    }


def documented_operations(document) -> set[tuple[str, str]]:
    return {(path, method) for path, item in document["paths"].items() for method in item
            if method.upper() in HTTP_METHODS}


def test_document_is_a_valid_openapi_3_document(document):
    validate(document)
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "runai-submit"


def test_every_route_of_the_app_is_documented_with_its_methods(offline_app, document):
    served = served_operations(offline_app)
    assert len(served) >= 14, served  # sanity: the derivation found the API's routes
    assert ("/api/v1/job/{project}/{name}", "get") in served
    missing = served - documented_operations(document)
    assert not missing, f"served but not documented: {sorted(missing)}"


def test_every_documented_operation_is_served(offline_app, document):
    extra = documented_operations(document) - served_operations(offline_app)
    assert not extra, f"documented but not served: {sorted(extra)}"


def test_path_parameters_are_declared(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            declared = {p["name"] for p in operation.get("parameters", []) + item.get("parameters", [])
                        if p["in"] == "path"}
            assert declared == set(re.findall(r"{([^}]+)}", path)), (method, path)


def test_operations_that_need_ra_user_document_it(document):
    for path, item in document["paths"].items():
        for method in ("post", "delete"):
            if method in item:
                headers = {p["name"]: p for p in item[method]["parameters"] if p["in"] == "header"}
                assert headers["RA-USER"]["required"] is True, (method, path)


def test_job_schema_properties_are_exactly_the_job_schema_fields(document):
    fields = {field.data_key or name for name, field in schemas.JobSchema().fields.items()}
    job = document["components"]["schemas"]["Job"]
    assert set(job["properties"]) == fields
    assert set(job["required"]) == {"project", "image"}
    assert job.get("additionalProperties") is False  # unknown fields are refused (422)
    request = document["components"]["schemas"]["SubmitRequest"]
    assert request["properties"]["job"] == {"$ref": "#/components/schemas/Job"}


def test_list_and_error_schemas_name_the_contract_fields(document):
    components = document["components"]["schemas"]
    view = components["JobView"]["properties"]
    assert {"name", "project", "user", "type", "status", "createdAt", "images", "requestedGPUs", "uid"} <= set(view)
    # Suspended: job insight (issue 11), a suspended job's status
    assert set(view["status"]["enum"]) == {"Pending", "Running", "Succeeded", "Failed", "Unknown", "Suspended"}
    assert set(view["type"]["enum"]) == {"Train", "Interactive"}
    assert {"status", "message", "details", "errors"} <= set(components["Error"]["required"])


def test_document_is_served_the_same_every_time(offline_app, document):
    assert offline_app.test_client().get("/api/openapi.json").json == document


# --- the docs page ----------------------------------------------------------------------------------


def test_docs_page_is_html_without_any_cdn(offline_app):
    response = offline_app.test_client().get("/api/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "swagger-ui" in html
    assert not re.search(r"(?i)https?://", html), "the docs page must not load anything from the internet"
    assert not re.search(r"""(?i)(src|href)\s*=\s*["']//""", html), "no protocol-relative URLs either"


def test_docs_page_references_resolve_to_the_served_assets(offline_app):
    client = offline_app.test_client()
    html = client.get("/api/docs").get_data(as_text=True)
    references = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    resolved = {urljoin("http://localhost/api/docs", ref) for ref in references}
    assert resolved == {f"http://localhost/api/docs/{name}" for name in DOCS_ASSETS}
    for url in resolved:
        assert client.get(url.removeprefix("http://localhost")).status_code == 200, url


@pytest.mark.parametrize("asset, content_type", sorted(DOCS_ASSETS.items()))
def test_docs_assets_are_served_with_their_content_types(offline_app, asset, content_type):
    response = offline_app.test_client().get(f"/api/docs/{asset}")
    assert response.status_code == 200
    assert content_type in response.mimetype, response.mimetype
    body = response.get_data(as_text=True)
    if asset == "init.js":
        assert "SwaggerUIBundle" in body
    else:
        assert len(body) > 10_000  # the packaged asset itself, not a stub
    assert not re.search(r"(?i)https?://[^\s\"']*(unpkg|jsdelivr|cdnjs)", body)


def test_docs_init_points_at_the_served_document(offline_app):
    client = offline_app.test_client()
    init = client.get("/api/docs/init.js").get_data(as_text=True)
    (url,) = re.findall(r"""url\s*:\s*["']([^"']+)["']""", init)
    target = urljoin("http://localhost/api/docs", url).removeprefix("http://localhost")
    assert target == "/api/openapi.json"
    assert client.get(target).status_code == 200


def test_unknown_docs_asset_is_a_404_envelope(offline_app):
    response = offline_app.test_client().get("/api/docs/nope.js")
    assert response.status_code == 404
    assert response.json["status"] == 404


# --- the rules are in the document, from the same source as the service's own checks ----------------


def _walk(node, path=()):
    """Every (path, dict) of the document."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, (*path, index))


def _parameters(document, path, method):
    return {p["name"]: p for p in document["paths"][path][method].get("parameters", [])}


@pytest.mark.parametrize("path", ["/api/v1/job/{project}", "/api/v1/job/{project}/{name}"])
def test_path_parameters_carry_the_name_rules_of_render_names(document, path):
    project = _parameters(document, path, "get")["project"]["schema"]
    assert project["pattern"] == names.DNS1123_LABEL.pattern
    assert (project["minLength"], project["maxLength"]) == (1, names.MAX_LABEL)
    if "{name}" in path:
        name = _parameters(document, path, "get")["name"]["schema"]
        assert name["pattern"] == names.DNS1123_SUBDOMAIN.pattern
        assert (name["minLength"], name["maxLength"]) == (1, names.MAX_SUBDOMAIN)


@pytest.mark.parametrize(("field", "pattern", "max_length"), [
    ("name", names.DNS1035_LABEL, names.MAX_LABEL),
    ("jobNamePrefix", names.DNS1035_LABEL, names.MAX_PREFIX),
    ("project", names.DNS1123_LABEL, names.MAX_LABEL),
    ("nodeType", names.LABEL_VALUE, names.MAX_LABEL),
])
def test_job_names_and_labels_carry_their_patterns_and_lengths(document, field, pattern, max_length):
    prop = document["components"]["schemas"]["Job"]["properties"][field]
    assert (prop["pattern"], prop["minLength"], prop["maxLength"]) == (pattern.pattern, 1, max_length)


def test_job_bounds_formats_enums_and_alternative_shapes(document):
    job = document["components"]["schemas"]["Job"]["properties"]
    assert job["cpu"]["minimum"] == 0 and job["cpu"]["exclusiveMinimum"] is True
    assert job["gpu"]["minimum"] == 0 and "exclusiveMinimum" not in job["gpu"]
    assert job["gpu"]["maximum"] == (2**63 - 1) // 1000
    for field, low in (("backoffLimit", 0), ("completions", 1), ("parallelism", 1)):
        assert (job[field]["type"], job[field]["minimum"], job[field]["maximum"]) == ("integer", low, 2**31 - 1)
    assert job["imagePullPolicy"]["enum"] == ["Always", "IfNotPresent", "Never", None]  # nullable: null listed
    assert job["serviceType"]["enum"][:-1] == list(schemas.fields.SERVICE_TYPES)
    assert job["imagePullPolicy"]["x-case-insensitive"] is True and "any letter case" in job["serviceType"]["description"]
    assert [shape["type"] for shape in job["command"]["oneOf"]] == ["string", "array"]
    assert [shape.get("type") for shape in job["ttlAfterFinish"]["oneOf"]] == ["string", "integer"]
    ports = job["ports"]["items"]["oneOf"]
    assert ports[0] == {"$ref": "#/components/schemas/Port"}
    assert [shape["type"] for shape in ports[1:]] == ["string", "integer"]
    assert (ports[2]["minimum"], ports[2]["maximum"]) == (1, 65535)
    assert [shape.get("$ref", shape.get("type")) for shape in job["pvc"]["items"]["oneOf"]] == [
        "#/components/schemas/Pvc", "string"]
    assert job["memory"]["pattern"] == units.POSITIVE_QUANTITY_INPUT.pattern
    assert job["image"]["pattern"] == schemas.fields.NO_WHITESPACE.pattern
    assert job["workingDir"]["pattern"] == schemas.fields.ABSOLUTE_PATH.pattern
    volume = document["components"]["schemas"]["Volume"]["properties"]
    assert volume["sourcePath"]["pattern"] == schemas.fields.HOST_PATH.pattern
    port = document["components"]["schemas"]["Port"]["properties"]
    assert (port["container"]["minimum"], port["container"]["maximum"]) == (1, 65535)
    for name in ("Job", "Port", "Pvc", "Volume", "SubmitRequest", "JobRef"):
        assert document["components"]["schemas"][name]["additionalProperties"] is False, name


def test_rules_across_fields_are_in_the_descriptions_and_x_rules(document):
    """Every rule the schemas can only state in words is listed under its field, and said in its description."""
    components = document["components"]["schemas"]
    declared = {("Job", field): rules for field, rules in schemas.JobSchema.RULES.items()}
    declared |= {("Port", field): rules for field, rules in schemas.PortSchema.RULES.items()}
    declared |= {("Pvc", field): rules for field, rules in schemas.PvcSchema.RULES.items()}
    declared |= {("Job", "ttlAfterFinish"): schemas.Duration.rules, ("Job", "environment"): schemas.Environment.rules,
                 ("Job", "volume"): schemas.VolumeMap.rules + schemas.JobSchema.RULES["volume"]}
    for (component, field), rules in declared.items():
        prop = components[component]["properties"][field]
        assert set(prop["x-rules"]) == set(rules), (component, field)
        for rule in rules:
            assert rule in prop["description"], (component, field, rule)
    assert "needs stdin" in components["Job"]["properties"]["tty"]["description"]
    assert "needs ports" in components["Job"]["properties"]["serviceType"]["description"]


def test_query_flags_are_documented_as_booleans(document):
    for path, method, flag in (("/api/job", "post", "dryRun"), ("/api/v1/jobs", "delete", "deletePvcs")):
        parameter = _parameters(document, path, method)[flag]
        assert parameter["schema"] == {"type": "boolean", "default": False}
        assert "true or false" in parameter["description"]


def test_every_operation_lists_its_statuses_with_the_error_envelope(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            answers = operation["responses"]
            assert "default" not in answers, (method, path)
            assert "200" in answers and "500" in answers, (method, path)
            for status, answer in answers.items():
                assert answer["headers"]["X-Request-ID"] == {"$ref": "#/components/headers/X-Request-ID"}
                if status != "200":
                    envelope = "BatchError" if path == "/api/v1/jobs/batch" else "Error"  # Error, plus `data`
                    assert answer["content"] == {"application/json": {"schema": {
                        "$ref": f"#/components/schemas/{envelope}"}}}
                if status == "503":
                    assert answer["headers"]["Retry-After"] == {"$ref": "#/components/headers/Retry-After"}
    submit = document["paths"]["/api/job"]["post"]["responses"]
    assert set(submit) == {"200", "400", "401", "403", "404", "409", "413", "422", "500", "502", "503"}


def test_operations_have_unique_ids_and_tags_for_generated_clients(document):
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids)) and all(ids), ids
    assert all(op["tags"] for item in document["paths"].values() for op in item.values())
    assert document["paths"]["/api/job"]["post"]["operationId"] == "submitJob"


def test_patterns_use_only_what_python_and_ecma_262_read_alike(document):
    """No \\d, \\w, \\s shorthands (Unicode in Python, ASCII in ECMA-262) except the "any character" [\\s\\S],
    no Python-only syntax, anchored at both ends (a pattern in JSON Schema matches anywhere)."""
    patterns = [(path, node["pattern"]) for path, node in _walk(document) if isinstance(node.get("pattern"), str)]
    assert len(patterns) > 15
    for path, pattern in patterns:
        bare = pattern.replace("[\\s\\S]", "")
        assert not re.search(r"\\[dDwWsSAZ]|\(\?P|\(\?[aiLmsux]", bare), (path, pattern)
        if pattern != USER_HEADER["schema"]["pattern"]:  # "has a character that is not blank": unanchored
            assert pattern.startswith("^") and pattern.endswith("$"), (path, pattern)


@pytest.mark.skipif(shutil.which("node") is None, reason="no node here to run ECMA-262's own regular expressions")
def test_patterns_match_the_same_strings_in_ecma_262(document):
    """Each pattern of the document, run by node (ECMA-262, with the u flag JSON Schema validators use) and by
    Python on the same strings: samples drawn from the pattern itself, and a few that break it."""
    patterns = sorted({node["pattern"] for _, node in _walk(document) if isinstance(node.get("pattern"), str)})
    samples = {pattern: _draw(pattern) + ["", "a\n", "/", "SECRET:", " 1", "1e3k", "/a/../b", "..", "a" * 300]
               for pattern in patterns}
    script = ("const data = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
              "const out = {}; for (const [p, xs] of Object.entries(data)) {"
              "const re = new RegExp(p, 'u'); out[p] = xs.map(x => re.test(x)); }"
              "process.stdout.write(JSON.stringify(out));")
    result = subprocess.run(["node", "-e", script], input=json.dumps(samples), capture_output=True, text=True,
                            timeout=60, check=True)
    ecma = json.loads(result.stdout)
    for pattern, texts in samples.items():
        # Anchored patterns are applied with fullmatch, as the service does (Python's "$" alone would also
        # match before a trailing newline, which ECMA-262's does not).
        apply = re.compile(pattern).fullmatch if pattern.startswith("^") else re.compile(pattern).search
        python = [apply(text) is not None for text in texts]
        assert python == ecma[pattern], (pattern, [(t, p, e) for t, p, e in zip(texts, python, ecma[pattern]) if p != e][:5])


def _draw(pattern: str) -> list[str]:
    """Forty strings: most drawn from ``pattern``, some arbitrary (seeded, so the same every run)."""
    drawn: list[str] = []

    @settings(max_examples=40, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(st.one_of(st.from_regex(pattern), st.text(max_size=12)))
    def collect(text: str) -> None:
        drawn.append(text)

    collect()
    return drawn
