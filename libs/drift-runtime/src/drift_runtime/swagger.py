"""Swagger UI served from the `swagger-ui-py` package, so the OpenAPI pages work offline.

Litestar's Swagger plugin loads its script, style sheet and icon from a CDN by default: on a
machine without internet the page is blank. `web.openapi_config` points it at `/schema/assets/...`
and `swagger_assets` serves those files from the installed package (public, like `/schema`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from litestar.router import Router
from litestar.static_files import create_static_files_router

ASSETS_PATH = "/schema/assets"


def _static_dir() -> Path:
    # Located without importing the package: its __init__ loads integrations Drift does not use.
    # Swagger UI 5 (this package's), because Litestar documents OpenAPI 3.1, which version 4 cannot show.
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed (drift-runtime[web] depends on it)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def swagger_assets() -> Router:
    """The route serving Swagger UI's files from the installed `swagger-ui-py` package."""
    return create_static_files_router(
        path=ASSETS_PATH,
        directories=[_static_dir()],
        include_in_schema=False,
        send_as_attachment=False,
    )


__all__ = ["ASSETS_PATH", "swagger_assets"]
