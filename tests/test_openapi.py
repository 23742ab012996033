"""The OpenAPI document: valid, complete (derived from the app's own routes), served with a CDN-free docs page,
and true of the API (property-based, with schemathesis, against the fake API server)."""
from __future__ import annotations

import re
import tempfile
from urllib.parse import urljoin

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from runai_submit import schemas
from runai_submit.app import create_app
from tests.conftest import SEED_JOB, make_app

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


# --- property-based: the API against its own document ------------------------------------------------


def _served_document() -> dict:
    """The document exactly as ``GET /api/openapi.json`` serves it (the route needs no cluster)."""
    with tempfile.TemporaryDirectory() as folder:
        app = create_app({"backend": "offline", "offline_dir": folder})
        response = app.test_client().get("/api/openapi.json")
    assert response.status_code == 200
    return response.json


# Loaded at import time, as schemathesis' pytest integration needs; the lazy ``from_fixture`` loader does
# not work with pytest 9 (it sets ``node._nodeid``). The requests go to ``fake_backed_app`` (below).
schema = schemathesis.openapi.from_dict(_served_document())


@pytest.fixture(scope="module")
def fake_backed_app(fake_api_session, tmp_path_factory):
    """The app backed by the session's fake API server, with a few jobs to list, get and delete."""
    fake_api_session.reset()
    app = make_app(fake_api_session, tmp_path_factory.mktemp("schemathesis"))
    client = app.test_client()
    for name in ("alpha", "beta"):
        job = {**SEED_JOB, "name": name, "ports": [80], "serviceType": "clusterip"}
        response = client.post("/api/job", json={"job": job}, headers={"RA-USER": "john"})
        assert response.status_code == 200, response.json
    yield app
    fake_api_session.reset()


def flatmap_body(context, body):
    """Also send each generated job as a few of its own fields in an existing project with a valid image, so
    that generated jobs get past validation and reach the API server."""
    if isinstance(body, dict) and isinstance(body.get("job"), dict):
        fields = sorted(set(body["job"]) - {"name", "jobNamePrefix", "project", "image"})
        base = {"project": "team-a", "image": "busybox:1.36"}
        steered = st.lists(st.sampled_from(fields), max_size=4, unique=True).map(
            lambda keep: {"job": {**{key: body["job"][key] for key in keep}, **base}}) if fields else st.just(
            {"job": base})
        return st.one_of(steered, st.just(body))
    if isinstance(body, dict) and isinstance(body.get("jobs"), list) and body["jobs"]:
        # A batch: also send it with every job steered the same way (so that batches get created).
        steered_jobs = [flatmap_body(context, {"job": job}) if isinstance(job, dict) else st.just({"job": job})
                        for job in body["jobs"]]
        return st.one_of(st.tuples(*steered_jobs).map(lambda jobs: {"jobs": [job["job"] for job in jobs]}),
                         st.just(body))
    return st.just(body)


def flatmap_path_parameters(context, parameters):
    """Sometimes ask for the jobs and the project that exist."""
    if not parameters:
        return st.just(parameters)
    if "name" in parameters:
        return st.sampled_from([{**parameters, "project": "team-a", "name": "alpha"}, parameters])
    if "project" in parameters:
        return st.sampled_from([{**parameters, "project": "team-a"}, parameters])
    return st.just(parameters)


@schema.hooks.apply(flatmap_body)
@schema.hooks.apply(flatmap_path_parameters)
@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_document(case, fake_backed_app):
    """No 5xx, every answer matches the document (bodies of 2xx and of the error envelope), and a job read by
    name is the job of that name."""
    response = case.call_and_validate(app=fake_backed_app, checks=[not_a_server_error, response_schema_conformance])
    if case.path == "/api/v1/job/{project}/{name}" and case.method.upper() == "GET" and response.status_code == 200:
        job = response.json()
        assert (job["project"], job["name"]) == (case.path_parameters["project"], case.path_parameters["name"])
