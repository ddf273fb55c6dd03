"""The pages for people: the lane explorer at ``/`` and the batch console at
``/console/batches``, plain HTML, CSS and JavaScript shipped inside the package (``rates/web``).

Files are read once at start-up. Assets are served under ``/static/<version>/``, the version
being a hash of all of them, so a browser may keep them for a year (a new release changes the
URL); pages are revalidated on every visit (ETag). Every response carries a
Content-Security-Policy that allows nothing but this origin: no inline script or style, no
CDN, no framing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request
from starlette.responses import Response

from rates.errors import RatesError

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
PAGES = {"/": "lanes.html", "/console/batches": "console.html"}
STATIC_PREFIX = "/static"
# Where a page's HTML names its assets; replaced by /static/<version> when the files are read.
STATIC_PLACEHOLDER = b"{{static}}"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'; "
    "object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
REVALIDATE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}


class AssetNotFound(RatesError):
    status_code = 404
    code = "not_found"


@dataclass(frozen=True)
class WebFile:
    body: bytes
    media_type: str
    etag: str


def _web_file(body: bytes, suffix: str) -> WebFile:
    return WebFile(body, MEDIA_TYPES[suffix], f'"{hashlib.sha256(body).hexdigest()[:32]}"')


@dataclass(frozen=True)
class WebFiles:
    """The pages (by URL path) and assets (by path under ``static/``), in memory."""

    version: str
    pages: dict[str, WebFile]
    assets: dict[str, WebFile]

    @classmethod
    def read(cls, root: Path = WEB_DIR) -> WebFiles:
        static = root / "static"
        raw = {
            path.relative_to(static).as_posix(): path.read_bytes()
            for path in sorted(static.rglob("*"))
            if path.is_file() and path.suffix in MEDIA_TYPES
        }
        digest = hashlib.sha256()
        for name, body in raw.items():
            digest.update(name.encode() + b"\0" + body + b"\0")
        version = digest.hexdigest()[:16]
        prefix = f"{STATIC_PREFIX}/{version}".encode()
        pages = {
            url: _web_file((root / name).read_bytes().replace(STATIC_PLACEHOLDER, prefix), ".html")
            for url, name in PAGES.items()
        }
        assets = {name: _web_file(body, Path(name).suffix) for name, body in raw.items()}
        return cls(version=version, pages=pages, assets=assets)


def _respond(request: Request, file: WebFile, cache_control: str) -> Response:
    headers = {**SECURITY_HEADERS, "Cache-Control": cache_control, "ETag": file.etag}
    if file.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(file.body, media_type=file.media_type, headers=headers)


def make_router(files: WebFiles) -> APIRouter:
    """Routes for the pages and their assets; kept out of the OpenAPI document."""
    router = APIRouter(include_in_schema=False)

    def page(url: str) -> None:
        async def serve_page(request: Request) -> Response:
            return _respond(request, files.pages[url], REVALIDATE)

        router.add_api_route(url, serve_page, methods=["GET"])

    for url in PAGES:
        page(url)

    @router.get(STATIC_PREFIX + "/{version}/{path:path}")
    async def serve_asset(request: Request, version: str, path: str) -> Response:
        """An asset of this release; one named under another version (a page cached across a
        deploy) still gets today's file, but only to revalidate."""
        file = files.assets.get(path)
        if file is None:
            raise AssetNotFound(f"no asset {path!r}")
        return _respond(request, file, IMMUTABLE if version == files.version else REVALIDATE)

    return router
