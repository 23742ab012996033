"""The shape of ``GET /api/v1/whoami``: who the service thinks is calling, in which auth mode."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from ..config import AUTH_MODES


class WhoAmISchema(Schema):
    user = fields.String(required=True, metadata={
        "description": "the user every call to the cluster is made as (token, impersonate), or RA-USER (header)"})
    groups = fields.List(fields.String(), required=True, metadata={
        "description": "the groups the cluster sees (token, impersonate); empty in header mode"})
    authMode = fields.String(required=True, validate=validate.OneOf(AUTH_MODES))
