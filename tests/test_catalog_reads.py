"""GetImages, GetImage and Statistics: reading the catalog and what FindImage counted."""

from __future__ import annotations

import datetime as dt

import asyncpg

from gateway import catalog
from gateway.catalog import STATISTICS_PAGE
from shared.codes import ResultCode
from tests.api import Api, User
from tests.images import photo_of, target

BUILDING, HOME = "pub.building.0", "pub.home.0"


async def _matches(db: asyncpg.Pool, channel: str, rows: list[tuple[str, dt.date, int]]
                   ) -> None:
    """Matches counted as FindImage counts them, ``count`` times each (identifier, day)."""
    channel_id = await db.fetchval("SELECT id FROM channels WHERE name = $1", channel)
    for identifier, day, count in rows:
        for _ in range(count):
            await catalog.count_match(db, channel_id, identifier, day)


async def _long_history(db: asyncpg.Pool, channel: str, identifiers: list[str],
                        days: list[dt.date], count: int = 1) -> None:
    """Every identifier matched ``count`` times on every day, written as FindImage's counting
    leaves it (per identifier and per channel), in two statements: thousands of rows."""
    channel_id = await db.fetchval("SELECT id FROM channels WHERE name = $1", channel)
    await db.execute(
        "INSERT INTO match_counts (channel_id, identifier, day, count)"
        " SELECT $1, i, d, $4 FROM unnest($2::text[]) i, unnest($3::date[]) d",
        channel_id, identifiers, days, count)
    await db.execute(
        "INSERT INTO channel_days (channel_id, day, count)"
        " SELECT $1, d, $3 FROM unnest($2::date[]) d"
        " ON CONFLICT (channel_id, day) DO UPDATE SET count = channel_days.count + $3",
        channel_id, days, count * len(identifiers))


async def test_get_images_pages_by_100_in_identifier_order(api: Api) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters", max_images=1000)
    identifiers = [f"img{n:03d}" for n in range(150)]
    await api.stored("posters", list(reversed(identifiers)))
    fields = {**alice.credentials, "channel": "posters"}
    first = await api.post("GetImages", fields, urlencoded=True)
    assert first["totalcount"] == 150
    assert [i["identifier"] for i in first["images"]] == identifiers[:100]
    assert first["images"][0]["metadata"] == '{"n": "img000"}'
    second = await api.post("GetImages", {**fields, "position": "100"})
    assert [i["identifier"] for i in second["images"]] == identifiers[100:]
    past = await api.post("GetImages", {**fields, "position": "150"})
    assert (past["totalcount"], past["images"]) == (150, [])


async def test_match_ratio_is_the_share_of_the_channels_matches(api: Api) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    await api.add(alice, "posters", "building", target(BUILDING))
    await api.add(alice, "posters", "home", target(HOME))
    fields = {**alice.credentials, "channel": "posters"}
    before = await api.post("GetImages", fields)
    assert [i["matchratio"] for i in before["images"]] == [0.0, 0.0]
    for seed in range(3):
        assert (await api.find(alice, photo_of(BUILDING, seed=seed)[0], "posters")
                )["identifier"] == "building"
    assert (await api.find(alice, photo_of(HOME)[0]))["identifier"] == "home"
    after = await api.post("GetImages", fields)
    assert {i["identifier"]: i["matchratio"] for i in after["images"]} == \
        {"building": 0.75, "home": 0.25}


async def test_get_images_refusals(api: Api) -> None:
    alice, bob = await api.user("alice"), await api.user("bob")
    await api.channel(bob, "bobs")
    base = {**alice.credentials, "channel": "bobs"}
    assert (await api.post("GetImages", base))["returncode"] == ResultCode.NOT_YOUR_CHANNEL
    assert (await api.post("GetImages", {**base, "channel": "x"}))["returncode"] == \
        ResultCode.CHANNEL_NOT_FOUND
    assert (await api.post("GetImages", {**base, "secretkey": "no"}))["returncode"] == \
        ResultCode.BAD_SECRET
    assert (await api.post("GetImages", alice.credentials))["returncode"] == \
        ResultCode.FIELD_MISSING
    await api.channel(alice, "mine")
    for position in ("-1", "x", "1e3"):
        answer = await api.post("GetImages", {**base, "channel": "mine", "position": position})
        assert answer["returncode"] == ResultCode.BAD_FIELD


async def test_get_image_needs_no_credentials_but_checks_them_when_sent(api: Api) -> None:
    alice, bob = await api.user("alice"), await api.user("bob")
    await api.channel(alice, "posters")
    added = await api.add(alice, "posters", "building", target(BUILDING), metadata="[1, 2]")
    anon = await api.post("GetImage", {"channel": "posters", "identifier": "building"},
                          urlencoded=True)
    assert (anon["identifier"], anon["metadata"], anon["level"]) == \
        ("building", "[1, 2]", added["level"])
    base = {"channel": "posters", "identifier": "building"}
    assert (await api.post("GetImage", {**base, **bob.credentials}))["returncode"] == \
        ResultCode.NOT_YOUR_CHANNEL
    assert (await api.post("GetImage", {**base, "username": "alice", "secretkey": "no"})
            )["returncode"] == ResultCode.BAD_SECRET
    assert (await api.post("GetImage", {**base, "identifier": "nope"}))["returncode"] == \
        ResultCode.IDENTIFIER_NOT_FOUND
    assert (await api.post("GetImage", {**base, "channel": "nope"}))["returncode"] == \
        ResultCode.CHANNEL_NOT_FOUND
    assert (await api.post("GetImage", {"channel": "posters"}))["returncode"] == \
        ResultCode.FIELD_MISSING


async def _two_channels(api: Api) -> User:
    alice = await api.user("alice")
    await api.channel(alice, "c1")
    await api.channel(alice, "c2")
    await _matches(api.db, "c1", [("a", dt.date(2026, 1, 31), 2), ("b", dt.date(2026, 1, 31), 3),
                                  ("a", dt.date(2026, 2, 1), 5), ("a", dt.date(2025, 12, 31), 7)])
    await _matches(api.db, "c2", [("z", dt.date(2026, 2, 1), 1)])
    return alice


async def test_statistics_per_channel_and_day(api: Api) -> None:
    alice = await _two_channels(api)
    answer = await api.post("Statistics", {**alice.credentials, "startdate": "2026",
                                           "enddate": "2026"}, urlencoded=True)
    assert answer["username"] == "alice"
    assert answer["records"] == [
        {"date": "20260131", "channel": "c1", "count": 5},
        {"date": "20260201", "channel": "c1", "count": 5},
        {"date": "20260201", "channel": "c2", "count": 1},
    ]


async def test_statistics_per_identifier_within_a_channel(api: Api) -> None:
    alice = await _two_channels(api)
    fields = {**alice.credentials, "channel": "c1", "startdate": "202512",
              "enddate": "20260131"}
    answer = await api.post("Statistics", fields)
    assert answer["channel"] == "c1"
    assert answer["records"] == [
        {"date": "20251231", "identifier": "a", "count": 7},
        {"date": "20260131", "identifier": "a", "count": 2},
        {"date": "20260131", "identifier": "b", "count": 3},
    ]
    only_a = await api.post("Statistics", {**fields, "identifier": "a", "enddate": "2026"})
    assert [(r["date"], r["count"]) for r in only_a["records"]] == \
        [("20251231", 7), ("20260131", 2), ("20260201", 5)]


async def test_find_image_matches_are_counted_today(api: Api) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "posters")
    await api.add(alice, "posters", "home", target(HOME))
    await api.find(alice, photo_of(HOME)[0], "posters")
    await api.find(alice, photo_of(HOME, seed=1)[0])
    today = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
    answer = await api.post("Statistics", {**alice.credentials, "channel": "posters",
                                           "startdate": today, "enddate": today})
    assert answer["records"] == [{"date": today, "identifier": "home", "count": 2}]


async def test_statistics_refusals(api: Api) -> None:
    alice = await _two_channels(api)
    bob = await api.user("bob")
    await api.channel(bob, "bobs")
    base = {**alice.credentials, "startdate": "2026", "enddate": "2026"}
    for start, end in (("2026013", "2026"), ("20261301", "2026"), ("20260230", "2026"),
                       ("2027", "2026"), ("year", "2026"), ("202601", "20260"),
                       ("\u0662\u0660\u0662\u0666", "2026")):  # Arabic-Indic digits
        answer = await api.post("Statistics", {**base, "startdate": start, "enddate": end})
        assert answer["returncode"] == ResultCode.BAD_DATE, (start, end)
    assert (await api.post("Statistics", {**base, "channel": "c1", "identifier": "zz"})
            )["returncode"] == ResultCode.IDENTIFIER_NOT_FOUND
    assert (await api.post("Statistics", {**base, "channel": "bobs"}))["returncode"] == \
        ResultCode.NOT_YOUR_CHANNEL
    assert (await api.post("Statistics", {**base, "channel": "none"}))["returncode"] == \
        ResultCode.CHANNEL_NOT_FOUND
    assert (await api.post("Statistics", {**base, "identifier": "a"}))["returncode"] == \
        ResultCode.FIELD_MISSING
    assert (await api.post("Statistics", {**base, "secretkey": "no"}))["returncode"] == \
        ResultCode.BAD_SECRET
    assert (await api.post("Statistics", {**base, "position": "-1"}))["returncode"] == \
        ResultCode.BAD_FIELD
    del base["enddate"]
    assert (await api.post("Statistics", base))["returncode"] == ResultCode.FIELD_MISSING


async def test_statistics_answers_a_bounded_page_and_the_rest_by_position(api: Api) -> None:
    alice = await api.user("alice")
    await api.channel(alice, "c1")
    days = [dt.date(2026, 3, 1) + dt.timedelta(days=d) for d in range(3)]
    per_day = STATISTICS_PAGE // 3 + 100
    await _long_history(api.db, "c1", [f"id{n:05d}" for n in range(per_day)], days)
    fields = {**alice.credentials, "channel": "c1", "startdate": "2026", "enddate": "2026"}
    first = await api.post("Statistics", fields)
    assert (len(first["records"]), first["truncated"]) == (STATISTICS_PAGE, True)
    rest = await api.post("Statistics", {**fields, "position": str(STATISTICS_PAGE)})
    assert (len(rest["records"]), rest["truncated"]) == (3 * per_day - STATISTICS_PAGE, False)
    assert [(r["date"], r["identifier"]) for r in first["records"] + rest["records"]] == \
        [(day.strftime("%Y%m%d"), f"id{n:05d}") for day in days for n in range(per_day)]
    one = await api.post("Statistics", {**fields, "identifier": "id00007", "position": "1"})
    assert ([r["date"] for r in one["records"]], one["truncated"]) == (["20260302", "20260303"],
                                                                      False)


async def test_statistics_per_channel_is_bounded_too(api: Api) -> None:
    alice = await _two_channels(api)  # c1 and c2 each have a few days already
    start = dt.date(1990, 1, 1)
    await _long_history(api.db, "c2", ["y"], [start + dt.timedelta(days=d)
                                              for d in range(STATISTICS_PAGE)], count=2)
    fields = {**alice.credentials, "startdate": "1990", "enddate": "2026"}
    first = await api.post("Statistics", fields)
    assert (len(first["records"]), first["truncated"]) == (STATISTICS_PAGE, True)
    assert first["records"][0] == {"date": "19900101", "channel": "c2", "count": 2}
    rest = await api.post("Statistics", {**fields, "position": str(STATISTICS_PAGE)})
    # the days past 1990 + 10,000 days: c2's "y" and the days the two channels already had
    assert rest["truncated"] is False
    assert rest["records"][-3:] == [
        {"date": "20260131", "channel": "c1", "count": 5},
        {"date": "20260201", "channel": "c1", "count": 5},
        {"date": "20260201", "channel": "c2", "count": 1},
    ]
    assert sum(r["count"] for r in first["records"] + rest["records"]) == \
        2 * STATISTICS_PAGE + 7 + 5 + 5 + 1
