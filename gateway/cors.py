"""Cross-origin calls of the API from web pages on other origins (CORS), by ``aiohttp_cors``.

Only pages of the origins in ``Settings.cors_origins`` get CORS headers, on the API's routes.
For a page of any other origin, a preflight (OPTIONS) answers HTTP 403 (20020), so the
browser does not send the request it asked about, and other answers carry no CORS headers,
so the browser keeps them from the page. Credentials travel as form fields, never cookies,
so credentialed requests are not allowed.
"""

from __future__ import annotations

from collections.abc import Iterable

import aiohttp_cors
from aiohttp import web

from gateway.observe import REQUEST_ID_HEADER

MAX_AGE = 600  # seconds a browser may reuse a preflight's answer (Chromium caps it at 7200)


def allow_origins(app: web.Application, origins: list[str],
                  routes: Iterable[web.AbstractRoute]) -> None:
    """Let pages of ``origins`` ("*": any) call ``routes``; nothing when there are none."""
    if not origins:
        return
    # A preflight is answered for the methods of the routes given, and refused for others.
    options = {"allow_credentials": False, "allow_headers": (REQUEST_ID_HEADER,),
               "expose_headers": (REQUEST_ID_HEADER,), "max_age": MAX_AGE}
    cors = aiohttp_cors.setup(app, defaults=dict.fromkeys(origins, options))
    for route in routes:
        cors.add(route)
