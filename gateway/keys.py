"""Typed keys of what the gateway app holds."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from gateway.auth import FailureLimit
from gateway.backend import Backend
from gateway.metrics import RequestMetrics
from gateway.thumbnails import Thumbnails
from shared.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", asyncpg.Pool)
BACKEND = web.AppKey("backend", Backend)
FAILURES = web.AppKey("failures", FailureLimit)
METRICS = web.AppKey("metrics", RequestMetrics)
OPENAPI = web.AppKey("openapi", bytes)  # the description, serialised once
THUMBNAILS = web.AppKey("thumbnails", Thumbnails)
