"""Hostile field values: SQL metacharacters, NUL, look-alikes, path separators and values at
and past every limit answer a documented code, and whatever is stored reads back exactly."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import string
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import asyncpg
import pytest
from arq.connections import ArqRedis
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudreco import admin
from gateway.forms import MAX_FIELD_BYTES
from shared.codes import ResultCode
from shared.settings import Settings
from tests.api import Api, User, own_gateway
from tests.conftest import Shards
from tests.images import photo_of, target

TARGETS = ["pub.building.0", "pub.home.0", "pub.fruits.0", "pub.board.0", "pub.baboon.0",
           "pub.butterfly.0", "pub.cards.0", "pub.notes.0"]
SEED_IDENTIFIER = set(string.ascii_letters + string.digits + "@_.")  # the seed's pattern
# Cyrillic and Greek letters, fullwidth digits, a Roman numeral and a click that pass for Latin
# ones; a combining accent, zero-width, direction marks and a byte order mark.
LOOKALIKES = ("\u0430\u0435\u043e\u0440\u0441\u0445\u0410\u0412\u0415\u041a\u041c\u041d"
              "\u041e\u0420\u0421\u0422\u0425\u03bf\uff10\uff11\u217c\u01c0"
              "\u0301\u200b\u200e\u200f\u202e\ufeff")
HOSTILE = "'\";-%_\\/.\x00 \n" + LOOKALIKES


def _json_of_size(size: int, text: str = "") -> str:
    """A JSON object of exactly ``size`` UTF-8 bytes holding ``text``."""
    head = json.dumps({"text": text, "pad": ""}, ensure_ascii=False)
    pad = size - len(head.encode())
    assert pad >= 0
    return head[:-2] + "x" * pad + '"}'


UNICODE = ("Cyrillic \u0430, Latin a; e\u0301 and \u00e9; \u202eRTL\u202c, \u200bzero width, "
           "\U0001f642")
STORED = [  # (identifier, metadata): every identifier is a distinct one
    ("a_c", json.dumps({"sql": "'; DROP TABLE images; --", "like": "100% _x_ \\ \\\\"})),
    ("abc", "\"it's\""),  # what a_c would match under LIKE
    ("Abc", None),  # case: another identifier
    ("poster.0", json.dumps({"win": "..\\..\\boot.ini", "unix": "../../etc/passwd"})),
    ("poster.O", '"\\u0000 is an escape, not a NUL"'),  # letter O, not zero
    ("...", json.dumps(UNICODE, ensure_ascii=False)),
    ("@" + "x" * 49, _json_of_size(MAX_FIELD_BYTES, UNICODE)),  # both at their limits
    ("big.number", '{"n": ' + "1" * 5000 + "}"),  # JSON has no bound on a number's length
]


async def test_identifiers_and_metadata_read_back_exactly(api: Api) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    for (identifier, metadata), name in zip(STORED, TARGETS, strict=True):
        added = await api.add(alice, "posters", identifier, target(name), metadata)
        assert added["returncode"] == ResultCode.SUCCESS, identifier
    listed = await api.post("GetImages", {**alice.credentials, "channel": "posters"})
    # ordered by identifier: byte order, which for the seed's ASCII is code point order
    assert [(i["identifier"], i.get("metadata")) for i in listed["images"]] == sorted(STORED)
    for identifier, metadata in STORED:
        got = await api.post("GetImage", {"channel": "posters", "identifier": identifier})
        assert (got["identifier"], got.get("metadata")) == (identifier, metadata)
    big_identifier, big_metadata = STORED[6]
    found = await api.find(alice, photo_of(TARGETS[6])[0], "posters")
    assert (found["identifier"], found["metadata"]) == (big_identifier, big_metadata)
    # no pattern matching anywhere: a_c is one identifier, not a pattern
    for missing in ("a%c", "a_", "%", "ABC", "\u0430bc", "abc ", "poster.o"):
        got = await api.post("GetImage", {"channel": "posters", "identifier": missing})
        assert got["returncode"] == ResultCode.IDENTIFIER_NOT_FOUND, missing
    removed = await api.post("RemoveImage", {**alice.credentials, "channel": "posters",
                                             "identifier": "a_c"})
    assert removed["returncode"] == ResultCode.SUCCESS
    left = await api.post("GetImages", {**alice.credentials, "channel": "posters"})
    assert [i["identifier"] for i in left["images"]] == sorted(i for i, _ in STORED[1:])


@pytest.mark.parametrize(("metadata", "code"), [
    (_json_of_size(MAX_FIELD_BYTES + 1), ResultCode.BAD_METADATA),  # JSON, one byte over
    ("NaN", ResultCode.BAD_METADATA),  # Python's json reads these; JSON has no such values
    ('{"x": Infinity}', ResultCode.BAD_METADATA),
    ("[-Infinity]", ResultCode.BAD_METADATA),
    ('{"a": 1}; DROP TABLE images; --', ResultCode.BAD_METADATA),
    ("\ufeff{}", ResultCode.BAD_METADATA),  # a byte order mark is not JSON text
    ('{"a": "\x00"}', ResultCode.BAD_METADATA),
    ('{"a": "\\u0000"}', ResultCode.BAD_IMAGE_FORMAT),  # valid: only the image is wrong
])
async def test_metadata_that_is_not_json_is_refused_before_the_image_is_read(
        api: Api, metadata: str, code: ResultCode) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    answer = await api.add(alice, "posters", "meta", b"not an image", metadata)
    assert answer["returncode"] == code


CHANNELS = [
    "o'brien\"; DROP TABLE channels; --",
    "100%_off",
    "back\\slash\\",
    "../../etc/passwd",
    "a/b",
    "p\u043esters",  # Cyrillic o: bob owns the Latin "posters"
    "cafe\u0301",  # decomposed
    "caf\u00e9",  # precomposed: another channel
    "\u202eslennahc",
    " spaced ",
    "c" * admin.MAX_NAME,
]


async def test_channel_names_are_exact_and_look_alikes_are_other_channels(api: Api) -> None:
    alice, bob = await api.user("alice"), await api.user("bob")
    await api.channel(bob, "posters")
    for name in CHANNELS:
        await api.channel(alice, name)
    today = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
    dates = {"startdate": today, "enddate": today}
    for name in CHANNELS:
        listed = await api.post("GetImages", {**alice.credentials, "channel": name})
        assert (listed["returncode"], listed["totalcount"]) == (ResultCode.SUCCESS, 0), name
        stats = await api.post("Statistics", {**alice.credentials, **dates, "channel": name})
        assert stats["channel"] == name
    for other, code in (("posters", ResultCode.NOT_YOUR_CHANNEL),
                        ("%", ResultCode.CHANNEL_NOT_FOUND),
                        ("100__off", ResultCode.CHANNEL_NOT_FOUND),
                        ("o'brien", ResultCode.CHANNEL_NOT_FOUND),
                        ("CAF\u00c9", ResultCode.CHANNEL_NOT_FOUND),
                        ("c" * (admin.MAX_NAME + 1), ResultCode.CHANNEL_NOT_FOUND),
                        ("c" * MAX_FIELD_BYTES, ResultCode.CHANNEL_NOT_FOUND),
                        ("c" * (MAX_FIELD_BYTES + 1), ResultCode.BAD_FIELD)):
        answer = await api.post("GetImages", {**alice.credentials, "channel": other})
        assert answer["returncode"] == code, other
    # a match answers and counts the channel's name as it was created
    hostile = CHANNELS[0]
    assert (await api.add(alice, hostile, "garden", target(TARGETS[0])))["returncode"] == 0
    found = await api.find(alice, photo_of(TARGETS[0])[0])
    assert (found["identifier"], found["channel"]) == ("garden", hostile)
    stats = await api.post("Statistics", {**alice.credentials, **dates})
    assert stats["records"] == [{"date": today, "channel": hostile, "count": 1}]


async def test_user_names_are_exact_and_look_alikes_are_other_users(api: Api) -> None:
    alice = await api.user("alice")
    lookalike = await api.user("\u0430lice", secret="cyrillic-secret-0123456789")  # Cyrillic a
    await api.channel(lookalike, "theirs")
    for user, other in ((alice, lookalike), (lookalike, alice)):
        swapped = {"username": user.name, "secretkey": other.secret, "channel": "theirs"}
        assert (await api.post("GetImages", swapped))["returncode"] == ResultCode.BAD_SECRET
    assert (await api.post("GetImages", {**lookalike.credentials, "channel": "theirs"})
            )["returncode"] == ResultCode.SUCCESS
    assert (await api.post("GetImages", {**alice.credentials, "channel": "theirs"})
            )["returncode"] == ResultCode.NOT_YOUR_CHANNEL


@pytest.mark.parametrize("name", ["", "a\x00b", "tab\there", "line\nbreak", "\x7f",
                                  "c" * (admin.MAX_NAME + 1),
                                  # what Postgres could not index, uncompressible
                                  os.urandom(1500).hex()])
async def test_names_clients_could_not_send_are_refused_by_the_operator_commands(
        api: Api, name: str) -> None:
    alice = await api.user("alice")
    with pytest.raises(admin.AdminError):
        await admin.create_channel(api.db, alice.name, name, 10)
    with pytest.raises(admin.AdminError):
        await admin.create_user(api.db, name, "secret-0123456789")
    assert await api.db.fetchval("SELECT count(*) FROM channels") == 0
    assert await api.db.fetchval("SELECT count(*) FROM users") == 1


# --- any text in any field: a documented code, decided by the seed's rules


@pytest.fixture
async def lenient(settings: Settings, db: asyncpg.Pool, redis: ArqRedis, shards: Shards
                  ) -> AsyncIterator[Api]:
    """A gateway with no limit on failed authentications: the properties below send wrong
    names, secrets and identifiers by the hundred on purpose."""
    async with own_gateway(settings.model_copy(update={"auth_failure_limit": 0}), db,
                           redis) as api:
        yield api


Case = Callable[[str], Coroutine[Any, Any, int]]


def _check_all(values: st.SearchStrategy[str], expected: Callable[[str], int],
               case: Case) -> Callable[[], None]:
    """A hypothesis property run in a thread: ``case(value)`` runs on the test's event loop
    and answers ``expected(value)`` for every value drawn."""
    loop = asyncio.get_running_loop()

    @settings(max_examples=40, deadline=None, database=None)
    @given(values)
    def check(value: str) -> None:
        code = asyncio.run_coroutine_threadsafe(case(value), loop).result(30)
        assert code == expected(value), (value, code)

    return check


def _text(specials: str) -> st.SearchStrategy[str]:
    """Short text, mostly of ``specials`` and the hostile characters, sometimes of anything."""
    pool = st.sampled_from(specials + HOSTILE)
    anything = st.characters(exclude_categories=["Cs"])  # surrogates: not UTF-8, not sendable
    return st.text(st.one_of(pool, pool, anything), max_size=60)


def _sent(value: str, otherwise: int) -> int:
    """The code a required field gets before its own check."""
    if value == "":
        return ResultCode.FIELD_MISSING
    if "\x00" in value:
        return ResultCode.BAD_FIELD
    return otherwise


def _seed_identifier(value: str) -> bool:
    return 3 <= len(value) <= 50 and set(value) <= SEED_IDENTIFIER


def _seed_date(value: str, years: range) -> bool:
    """Whether ``value`` is yyyy, yyyyMM or yyyyMMdd of a real date in one of ``years``."""
    if not (value.isascii() and value.isdigit() and len(value) in (4, 6, 8)):
        return False
    try:
        day = dt.date(int(value[:4]), int(value[4:6] or 1), int(value[6:8] or 1))
    except ValueError:
        return False
    return day.year in years


async def _alice(api: Api) -> User:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    assert (await api.add(alice, "posters", "garden", target(TARGETS[0])))["returncode"] == 0
    return alice


async def _code(api: Api, endpoint: str, fields: dict[str, str],
                image: bytes | None = None) -> int:
    code: int = (await api.post(endpoint, fields, image=image))["returncode"]
    return code


async def test_any_identifier_answers_by_the_seeds_pattern(
        lenient: Api, caplog: pytest.LogCaptureFixture) -> None:
    alice = await _alice(lenient)
    own = {**alice.credentials, "channel": "posters"}

    def added(value: str) -> int:  # the image is no image: valid identifiers get that far
        ok = ResultCode.BAD_IMAGE_FORMAT if _seed_identifier(value) else ResultCode.BAD_IDENTIFIER
        return _sent(value, ok)

    def read(value: str) -> int:
        return _sent(value, ResultCode.SUCCESS if value == "garden"
                     else ResultCode.IDENTIFIER_NOT_FOUND)

    identifiers = _text(string.ascii_letters[:6] + "@_.0")
    await asyncio.to_thread(_check_all(identifiers, added, lambda v: _code(
        lenient, "AddImage", {**own, "identifier": v}, b"not an image")))
    await asyncio.to_thread(_check_all(identifiers.filter(lambda v: v != "garden"),
                                       read, lambda v: _code(
        lenient, "RemoveImage", {**own, "identifier": v})))
    await asyncio.to_thread(_check_all(identifiers, read, lambda v: _code(
        lenient, "GetImage", {"channel": "posters", "identifier": v})))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert (await lenient.post("GetImages", own))["totalcount"] == 1


async def test_any_date_answers_by_the_seeds_formats(
        lenient: Api, caplog: pytest.LogCaptureFixture) -> None:
    alice = await _alice(lenient)
    dates = _text(string.digits * 3 + "\u0662\u09e6\u0968")  # and other scripts' digits

    def start(value: str) -> int:  # the end is 2030: a start after it is refused too
        return _sent(value, ResultCode.SUCCESS if _seed_date(value, range(1, 2031))
                     else ResultCode.BAD_DATE)

    def end(value: str) -> int:  # the start is 2000
        return _sent(value, ResultCode.SUCCESS if _seed_date(value, range(2000, 10000))
                     else ResultCode.BAD_DATE)

    await asyncio.to_thread(_check_all(dates, start, lambda v: _code(
        lenient, "Statistics", {**alice.credentials, "startdate": v, "enddate": "2030"})))
    await asyncio.to_thread(_check_all(dates, end, lambda v: _code(
        lenient, "Statistics", {**alice.credentials, "channel": "posters", "startdate": "2000",
                            "enddate": v})))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_any_name_position_or_secret_answers_a_documented_code(
        lenient: Api, caplog: pytest.LogCaptureFixture) -> None:
    alice = await _alice(lenient)
    own = {**alice.credentials, "channel": "posters"}

    def position(value: str) -> int:
        plain = value.isascii() and value.isdigit() and len(value) <= 9
        return ResultCode.SUCCESS if value == "" or plain else ResultCode.BAD_FIELD

    def named(right: str, wrong: int) -> Callable[[str], int]:
        return lambda v: _sent(v, ResultCode.SUCCESS if v == right else wrong)

    for field, values, expected in (
        ("position", _text(string.digits * 4), position),
        ("channel", _text("posters"), named("posters", ResultCode.CHANNEL_NOT_FOUND)),
        ("username", _text("alice"), named("alice", ResultCode.BAD_SECRET)),
        ("secretkey", _text(alice.secret), named(alice.secret, ResultCode.BAD_SECRET)),
    ):
        await asyncio.to_thread(_check_all(values, expected, lambda v, f=field: _code(
            lenient, "GetImages", {**own, f: v})))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(("field", "code"), [
    ("username", ResultCode.BAD_SECRET), ("secretkey", ResultCode.BAD_SECRET),
    ("channel", ResultCode.CHANNEL_NOT_FOUND), ("identifier", ResultCode.IDENTIFIER_NOT_FOUND),
    ("startdate", ResultCode.BAD_DATE), ("position", ResultCode.BAD_FIELD),
])
async def test_fields_at_and_past_the_size_limit(api: Api, field: str, code: ResultCode
                                                 ) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    endpoint = {"identifier": "RemoveImage", "startdate": "Statistics"}.get(field, "GetImages")
    fields = {**alice.credentials, "channel": "posters", "identifier": "garden",
              "startdate": "2026", "enddate": "2026"}
    at_limit = "9" * MAX_FIELD_BYTES
    assert await _code(api, endpoint, {**fields, field: at_limit}) == code
    assert await _code(api, endpoint, {**fields, field: at_limit + "9"}) == ResultCode.BAD_FIELD


# fullwidth, Arabic-Indic, Bengali and Devanagari digits
@pytest.mark.parametrize("date", ["\uff12\uff10\uff12\uff16", "\u0662\u0660\u0662\u0666",
                                  "2026\u09e6\u09e7", "\uff12\uff10\uff12\uff160101",
                                  "\u0968\u0966\u0968\u096c"])
async def test_dates_in_other_scripts_digits_are_not_dates(api: Api, date: str) -> None:
    alice = await api.user("alice")
    for fields in ({"startdate": date, "enddate": "2026"}, {"startdate": "2026", "enddate": date}):
        assert await _code(api, "Statistics", {**alice.credentials, **fields}) == \
            ResultCode.BAD_DATE
