"""Result codes as exceptions: ``ApiError(code, message)``, one subclass per family of codes."""

from __future__ import annotations

from shared.codes import ResultCode


class ApiError(Exception):
    """The service answered a ``returncode`` other than 0.

    ``code`` is a ``ResultCode`` (an ``int``) when this client knows it, else the plain
    ``int``; ``message`` is the service's own text; ``attempts`` counts the requests sent,
    retries of 20015 included (20016 after a retried AddImage: an earlier attempt, whose
    time ran out, stored the image).
    """

    def __init__(self, code: int, message: str, attempts: int = 1) -> None:
        super().__init__(f"{int(code)} {message}")
        self.code: ResultCode | int = _known(code)
        self.message = message
        self.attempts = attempts


class AuthenticationError(ApiError):
    """20001 wrong credentials (or an app key on an endpoint it may not use), 20023 too
    many failed authentications."""


class NotFoundError(ApiError):
    """20003 no such channel, 20014 no such identifier, 20021 no such endpoint, 20024 no
    original kept of the image."""


class PermissionDeniedError(ApiError):
    """20004: the channel is another user's (or outside an app key's channels)."""


class InvalidRequestError(ApiError):
    """A field the service refused: 20005, 20010, 20017, 20018, 20019, 20020."""


class ImageRejectedError(ApiError):
    """The image itself: 20006 too large, 20007 not a JPEG or PNG, 20013 too few features."""


class ConflictError(ApiError):
    """The catalog's state: 20016 the identifier is taken, 20012 the channel is full."""


class BusyError(ApiError):
    """20015 system busy (retried by the client before it is raised), 20022 rate limited."""


class ProtocolError(Exception):
    """The answer was not the API's JSON (a proxy's error page, another service)."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"HTTP {status}: not an API answer: {text[:200]!r}")
        self.status = status


_FAMILIES: dict[ResultCode, type[ApiError]] = {
    ResultCode.BAD_SECRET: AuthenticationError,
    ResultCode.AUTH_LIMITED: AuthenticationError,
    ResultCode.CHANNEL_NOT_FOUND: NotFoundError,
    ResultCode.IDENTIFIER_NOT_FOUND: NotFoundError,
    ResultCode.NOT_FOUND: NotFoundError,
    ResultCode.NO_ORIGINAL: NotFoundError,
    ResultCode.NOT_YOUR_CHANNEL: PermissionDeniedError,
    ResultCode.MULTIPART_NEEDED: InvalidRequestError,
    ResultCode.BAD_IDENTIFIER: InvalidRequestError,
    ResultCode.FIELD_MISSING: InvalidRequestError,
    ResultCode.BAD_METADATA: InvalidRequestError,
    ResultCode.BAD_DATE: InvalidRequestError,
    ResultCode.BAD_FIELD: InvalidRequestError,
    ResultCode.FILE_TOO_LARGE: ImageRejectedError,
    ResultCode.BAD_IMAGE_FORMAT: ImageRejectedError,
    ResultCode.FEATURES_INSUFFICIENT: ImageRejectedError,
    ResultCode.IDENTIFIER_TAKEN: ConflictError,
    ResultCode.TOO_MANY_IMAGES: ConflictError,
    ResultCode.SYSTEM_BUSY: BusyError,
    ResultCode.RATE_LIMITED: BusyError,
}


def _known(code: int) -> ResultCode | int:
    try:
        return ResultCode(code)
    except ValueError:
        return code


def error_for(code: int, message: str, attempts: int = 1) -> ApiError:
    """The exception of ``code``'s family (``ApiError`` itself for a code this client does
    not know, such as one a newer service added)."""
    known = _known(code)
    family = _FAMILIES.get(known, ApiError) if isinstance(known, ResultCode) else ApiError
    return family(code, message, attempts)
