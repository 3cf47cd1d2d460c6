"""Checking field values; each failure raises the ApiError its result code documents."""

from __future__ import annotations

import calendar
import datetime as dt
import json
import re

from gateway.replies import ApiError
from shared.codes import ResultCode

IDENTIFIER = re.compile(r"[A-Za-z0-9@_.]{3,50}")
# ASCII digits only: \d alone also takes other scripts' digits (fullwidth, Arabic-Indic...),
# which int() reads.
_DATE = re.compile(r"(\d{4})(\d{2})?(\d{2})?", re.ASCII)


def identifier(value: str) -> str:
    if not IDENTIFIER.fullmatch(value):
        raise ApiError(ResultCode.BAD_IDENTIFIER)
    return value


def metadata(value: str | None) -> str | None:
    """A JSON text (RFC 8259), kept as the client sent it (its size was bounded while
    reading). Only its syntax is checked: numbers are not converted, so a number of any
    length is accepted, and Python's extensions (NaN, Infinity) are refused."""
    if value is None:
        return None
    try:
        json.loads(value, parse_int=len, parse_float=len, parse_constant=_not_json)
    except (ValueError, RecursionError) as e:  # RecursionError: nested thousands deep
        raise ApiError(ResultCode.BAD_METADATA) from e
    return value


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


POSITION_DIGITS = 9  # any catalog; and no huge int to parse (int() refuses over 4300 digits)
MAX_POSITION = 10**POSITION_DIGITS - 1


def position(value: str | None) -> int:
    if value is None:
        return 0
    # isdigit() also passes digits int() refuses, such as "²"
    if not (value.isascii() and value.isdigit()) or len(value) > POSITION_DIGITS:
        raise ApiError(ResultCode.BAD_FIELD)
    return int(value)


# GetOriginal's thumbnail sizes: from a list icon to a 4K screen's long side.
MIN_SIDE, MAX_SIDE = 16, 4096


def max_side(value: str | None) -> int | None:
    """GetOriginal's ``maxside``: None (the original itself) or pixels, 16 to 4096."""
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 4 \
            or not MIN_SIDE <= int(value) <= MAX_SIDE:
        raise ApiError(ResultCode.BAD_FIELD)
    return int(value)


def date_range(start: str, end: str) -> tuple[dt.date, dt.date]:
    """Inclusive days from ``yyyy``, ``yyyyMM`` or ``yyyyMMdd`` bounds (a year or month
    bound covers the whole year or month)."""
    first, _ = _period(start)
    _, last = _period(end)
    if first > last:
        raise ApiError(ResultCode.BAD_DATE)
    return first, last


def _period(value: str) -> tuple[dt.date, dt.date]:
    m = _DATE.fullmatch(value)
    if m is None or (m.group(3) and not m.group(2)):
        raise ApiError(ResultCode.BAD_DATE)
    try:
        year = int(m.group(1))
        if m.group(2) is None:
            return dt.date(year, 1, 1), dt.date(year, 12, 31)
        month = int(m.group(2))
        if m.group(3) is None:
            return dt.date(year, month, 1), dt.date(year, month,
                                                    calendar.monthrange(year, month)[1])
        day = dt.date(year, month, int(m.group(3)))
        return day, day
    except (ValueError, calendar.IllegalMonthError) as e:
        raise ApiError(ResultCode.BAD_DATE) from e
