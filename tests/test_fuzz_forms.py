"""Fuzzing the gateway's form reading (gateway/forms.py) and field checks (gateway/validate.py):
a well-formed form reads back as sent, and anything else answers the documented code, over a
real socket; hostile forms sent to every endpoint of the running stack answer one of the codes
its OpenAPI description lists, never 20015 and never an ERROR line."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gzip
import http.client
import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_from_bytes

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import strategies as st

from gateway import validate
from gateway.app import answer_errors
from gateway.forms import FORM_OVERHEAD, MAX_FIELD_BYTES, MAX_PARTS, SERVER_OPTIONS, read_form
from gateway.openapi import describe
from gateway.quiet import quiet_client_faults
from gateway.replies import ApiError
from shared.codes import ResultCode
from shared.settings import Settings
from tests.api import Api
from tests.fuzz import documented_codes, fuzz, report

SHORT_CASES = 300  # a few seconds each; make fuzz runs each for CLOUDRECO_FUZZ_SECONDS
ECHO_IMAGE_BYTES = 4096  # the echo app's image limit: small, so that cases cross it cheaply
BODY_TIMEOUT = 1.0  # seconds, short: a broken chunked body waits this long for its answer
BOUNDARY = "fuzzb0undary"
CHUNK = 7000  # bytes a chunk of a chunked body
ENDPOINTS = ["AddImage", "RemoveImage", "GetImages", "GetImage", "Statistics", "FindImage",
             "GetOriginal", "GetChannels", "SetMetadata"]


@dataclass(frozen=True)
class Part:
    name: bytes
    body: bytes
    filename: bytes | None = None


@dataclass(frozen=True)
class Request:
    path: str
    parts: tuple[Part, ...]
    urlencoded: bool = False
    chunked: bool = False
    gzipped: bool = False
    framing: tuple[tuple[int, bytes], ...] = ()  # (position, bytes) cut into the body
    content_type: str | None = None  # instead of the form's own
    encoding: str | None = None  # a Content-Encoding to claim, whatever the body is
    chunk_framing: tuple[tuple[int, bytes], ...] = ()  # cut into the chunked encoding

    def raw(self) -> bytes:
        """The body as the server reads it (after any Content-Encoding)."""
        if self.urlencoded:
            raw = b"&".join(quote_from_bytes(p.name).encode() + b"=" + quote_from_bytes(p.body)
                            .encode() for p in self.parts)
        else:
            raw = b"".join(_part(p) for p in self.parts) + f"--{BOUNDARY}--\r\n".encode()
        for at, junk in self.framing:
            raw = raw[:at] + junk + raw[at:]
        return raw

    def body(self) -> bytes:
        return gzip.compress(self.raw()) if self.gzipped else self.raw()

    def chunked_body(self) -> bytes:
        body = self.body()
        framed = b"".join(b"%x\r\n%s\r\n" % (len(body[at:at + CHUNK]), body[at:at + CHUNK])
                          for at in range(0, len(body), CHUNK)) + b"0\r\n\r\n"
        for at, junk in self.chunk_framing:
            framed = framed[:at] + junk + framed[at:]
        return framed

    def headers(self) -> dict[str, str]:
        ctype = ("application/x-www-form-urlencoded" if self.urlencoded
                 else f"multipart/form-data; boundary={BOUNDARY}")
        headers = {"Content-Type": self.content_type or ctype}
        if self.gzipped or self.encoding:
            headers["Content-Encoding"] = self.encoding or "gzip"
        return headers


def _part(p: Part) -> bytes:
    disposition = b'form-data; name="' + p.name + b'"'
    if p.filename is not None:
        disposition += b'; filename="' + p.filename + b'"'
    return (f"--{BOUNDARY}\r\n".encode() + b"Content-Disposition: " + disposition
            + b"\r\n\r\n" + p.body + b"\r\n")


def send(port: int, request: Request) -> tuple[int, dict[str, Any]] | None:
    """POST ``request`` as its bytes say, on a connection of its own: the HTTP status and the
    JSON answer (empty when aiohttp's HTTP parser refused the request with its own 400). None
    when the server closed the connection before its answer could be read (it answers a
    refusal early, and closes after a body it could not read)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            if request.chunked:
                conn.putrequest("POST", request.path)
                for name, value in (request.headers() | {"Transfer-Encoding": "chunked"}).items():
                    conn.putheader(name, value)
                conn.endheaders()
                conn.send(request.chunked_body())
            else:
                conn.request("POST", request.path, body=request.body(),
                             headers=request.headers())
        try:
            resp = conn.getresponse()
            raw = resp.read()
        except (ConnectionResetError, http.client.RemoteDisconnected):
            return None
        if resp.status == 400 and resp.getheader("Content-Type", "").startswith("text/plain"):
            return resp.status, {}
        answer: dict[str, Any] = json.loads(raw)
        return resp.status, answer
    finally:
        conn.close()


# Field names as a client writes them (no quote, backslash or control character, and no
# leading "/", which aiohttp drops), among them the API's own, so that duplicates and the
# special names come up often.
_LABELS = st.text(st.characters(exclude_categories=["Cc", "Cs"], exclude_characters='"\\'),
                  max_size=40).filter(lambda t: not t.startswith("/")).map(str.encode)
_NAMES = st.sampled_from([b"username", b"secretkey", b"channel", b"identifier", b"metadata",
                          b"image", b"position", b"startdate", b"enddate", b"maxside", b"",
                          b"_charset_"]
                         ) | _LABELS
_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=60).map(str.encode)
_VALUES = st.one_of(
    _TEXT, st.binary(max_size=40),
    st.sampled_from([0, 1, ECHO_IMAGE_BYTES, MAX_FIELD_BYTES]).flatmap(
        lambda n: st.sampled_from([b"a" * n, b"a" * (n + 1), "\u00e9".encode() * (n // 2)])),
)
_PARTS = st.lists(st.builds(Part, _NAMES, _VALUES, st.none() | _LABELS),
                  max_size=MAX_PARTS + 2).map(tuple)
_PARTS_MANY = st.integers(MAX_PARTS - 1, MAX_PARTS + 1).map(
    lambda n: tuple(Part(f"f{i}".encode(), b"v") for i in range(n)))


def _well_formed(path: str) -> st.SearchStrategy[Request]:
    return st.builds(Request, st.just(path), _PARTS | _PARTS_MANY,
                     urlencoded=st.booleans() if path == "/text" else st.just(False),
                     chunked=st.booleans())


def _hostile(paths: list[str]) -> st.SearchStrategy[Request]:
    names = _NAMES | st.binary(max_size=40).map(lambda b: b.replace(b'"', b""))
    parts = st.lists(st.builds(Part, names, _VALUES, st.none() | st.binary(max_size=20)),
                     max_size=MAX_PARTS + 2).map(tuple)
    framing = st.lists(st.tuples(st.integers(0, 600), st.sampled_from(
        [b"\r\n", b"--", f"--{BOUNDARY}".encode(), b"\r\n\r\n", b"\x00", b"\xff"])
        | st.binary(min_size=1, max_size=12)), max_size=3).map(tuple)
    ctypes = st.none() | st.sampled_from([
        "multipart/form-data", "multipart/form-data; boundary=other", "multipart/mixed; "
        f"boundary={BOUNDARY}", f'multipart/form-data; boundary="{BOUNDARY}"; charset=latin-1',
        "application/x-www-form-urlencoded; charset=utf-16", "text/plain", "application/json"])
    encodings = st.none() | st.sampled_from(["gzip", "deflate", "identity", "x-unknown"])
    chunk_framing = st.lists(st.tuples(st.integers(0, 40), st.sampled_from(
        [b"zz", b"\r\n", b"-1", b"0\r\n\r\n", b"f" * 20, b";x=y"])), max_size=2).map(tuple)
    return st.builds(Request, st.sampled_from(paths), parts, urlencoded=st.booleans(),
                     chunked=st.booleans(), gzipped=st.booleans(), framing=framing,
                     content_type=ctypes, encoding=encodings, chunk_framing=chunk_framing)


def _expected(request: Request) -> ResultCode | tuple[dict[str, str], bytes | None]:
    """What read_form makes of a well-formed request: its fields (the first of each name)
    and image, or the code of the first limit it breaks."""
    takes_image = request.path == "/image"
    if request.gzipped or request.encoding:
        return ResultCode.MULTIPART_NEEDED  # bodies are read as sent: see forms.py
    limit = ECHO_IMAGE_BYTES + FORM_OVERHEAD if takes_image else FORM_OVERHEAD
    if not request.chunked and len(request.body()) > limit:
        return ResultCode.FILE_TOO_LARGE if takes_image else ResultCode.BAD_FIELD
    if request.urlencoded and len(request.raw()) > FORM_OVERHEAD:
        return ResultCode.BAD_FIELD
    if request.urlencoded and len(request.parts) > MAX_PARTS:
        return ResultCode.BAD_FIELD
    fields: dict[str, str] = {}
    image: bytes | None = None
    for i, p in enumerate(request.parts):
        name = p.name.decode()
        if name == "_charset_" and not request.urlencoded:
            return ResultCode.MULTIPART_NEEDED  # aiohttp's RFC 7578 charset part: see forms.py
        if i == MAX_PARTS:
            return ResultCode.BAD_FIELD
        if name == "image" and takes_image:
            if len(p.body) > ECHO_IMAGE_BYTES:
                return ResultCode.FILE_TOO_LARGE
            image = p.body if image is None else image
            continue
        try:
            value = p.body.decode()
        except UnicodeDecodeError:
            value = "\x00"  # refused as a NUL is
        if len(p.body) > MAX_FIELD_BYTES or "\x00" in value:
            return ResultCode.BAD_METADATA if name == "metadata" else ResultCode.BAD_FIELD
        fields.setdefault(name, value)
    return fields, image


def _echo_app() -> web.Application:
    """read_form behind the gateway's own error handling, answering what it read."""

    async def echo(request: web.Request) -> web.Response:
        form = await read_form(request, takes_image=request.path == "/image",
                               max_image_bytes=ECHO_IMAGE_BYTES, body_timeout=BODY_TIMEOUT)
        image = None if form.image is None else form.image.hex()
        return web.json_response({"returncode": 0, "fields": form.fields, "image": image})

    quiet_client_faults()
    app = web.Application(middlewares=[answer_errors], handler_args=SERVER_OPTIONS)
    app.router.add_post("/image", echo)
    app.router.add_post("/text", echo)
    return app


def _no_error_lines(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors


@pytest.mark.fuzz
async def test_forms_read_back_as_sent_or_answer_the_code_of_the_limit_they_break(
        caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    server = TestServer(_echo_app())
    await server.start_server()
    form_codes = {ResultCode.MULTIPART_NEEDED, ResultCode.FILE_TOO_LARGE,
                  ResultCode.BAD_METADATA, ResultCode.BAD_FIELD}

    def check(case: tuple[bool, Request]) -> None:
        caplog.clear()
        well_formed, request = case
        sent = send(server.port, request)
        assert sent is not None or not well_formed
        if sent is None:
            return _no_error_lines(caplog)
        status, answer = sent
        assert status == 200 or (status == 400 and request.chunk_framing)
        if well_formed:
            expected = _expected(request)
            if isinstance(expected, ResultCode):
                assert answer["returncode"] == expected, answer
            else:
                image = None if expected[1] is None else expected[1].hex()
                assert (answer["returncode"], answer["fields"], answer["image"]) == \
                    (0, expected[0], image)
        elif status == 200:
            assert answer["returncode"] == 0 or answer["returncode"] in form_codes, answer
        _no_error_lines(caplog)

    cases = st.one_of(st.tuples(st.just(True), _well_formed("/image") | _well_formed("/text")),
                      st.tuples(st.just(False), _hostile(["/image", "/text"])))
    try:
        tally = await asyncio.to_thread(fuzz, cases, check, examples=SHORT_CASES)
    finally:
        await server.close()
    report(capsys, "forms", tally)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The stack's settings without the limit on failed authentications: the fuzzer fails
    many, and would otherwise be refused (20023) past the first few of each minute; and a
    short body timeout, which broken chunked bodies wait for."""
    return settings.model_copy(update={"auth_failure_limit": 0,
                                       "body_timeout": BODY_TIMEOUT})


@pytest.mark.fuzz
async def test_hostile_forms_answer_a_code_the_endpoint_documents(
        api: Api, settings: Settings, caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str]) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    codes = documented_codes(describe(settings))
    port = api.client.port
    assert port is not None
    credentials = (Part(b"username", b"alice"), Part(b"secretkey", alice.secret.encode()),
                   Part(b"channel", b"posters"))

    def check(case: tuple[Request, bool]) -> None:
        caplog.clear()
        request, authenticated = case
        if authenticated:  # get past authentication to the checks behind it
            request = dataclasses.replace(request, parts=credentials + request.parts)
        sent = send(port, request)
        if sent is not None and sent[0] != 400:
            status, answer = sent
            assert status == 200
            assert answer["returncode"] in codes[request.path], (request.path, answer)
            assert answer["returncode"] != ResultCode.SYSTEM_BUSY
        elif sent is not None:
            assert request.chunk_framing, "aiohttp refused a request with intact framing"
        _no_error_lines(caplog)

    cases = st.tuples(_hostile([f"/{e}" for e in ENDPOINTS]), st.booleans())
    tally = await asyncio.to_thread(fuzz, cases, check, examples=SHORT_CASES)
    report(capsys, "forms at the gateway", tally)


_DIGITS = st.text(st.sampled_from("0123456789"), min_size=1, max_size=12)
_ANY = st.text(max_size=30) | st.text(st.characters(categories=["Nd", "No"]), max_size=10)


def _field_check(case: tuple[str, str, str]) -> None:
    kind, a, b = case
    try:
        if kind == "identifier":
            assert validate.identifier(a) == a and a.isascii() and 3 <= len(a) <= 50
        elif kind == "position":
            assert validate.position(a) == int(a) and a.isascii() and len(a) <= 9
        elif kind == "maxside":
            assert validate.max_side(a) == int(a) and a.isascii() and 16 <= int(a) <= 4096
        elif kind == "metadata":
            assert validate.metadata(a) == a
            json.loads(a, parse_int=str, parse_constant=_not_json)  # as JavaScript reads it
        else:
            first, last = validate.date_range(a, b)
            assert first <= last and a.isascii() and b.isascii()
    except ApiError as e:
        assert e.code == {"identifier": ResultCode.BAD_IDENTIFIER, "position":
                          ResultCode.BAD_FIELD, "maxside": ResultCode.BAD_FIELD,
                          "metadata": ResultCode.BAD_METADATA}.get(kind, ResultCode.BAD_DATE)


def _not_json(constant: str) -> None:
    raise AssertionError(f"{constant} accepted as JSON")


@pytest.mark.fuzz
def test_field_checks_answer_a_value_or_their_code(capsys: pytest.CaptureFixture[str]) -> None:
    nested = st.recursive(st.none() | st.integers() | st.text(max_size=5),
                          lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner))
    values = st.one_of(_ANY, _DIGITS, nested.map(json.dumps),
                       st.integers(1, 100_000).map(lambda n: "[" * n + "]" * n),
                       st.sampled_from(["NaN", "Infinity", "-Infinity", "1" * 5000]))
    cases = st.tuples(st.sampled_from(["identifier", "position", "maxside", "metadata", "dates"]),
                      values, values)
    report(capsys, "field checks", fuzz(cases, _field_check, examples=SHORT_CASES))
