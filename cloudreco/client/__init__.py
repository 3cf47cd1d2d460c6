"""A Python client of the cloudreco API.

``AsyncClient`` for asyncio code, ``Client`` for blocking code: one method per endpoint,
typed answers (``cloudreco.client.models``), result codes raised as ``ApiError`` subclasses,
20015 retried with backoff::

    from cloudreco.client import Client

    with Client() as client:  # CLOUDRECO_URL, CLOUDRECO_USERNAME, CLOUDRECO_SECRETKEY
        found = client.find_image("photo.jpg", channel="posters")
        if found.match:
            print(found.match.identifier, found.match.metadata)
"""

from cloudreco.client.async_client import AsyncClient
from cloudreco.client.config import Connection
from cloudreco.client.errors import (
    ApiError,
    AuthenticationError,
    BusyError,
    ConflictError,
    ImageRejectedError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
)
from cloudreco.client.models import (
    AddedImage,
    Channel,
    DailyCount,
    FindResult,
    Image,
    ImagesPage,
    Match,
    Statistics,
)
from cloudreco.client.sync_client import Client
from shared.codes import ResultCode

__all__ = [
    "AddedImage",
    "ApiError",
    "AsyncClient",
    "AuthenticationError",
    "BusyError",
    "Channel",
    "Client",
    "ConflictError",
    "Connection",
    "DailyCount",
    "FindResult",
    "Image",
    "ImageRejectedError",
    "ImagesPage",
    "InvalidRequestError",
    "Match",
    "NotFoundError",
    "PermissionDeniedError",
    "ProtocolError",
    "ResultCode",
    "Statistics",
]
