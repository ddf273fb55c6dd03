"""The pages and their assets as the app serves them: headers, caching, and what they load."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rates.api.app import create_app
from rates.api.web import CONTENT_SECURITY_POLICY, WEB_DIR, WebFiles
from rates.settings import Settings

PAGES = ["/", "/console/batches"]


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        yield client


def referenced_assets(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="(/static/[^"]+)"', html)


@pytest.mark.parametrize("path", PAGES)
def test_pages_are_html_with_a_self_only_policy_and_revalidated(
    client: TestClient, path: str
) -> None:
    """Each page is HTML, allows nothing but its own origin, and is revalidated by ETag."""
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    policy = response.headers["content-security-policy"]
    assert policy == CONTENT_SECURITY_POLICY
    sources = re.findall(r"(?:^|;)\s*[\w-]+\s+([^;]+)", policy)
    assert set(" ".join(sources).split()) == {"'self'", "'none'"}
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-cache"
    again = client.get(path, headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


@pytest.mark.parametrize("path", PAGES)
def test_pages_load_only_assets_of_this_origin_that_exist(client: TestClient, path: str) -> None:
    """Every script and stylesheet a page names is a versioned /static URL answering 200,
    cacheable for a year; no page names another origin or carries inline script or style."""
    html = client.get(path).text
    assert not re.search(r"(?:src|href)=\"(?:[a-z]+:)?//", html), "another origin"
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler"
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline script"
    assets = referenced_assets(html)
    assert assets
    version = WebFiles.read().version
    for url in assets:
        assert url.startswith(f"/static/{version}/")
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"


def test_an_asset_under_an_old_version_is_served_but_not_kept(client: TestClient) -> None:
    """A page cached across a deploy still gets the asset, only to be revalidated."""
    response = client.get("/static/0123456789abcdef/site.css")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/css; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"


def test_unknown_assets_and_paths_outside_the_folder_are_404(client: TestClient) -> None:
    """Only files read at start-up are served: no lookups on disk, so no path traversal."""
    version = WebFiles.read().version
    for url in [
        f"/static/{version}/missing.js",
        f"/static/{version}/../lanes.html",
        f"/static/{version}/%2e%2e/%2e%2e/settings.py",
        f"/static/{version}/vendor/uplot/LICENSE",
    ]:
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.json()["error"]["code"] == "not_found"


def test_the_charting_library_ships_with_its_license_and_version(client: TestClient) -> None:
    """uPlot is served from the package itself, its MIT license and pinned version beside it."""
    vendor = WEB_DIR / "static" / "vendor" / "uplot"
    assert "MIT License" in (vendor / "LICENSE").read_text()
    assert re.search(r"^version: \d+\.\d+\.\d+$", (vendor / "VERSION").read_text(), re.M)
    version = WebFiles.read().version
    script = client.get(f"/static/{version}/vendor/uplot/uPlot.iife.min.js")
    assert script.status_code == 200
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert script.content == (vendor / "uPlot.iife.min.js").read_bytes()


def test_the_version_changes_with_any_asset(tmp_path: Path) -> None:
    """Editing one asset gives every asset a new URL, so no browser keeps a stale copy."""
    for name in ("lanes.html", "console.html"):
        (tmp_path / name).write_text('<link href="{{static}}/a.css">')
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "a.css").write_text("a{}")
    before = WebFiles.read(tmp_path)
    (tmp_path / "static" / "a.css").write_text("a{color:red}")
    after = WebFiles.read(tmp_path)
    assert before.version != after.version
    assert after.pages["/"].body == f'<link href="/static/{after.version}/a.css">'.encode()
