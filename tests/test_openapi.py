"""The OpenAPI description at /openapi.json: valid, complete, and true of the running stack
(schemathesis sends what it describes, and much that it forbids, and checks every answer)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np
import pytest
import requests
import schemathesis
from hypothesis import strategies as st
from openapi_spec_validator import validate
from schemathesis import Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from gateway import pages
from shared.codes import ResultCode
from shared.settings import Settings
from tests.api import Api, User
from tests.fuzz import documented_codes, fuzz, report
from tests.images import encode, flat, target

SHORT_CASES = 100  # about 15 s here; make fuzz runs it for CLOUDRECO_FUZZ_SECONDS
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The stack's settings without the limit on failed authentications: the fuzzer fails
    many, and would otherwise be refused (20023) past the first few of each minute."""
    return settings.model_copy(update={"auth_failure_limit": 0})


async def _description(api: Api) -> dict[str, Any]:
    resp = await api.client.get("/openapi.json")
    assert (resp.status, resp.content_type) == (200, "application/json")
    doc: dict[str, Any] = await resp.json()
    return doc


async def test_the_description_is_valid_openapi_and_describes_every_route(api: Api) -> None:
    doc = await _description(api)
    validate(doc)  # raises on anything the OpenAPI 3.0 specification does not allow
    schemathesis.openapi.from_dict(doc).validate()
    described = {(method.upper(), path) for path, item in doc["paths"].items() for method in item}
    served = {(r.method, r.resource.canonical) for r in api.client.app.router.routes()
              if r.method != "HEAD" and r.resource is not None}
    assert described <= served
    # the rest is the web pages (gateway/pages.py) and their files, for people, not the API
    assert {path.split("/")[1] for _, path in served - described} == set(pages.PAGES)


async def test_every_result_code_is_described(api: Api) -> None:
    doc = await _description(api)
    answered = set().union(*documented_codes(doc).values())
    # 20021 answers paths and methods that are not in the description; the intro says so
    assert answered == {int(c) for c in ResultCode} - {ResultCode.NOT_FOUND}
    for code in ResultCode:
        assert f"| {int(code)} | `{code.message}` |" in doc["info"]["description"]


def _images() -> dict[str, bytes]:
    """Uploads that reach the matchers: whole, degenerate, truncated and with a damaged
    header."""
    noise = np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8)
    jpeg, png = encode(noise), flat(32, 24)
    return {"jpeg": jpeg, "png": png, "target": target("pub.home.0"),
            "1x1": flat(1, 1), "1x2000": flat(1, 2000, ".jpg"),
            "cut jpeg": jpeg[: len(jpeg) // 2], "cut png": png[:40],
            "bad jpeg header": jpeg[:20] + b"\xff" * 8 + jpeg[28:],
            "bad png header": png[:16] + b"\x7f" * 8 + png[24:]}


def _known(alice: User) -> st.SearchStrategy[dict[str, Any]]:
    """Values to lay over a generated form (most of the time) so that it gets past
    authentication and reaches the catalog and the matchers: alice's name and secret, her
    channel or bob's, her image's identifier, an image that decodes or nearly does."""
    images: dict[str | None, bytes] = dict(_images())
    return st.fixed_dictionaries({
        "credentials": st.sampled_from([alice.credentials] * 3 + [{}]),
        "channel": st.sampled_from(["posters", "posters", "bobs", None]),
        "identifier": st.sampled_from(["poster.001", "nobody", None]),
        "image": st.sampled_from([*images, None]).map(images.get),
    })


def _lay_over(case: Case, known: dict[str, Any], fields: set[str]) -> None:
    if isinstance(case.body, dict):
        laid = {**known.pop("credentials"), **{k: v for k, v in known.items() if v is not None}}
        case.body.update({k: v for k, v in laid.items() if k in fields})


def _form_fields(doc: dict[str, Any]) -> dict[str, set[str]]:
    """The form fields of each operation, by path."""
    return {path: set(media["schema"]["properties"])
            for path, item in doc["paths"].items() for operation in item.values()
            for media in operation.get("requestBody", {}).get("content", {}).values()}


@pytest.mark.fuzz
async def test_the_running_stack_answers_as_described(
        api: Api, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    alice, bob = await api.user("alice"), await api.user("bob")
    await api.channel(alice, "posters", max_images=3)
    await api.channel(bob, "bobs")
    assert (await api.add(alice, "posters", "poster.001", target("pub.fruits.0")))["returncode"] \
        == ResultCode.SUCCESS
    base = str(api.client.make_url("")).rstrip("/")
    schema = await asyncio.to_thread(schemathesis.openapi.from_url, base + "/openapi.json")
    fields = _form_fields(await _description(api))
    cases = st.tuples(st.one_of(schema.as_strategy(GenerationMode.POSITIVE),
                                schema.as_strategy(GenerationMode.NEGATIVE)), _known(alice))
    session = requests.Session()

    def check(drawn: tuple[Case, dict[str, Any]]) -> None:
        caplog.clear()
        case, known = drawn
        _lay_over(case, dict(known), fields.get(case.path, set()))
        response = case.call_and_validate(base_url=base, session=session, checks=CHECKS,
                                          timeout=30)
        json_answer = response.headers.get("Content-Type", "").startswith("application/json")
        answer = response.json() if json_answer else {}  # /metrics, GetOriginal's images
        assert answer.get("returncode") != ResultCode.SYSTEM_BUSY, (case.path, answer)
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert not errors, errors

    try:
        tally = await asyncio.to_thread(fuzz, cases, check, examples=SHORT_CASES)
    finally:
        session.close()
    report(capsys, "schemathesis", tally)
