"""The Studio's static site: assets from the package only, the app's index for page paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from drift_runtime.web import NotFound
from drift_studio.config import STATIC_DIR
from drift_studio.static import CONTENT_SECURITY_POLICY, StaticSite


def _site(tmp_path: Path) -> StaticSite:
    root = tmp_path / "static"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<div id=root></div>")
    (root / "assets" / "app-1.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("no")
    return StaticSite(root)


def test_a_path_outside_the_build_is_never_served(tmp_path: Path) -> None:
    """Dot segments cannot climb out of the static folder."""
    site = _site(tmp_path)
    for path in ["/assets/../../secret.txt", "assets/../../secret.txt", "/assets/%2e%2e/secret.txt"]:
        with pytest.raises(NotFound):
            site.serve(path)


def test_page_paths_answer_the_index_and_api_paths_do_not(tmp_path: Path) -> None:
    """`/runs/x` is the app; an unknown `/api/...` is a 404, never the index."""
    site = _site(tmp_path)
    assert site.serve("/runs/x").content == b"<div id=root></div>"
    assert site.serve("/assets/app-1.js").media_type == "text/javascript"
    with pytest.raises(NotFound):
        site.serve("/api/nothing")


def test_the_built_front_end_ships_in_the_package() -> None:
    """The quick start needs no Node: index.html and its hashed assets are in the package."""
    index = (STATIC_DIR / "index.html").read_text()
    assert "/assets/" in index
    for name in (part.split('"')[0] for part in index.split('="/assets/')[1:]):
        assert (STATIC_DIR / "assets" / name).is_file(), name
    assert "https://" not in index


def test_the_policy_names_no_other_origin() -> None:
    """The CSP allows the Studio's own origin only, and no inline script."""
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "unsafe-eval" not in CONTENT_SECURITY_POLICY
    assert "http" not in CONTENT_SECURITY_POLICY
