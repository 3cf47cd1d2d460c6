"""The operator's commands, run as the operator runs them."""

from __future__ import annotations

import os
import subprocess
import sys

import asyncpg

from gateway.auth import authenticate


def cloudreco(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLOUDRECO_DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-m", "cloudreco", *args], env=env,
                          capture_output=True, text=True, timeout=60)


async def test_user_create_prints_a_working_secret_last(db: asyncpg.Pool,
                                                        database_url: str) -> None:
    made = cloudreco("user", "create", "alice", database_url=database_url)
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip().splitlines()[-1]
    assert len(secret) >= 40
    assert await authenticate(db, "alice", secret) is not None
    assert await authenticate(db, "alice", secret + "x") is None
    chosen = cloudreco("user", "create", "bob", "--secret", "b0b-s3cret",
                       database_url=database_url)
    assert chosen.stdout.strip().splitlines()[-1] == "b0b-s3cret"
    stored = await db.fetchval("SELECT secret_hash FROM users WHERE name = 'bob'")
    assert b"b0b-s3cret" not in stored  # hashed, not kept
    again = cloudreco("user", "create", "bob", database_url=database_url)
    assert again.returncode != 0 and "exists" in again.stderr
    listed = cloudreco("user", "list", database_url=database_url)
    assert listed.stdout.splitlines() == ["alice\t0 channels", "bob\t0 channels"]


async def test_channels_are_created_listed_and_deleted(db: asyncpg.Pool,
                                                       database_url: str) -> None:
    cloudreco("user", "create", "alice", database_url=database_url)
    made = cloudreco("channel", "create", "alice", "posters", "--max-images", "7",
                     database_url=database_url)
    assert made.returncode == 0, made.stderr
    assert await db.fetchval("SELECT max_images FROM channels WHERE name = 'posters'") == 7
    listed = cloudreco("channel", "list", database_url=database_url)
    assert listed.stdout.splitlines() == ["posters\talice\t0/7 images"]
    nobody = cloudreco("channel", "create", "nobody", "x", database_url=database_url)
    assert nobody.returncode != 0 and "no user" in nobody.stderr
    taken = cloudreco("channel", "create", "alice", "posters", database_url=database_url)
    assert taken.returncode != 0 and "exists" in taken.stderr
    deleted = cloudreco("channel", "delete", "posters", database_url=database_url)
    assert deleted.returncode == 0
    assert await db.fetchval("SELECT count(*) FROM channels") == 0
