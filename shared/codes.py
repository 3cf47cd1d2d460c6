"""Result codes of the API: the seed's, plus the ones this service adds for its gaps."""

from __future__ import annotations

from enum import IntEnum


class ResultCode(IntEnum):
    """Every ``returncode`` the API can answer. ``message`` is sent beside it."""

    SUCCESS = 0
    BAD_SECRET = 20001
    CHANNEL_NOT_FOUND = 20003
    NOT_YOUR_CHANNEL = 20004
    MULTIPART_NEEDED = 20005
    FILE_TOO_LARGE = 20006
    BAD_IMAGE_FORMAT = 20007
    BAD_IDENTIFIER = 20010
    TOO_MANY_IMAGES = 20012
    FEATURES_INSUFFICIENT = 20013
    IDENTIFIER_NOT_FOUND = 20014
    SYSTEM_BUSY = 20015
    IDENTIFIER_TAKEN = 20016
    # Added by cloudreco: the seed has no code for these cases.
    FIELD_MISSING = 20017
    BAD_METADATA = 20018
    BAD_DATE = 20019
    BAD_FIELD = 20020
    NOT_FOUND = 20021
    RATE_LIMITED = 20022
    AUTH_LIMITED = 20023
    NO_ORIGINAL = 20024

    @property
    def message(self) -> str:
        return _MESSAGES[self]


_MESSAGES: dict[ResultCode, str] = {
    ResultCode.SUCCESS: "success",
    ResultCode.BAD_SECRET: "user secret key not correct",
    ResultCode.CHANNEL_NOT_FOUND: "channel not exists",
    ResultCode.NOT_YOUR_CHANNEL: "not your channel",
    ResultCode.MULTIPART_NEEDED: "multipart stream request needed",
    ResultCode.FILE_TOO_LARGE: "file size limit exceeded",
    ResultCode.BAD_IMAGE_FORMAT: "file format not recognized",
    ResultCode.BAD_IDENTIFIER: "image id not valid",
    ResultCode.TOO_MANY_IMAGES: "too many images",
    ResultCode.FEATURES_INSUFFICIENT: "image feature insufficient",
    ResultCode.IDENTIFIER_NOT_FOUND: "image identifier not exists",
    ResultCode.SYSTEM_BUSY: "system busy",
    ResultCode.IDENTIFIER_TAKEN: "image name taken",
    ResultCode.FIELD_MISSING: "required field missing",
    ResultCode.BAD_METADATA: "metadata not a JSON string of at most 64 KiB",
    ResultCode.BAD_DATE: "date not valid (yyyy, yyyyMM or yyyyMMdd)",
    ResultCode.BAD_FIELD: "field value not valid",
    ResultCode.NOT_FOUND: "no such endpoint (use POST /<Name>)",
    ResultCode.RATE_LIMITED: "too many requests, slow down",
    ResultCode.AUTH_LIMITED: "too many failed authentications, try again in a minute",
    ResultCode.NO_ORIGINAL: "no original kept for this image",
}
