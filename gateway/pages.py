"""The web pages the gateway serves beside the API: plain HTML, CSS and JavaScript in
``gateway/static/<page>/``, with no build step. ``GET /<page>`` answers the folder's
``index.html`` and ``GET /<page>/<file>`` its other files, each with its page's
Content-Security-Policy. The pages call the API from the same origin, as any client does.

- ``/console``: the management console (a user's channels, images, matches; secret key).
- ``/scan``: the WebAR page (camera frames to FindImage, the found target outlined live).
- ``/docs``: Swagger UI over ``/openapi.json``, its files from the ``swagger-ui-bundle``
  package, so that the page needs nothing from the internet.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler
from swagger_ui_bundle import swagger_ui_path

STATIC = Path(__file__).parent / "static"
SWAGGER_UI = "/docs/swagger-ui"  # where docs/index.html loads Swagger UI's files from
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
# Each page's Content-Security-Policy. Pages run their own files only and talk to this
# origin only: a script slipped into one (through a catalog's metadata, say) could neither
# run nor send a key away, and no other site may frame them. The console shows thumbnails
# and photos as blob: URLs; Swagger UI sets styles inline and draws icons from data: URLs.
_OWN = ("default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'")
PAGES: dict[str, str] = {
    "console": f"{_OWN}; img-src 'self' blob:",
    "scan": _OWN,
    "docs": f"{_OWN}; style-src 'self' 'unsafe-inline'; img-src 'self' data:",
}
HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           # revalidated each time (by ETag, so an unchanged file costs a 304)
           "Cache-Control": "no-cache"}


def add_pages(app: web.Application) -> None:
    """Route ``GET /<page>`` and ``GET /<page>/<file>`` of every page to its files."""
    app.router.add_static(SWAGGER_UI, Path(str(swagger_ui_path)))
    for page, policy in PAGES.items():
        files = {p.name: p for p in (STATIC / page).iterdir() if p.suffix in TYPES}
        headers = {**HEADERS, "Content-Security-Policy": policy}
        app.router.add_get(f"/{page}", _sender(files, headers, "index.html"))
        app.router.add_get(f"/{page}/{{file}}", _sender(files, headers, None))


def _sender(files: dict[str, Path], headers: dict[str, str], name: str | None) -> Handler:
    """A handler answering file ``name``, or the one the route's ``{file}`` names (404 when
    it is not one of ``files``)."""
    async def send(request: web.Request) -> web.StreamResponse:
        path = files.get(name or request.match_info["file"])
        if path is None:
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={**headers, "Content-Type": TYPES[path.suffix]})

    return send
