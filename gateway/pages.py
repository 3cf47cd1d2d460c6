"""The web pages the gateway serves beside the API: plain HTML, CSS and JavaScript in
``gateway/static/<page>/``, with no build step. ``GET /<page>`` answers the folder's
``index.html`` and ``GET /<page>/<file>`` its other files.

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
PAGES = ("scan", "docs")
SWAGGER_UI = "/docs/swagger-ui"  # where docs/index.html loads Swagger UI's files from


def add_pages(app: web.Application) -> None:
    """Register every page's routes on ``app``."""
    app.router.add_static(SWAGGER_UI, Path(str(swagger_ui_path)))
    for name in PAGES:
        folder = STATIC / name
        app.router.add_get(f"/{name}", _index(folder / "index.html"))
        app.router.add_static(f"/{name}", folder)


def _index(path: Path) -> Handler:
    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(path)

    return index
