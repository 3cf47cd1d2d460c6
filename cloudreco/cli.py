"""``cloudreco``: run the stack or one of its processes, and administer users and channels."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import asyncpg

from cloudreco import admin
from cloudreco.embedded import running_postgres, start_postgres
from shared.cluster import reshard
from shared.credentials import generate_secret
from shared.db import create_pool, migrate
from shared.settings import Settings

T = TypeVar("T")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cloudreco", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the whole stack (embedded Postgres and Redis unless "
                               "CLOUDRECO_DATABASE_URL / CLOUDRECO_REDIS_URL are set)")
    sub.add_parser("gateway", help="run the HTTP gateway")
    m = sub.add_parser("matcher", help="run one matcher shard")
    m.add_argument("--shard", type=int, required=True)
    sub.add_parser("migrate", help="apply database migrations")
    rs = sub.add_parser("reshard", help="move the catalog to N shards (stop the stack first; "
                                        "then start it with CLOUDRECO_SHARDS=N)")
    rs.add_argument("shards", type=int)

    user = sub.add_parser("user", help="manage users").add_subparsers(dest="action",
                                                                      required=True)
    uc = user.add_parser("create", help="create a user; prints the secret key last")
    uc.add_argument("name")
    uc.add_argument("--secret", help="the secret key (default: a generated one)")
    user.add_parser("list", help="list users")

    channel = sub.add_parser("channel", help="manage channels").add_subparsers(
        dest="action", required=True)
    cc = channel.add_parser("create", help="create a channel owned by USER")
    cc.add_argument("user")
    cc.add_argument("channel")
    cc.add_argument("--max-images", type=int, default=admin.DEFAULT_MAX_IMAGES)
    cl = channel.add_parser("list", help="list channels")
    cl.add_argument("user", nargs="?")
    cd = channel.add_parser("delete", help="delete a channel with its images and statistics")
    cd.add_argument("channel")

    key = sub.add_parser("key", help="manage app keys (find-only credentials for apps)"
                         ).add_subparsers(dest="action", required=True)
    kc = key.add_parser("create", help="create an app key of USER; prints its username and "
                                       "secret key last")
    kc.add_argument("user")
    kc.add_argument("--find-only", action="store_true", required=True,
                    help="the key runs FindImage and GetImage only (the one kind of key)")
    kc.add_argument("--channel", action="append", default=[], dest="channels",
                    metavar="CHANNEL", help="a channel the key may search (repeatable; "
                                            "default: all of USER's)")
    kc.add_argument("--rate-limit", type=float, metavar="PER_SECOND",
                    help="FindImage requests a second (default: the owner's limit)")
    kl = key.add_parser("list", help="list app keys")
    kl.add_argument("user", nargs="?")
    kr = key.add_parser("revoke", help="revoke an app key at once")
    kr.add_argument("key", help="the key's username (ak_...)")
    return p


@contextlib.contextmanager
def database(settings: Settings) -> Iterator[str]:
    """The configured database, else the running local stack's, else the local one started
    for the length of the command."""
    if settings.database_url:
        yield settings.database_url
        return
    uri = running_postgres(settings.postgres_dir)
    if uri is not None:
        yield uri
        return
    uri, stop = start_postgres(settings.postgres_dir)
    try:
        yield uri
    finally:
        stop()


def with_pool(settings: Settings, work: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
    async def run(uri: str) -> T:
        await migrate(uri)
        pool = await create_pool(uri, max_size=2)
        try:
            return await work(pool)
        finally:
            await pool.close()

    with database(settings) as uri:
        return asyncio.run(run(uri))


def administer(settings: Settings, args: argparse.Namespace) -> None:
    if args.command == "key":
        administer_keys(settings, args)
    elif args.command == "user" and args.action == "create":
        secret = args.secret or generate_secret()
        with_pool(settings, lambda p: admin.create_user(p, args.name, secret))
        print(f"user {args.name} created; secret key:")
        print(secret)
    elif args.command == "user":
        for row in with_pool(settings, admin.list_users):
            print(f"{row['name']}\t{row['channels']} channels")
    elif args.action == "create":
        with_pool(settings, lambda p: admin.create_channel(p, args.user, args.channel,
                                                           args.max_images))
        print(f"channel {args.channel} created for {args.user}")
    elif args.action == "list":
        for row in with_pool(settings, lambda p: admin.list_channels(p, args.user)):
            print(f"{row['name']}\t{row['user']}\t{row['images']}/{row['max_images']} images")
    else:
        with_pool(settings, lambda p: admin.delete_channel(p, args.channel))
        print(f"channel {args.channel} deleted")


def administer_keys(settings: Settings, args: argparse.Namespace) -> None:
    if args.action == "create":
        secret = generate_secret()
        name = with_pool(settings, lambda p: admin.create_key(
            p, args.user, secret, args.channels, args.rate_limit))
        print(f"app key of {args.user} created; username and secret key:")
        print(name)
        print(secret)
    elif args.action == "list":
        for row in with_pool(settings, lambda p: admin.list_keys(p, args.user)):
            channels = "all channels" if row["channels"] is None else ",".join(row["channels"])
            limit = "owner's rate limit" if row["rate_limit"] is None else \
                f"{row['rate_limit']:g}/s"
            print(f"{row['name']}\t{row['user']}\t{channels}\t{limit}")
    else:
        with_pool(settings, lambda p: admin.revoke_key(p, args.key))
        print(f"app key {args.key} revoked")


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    settings = Settings()
    logging.basicConfig(level=settings.log_level,
                        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    if args.command == "run":
        from cloudreco.stack import run
        run(settings)
    elif args.command == "gateway":
        from gateway.app import main as gateway_main
        gateway_main(settings)
    elif args.command == "matcher":
        from matcher.worker import main as matcher_main
        matcher_main(settings, args.shard)
    elif args.command == "migrate":
        with database(settings) as uri:
            print("\n".join(asyncio.run(migrate(uri))) or "nothing to apply")
    elif args.command == "reshard":
        if args.shards < 1:
            sys.exit("cloudreco: a catalog needs at least one shard")
        moved, total = with_pool(settings, lambda p: reshard(p, args.shards))
        print(f"{moved} of {total} images moved; the catalog is on {args.shards} shards. "
              f"Start the stack with CLOUDRECO_SHARDS={args.shards}.")
    else:
        try:
            administer(settings, args)
        except admin.AdminError as e:
            sys.exit(f"cloudreco: {e}")
