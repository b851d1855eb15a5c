"""The built front end: hashed assets cached for good, every page path answered with index.html."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from litestar import Response

from drift_runtime.web import NotFound

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        # React Flow and CodeMirror position and theme elements with inline style attributes.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
"""Everything comes from the Studio itself: no CDN, no inline script, no other origin to talk to."""

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}

_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".json": "application/json"}


class StaticSite:
    """Files of the Vite build under `root`; `index.html` stands for every page of the app."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    @property
    def built(self) -> bool:
        """True when the front end has been built into the package."""
        return (self.root / "index.html").is_file()

    def serve(self, path: str) -> Response[bytes]:
        relative = path.lstrip("/")
        if relative.startswith("assets/") or relative in {"favicon.svg"}:
            file = (self.root / relative).resolve()
            if not file.is_relative_to(self.root) or not file.is_file():
                raise NotFound("no such asset")
            media_type = _TYPES.get(file.suffix) or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            # Vite names assets by content hash: a changed file is a new URL.
            return Response(
                file.read_bytes(),
                media_type=media_type,
                headers={"Cache-Control": "public, max-age=31536000, immutable"},
            )
        if relative.startswith(("api/", "health/")):
            raise NotFound("no such route")
        index = self.root / "index.html"
        if not index.is_file():
            raise NotFound("the Studio front end is not built (see services/studio/README.md)")
        return Response(index.read_bytes(), media_type="text/html", headers={"Cache-Control": "no-store"})
