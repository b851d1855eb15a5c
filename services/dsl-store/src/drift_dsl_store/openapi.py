"""OpenAPI schema generation for drift_schema's Structs (shared with the gateway: `drift_runtime.openapi`)."""

from __future__ import annotations

from drift_runtime.openapi import DriftStructSchemaPlugin, document_request_bodies, json_request

__all__ = ["DriftStructSchemaPlugin", "document_request_bodies", "json_request"]
