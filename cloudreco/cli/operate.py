"""The operator's commands: run the stack or one of its processes, migrate, reshard, and
administer users, channels and app keys in Postgres directly."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import asyncpg
import click

from cloudreco import admin
from cloudreco.embedded import running_postgres, start_postgres
from shared import logs
from shared.cluster import reshard as reshard_catalog
from shared.credentials import generate_secret
from shared.db import create_pool
from shared.db import migrate as apply_migrations
from shared.settings import Settings

T = TypeVar("T")


def operator_settings() -> Settings:
    """The operator's settings, built once per command, with logging configured by them."""
    settings = Settings()
    logs.configure(settings)
    return settings


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


def with_pool(work: Callable[[asyncpg.Pool], Awaitable[T]],
              settings: Settings | None = None) -> T:
    """``work`` on a pool of the migrated database (of ``settings``, else the operator's);
    a refusal (AdminError) exits with its reason."""
    async def run(uri: str) -> T:
        await apply_migrations(uri)
        pool = await create_pool(uri, max_size=2)
        try:
            return await work(pool)
        finally:
            await pool.close()

    with database(settings or operator_settings()) as uri:
        try:
            return asyncio.run(run(uri))
        except admin.AdminError as e:
            sys.exit(f"cloudreco: {e}")


@click.command()
def run() -> None:
    """Run the whole stack.

    Starts embedded Postgres and Redis unless CLOUDRECO_DATABASE_URL / CLOUDRECO_REDIS_URL
    are set, then the gateway and the matchers.
    """
    from cloudreco.stack import run as run_stack
    run_stack(operator_settings())


@click.command()
def gateway() -> None:
    """Run the HTTP gateway."""
    from gateway.app import main as gateway_main
    gateway_main(operator_settings())


@click.command()
@click.option("--shard", type=int, required=True)
def matcher(shard: int) -> None:
    """Run one matcher shard."""
    from matcher.worker import main as matcher_main
    matcher_main(operator_settings(), shard)


@click.command()
def migrate() -> None:
    """Apply database migrations."""
    with database(operator_settings()) as uri:
        print("\n".join(asyncio.run(apply_migrations(uri))) or "nothing to apply")


@click.command()
@click.argument("shards", type=int)
def reshard(shards: int) -> None:
    """Move the catalog to another number of shards.

    Stop the stack first; then start it with CLOUDRECO_SHARDS=SHARDS.
    """
    if shards < 1:
        sys.exit("cloudreco: a catalog needs at least one shard")
    moved, total = with_pool(lambda p: reshard_catalog(p, shards))
    print(f"{moved} of {total} images moved; the catalog is on {shards} shards. "
          f"Start the stack with CLOUDRECO_SHARDS={shards}.")


@click.group()
def user() -> None:
    """Manage users."""


@user.command("create")
@click.argument("name")
@click.option("--secret", help="the secret key (default: a generated one)")
def user_create(name: str, secret: str | None) -> None:
    """Create a user; prints the secret key last."""
    secret = secret or generate_secret()
    with_pool(lambda p: admin.create_user(p, name, secret))
    print(f"user {name} created; secret key:")
    print(secret)


@user.command("list")
def user_list() -> None:
    """List users."""
    for row in with_pool(admin.list_users):
        print(f"{row['name']}\t{row['channels']} channels")


@click.group()
def channel() -> None:
    """Manage channels."""


@channel.command("create")
@click.argument("user")
@click.argument("channel")
@click.option("--max-images", type=int, default=admin.DEFAULT_MAX_IMAGES, show_default=True)
def channel_create(user: str, channel: str, max_images: int) -> None:
    """Create a channel owned by USER."""
    with_pool(lambda p: admin.create_channel(p, user, channel, max_images))
    print(f"channel {channel} created for {user}")


@channel.command("list")
@click.argument("user", required=False)
def channel_list(user: str | None) -> None:
    """List channels (of USER, or all)."""
    for row in with_pool(lambda p: admin.list_channels(p, user)):
        print(f"{row['name']}\t{row['user']}\t{row['images']}/{row['max_images']} images")


@channel.command("delete")
@click.argument("channel")
def channel_delete(channel: str) -> None:
    """Delete a channel with its images and statistics."""
    with_pool(lambda p: admin.delete_channel(p, channel))
    print(f"channel {channel} deleted")


@click.group()
def key() -> None:
    """Manage app keys (find-only credentials for apps)."""


@key.command("create")
@click.argument("user")
@click.option("--find-only", is_flag=True, required=True,
              help="the key runs FindImage and GetImage only (the one kind of key)")
@click.option("--channel", "channels", multiple=True, metavar="CHANNEL",
              help="a channel the key may search (repeatable; default: all of USER's)")
@click.option("--rate-limit", type=float, metavar="PER_SECOND",
              help="FindImage requests a second (default: the owner's limit)")
def key_create(user: str, find_only: bool, channels: tuple[str, ...],
               rate_limit: float | None) -> None:
    """Create an app key of USER; prints its username and secret key last."""
    secret = generate_secret()
    name = with_pool(lambda p: admin.create_key(p, user, secret, list(channels), rate_limit))
    print(f"app key of {user} created; username and secret key:")
    print(name)
    print(secret)


@key.command("list")
@click.argument("user", required=False)
def key_list(user: str | None) -> None:
    """List app keys (of USER, or all)."""
    for row in with_pool(lambda p: admin.list_keys(p, user)):
        channels = "all channels" if row["channels"] is None else ",".join(row["channels"])
        limit = "owner's rate limit" if row["rate_limit"] is None else \
            f"{row['rate_limit']:g}/s"
        print(f"{row['name']}\t{row['user']}\t{channels}\t{limit}")


@key.command("revoke")
@click.argument("key", metavar="KEY")
def key_revoke(key: str) -> None:
    """Revoke an app key at once (KEY: the key's username, ak_...)."""
    with_pool(lambda p: admin.revoke_key(p, key))
    print(f"app key {key} revoked")


COMMANDS = [run, gateway, matcher, migrate, reshard, user, channel, key]
