"""What every user command shares: where the service is, whose credentials to send, and how
a refusal or a lost connection ends the command."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import aiohttp
import click

from cloudreco.client import ApiError, AsyncClient, ProtocolError
from cloudreco.client.config import (
    DEFAULT_URL,
    SECRETKEY_VARIABLE,
    URL_VARIABLE,
    USERNAME_VARIABLE,
    Connection,
)

F = TypeVar("F", bound=Callable[..., Any])


def connection_options(command: F) -> F:
    """``--url``, ``--username`` and ``--secretkey``, each defaulting to its variable."""
    for option in (
        click.option("--secretkey", metavar="KEY",
                     help=f"the secret key (default: ${SECRETKEY_VARIABLE}; the variable "
                          "keeps it out of the process list)"),
        click.option("--username", metavar="NAME",
                     help=f"a user or app key name (default: ${USERNAME_VARIABLE})"),
        click.option("--url", metavar="URL",
                     help=f"the service (default: ${URL_VARIABLE}, else {DEFAULT_URL})"),
    ):
        command = option(command)
    return command


def client(url: str | None, username: str | None, secretkey: str | None,
           **options: Any) -> AsyncClient:
    """A client of the service the options or variables name; a usage error (exit 2) when
    the credentials are missing."""
    connection = Connection.resolve(url, username, secretkey)
    if not connection.username:
        raise click.UsageError(f"no username: give --username or set ${USERNAME_VARIABLE}")
    if not connection.secretkey:
        raise click.UsageError(f"no secret key: give --secretkey or set ${SECRETKEY_VARIABLE}")
    return AsyncClient(connection.url, connection.username, connection.secretkey, **options)


def run(work: Coroutine[Any, Any, int]) -> None:
    """Run a command's coroutine and exit with its status; a refusal or a failed connection
    exits 1 with its reason on standard error."""
    try:
        status = asyncio.run(work)
    except (ApiError, ProtocolError, aiohttp.ClientError) as e:
        sys.exit(f"cloudreco: {e}")
    except TimeoutError:
        sys.exit("cloudreco: no answer in time")
    sys.exit(status)
