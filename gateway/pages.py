"""The web pages the gateway serves beside the API: the management console at ``/console``.

A page is a folder of static files in ``gateway/static/`` that runs as it is (no build step):
``GET /<page>`` answers its ``index.html`` and ``GET /<page>/<file>`` its other files. The
pages call the API from the same origin with fetch(), as any client does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

STATIC = Path(__file__).parent / "static"
PAGES = ("console",)
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
# A page runs its own files only and talks to this origin only: a script injected into it
# through a catalog's identifiers or metadata could neither run nor send the secret key
# away. blob: for the thumbnails and the photos it shows; frames of it are refused.
POLICY = ("default-src 'self'; img-src 'self' blob:; object-src 'none'; base-uri 'none'; "
          "form-action 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": POLICY, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer",
           # revalidated each time (by ETag, so unchanged files cost a 304)
           "Cache-Control": "no-cache"}


def add_pages(app: web.Application) -> None:
    """Route ``GET /<page>`` and ``GET /<page>/<file>`` of every page to its files."""
    for page in PAGES:
        files = {p.name: p for p in (STATIC / page).iterdir() if p.suffix in TYPES}
        app.router.add_get(f"/{page}", _sender(files, "index.html"))
        app.router.add_get(f"/{page}/{{file}}", _sender(files, None))


def _sender(files: dict[str, Path], name: str | None
            ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A handler answering file ``name``, or the one the route's ``{file}`` names (404 when
    it is not one of ``files``)."""
    async def send(request: web.Request) -> web.StreamResponse:
        path = files.get(name or request.match_info["file"])
        if path is None:
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={**HEADERS, "Content-Type": TYPES[path.suffix]})

    return send


def describe(not_found: dict[str, Any]) -> dict[str, Any]:
    """The pages' paths for the OpenAPI description; ``not_found`` is the API's 404 answer."""
    def answer(summary: str, types: list[str]) -> dict[str, Any]:
        return {"description": summary,
                "content": {t.split(";")[0]: {"schema": {"type": "string"}} for t in types}}

    paths: dict[str, Any] = {}
    for page in PAGES:
        paths[f"/{page}"] = {"get": {
            "operationId": page, "summary": f"The {page} page (HTML)",
            "responses": {"200": answer("The page.", [TYPES[".html"]])}}}
        paths[f"/{page}/{{file}}"] = {"get": {
            "operationId": f"{page}_file", "summary": f"A script, style or icon of the {page}",
            "parameters": [{"name": "file", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "responses": {"200": answer("The file.", list(TYPES.values())),
                          "404": not_found}}}
    return paths
