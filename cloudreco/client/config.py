"""Where the service is and whose credentials to send: arguments, else environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

URL_VARIABLE = "CLOUDRECO_URL"
USERNAME_VARIABLE = "CLOUDRECO_USERNAME"
SECRETKEY_VARIABLE = "CLOUDRECO_SECRETKEY"
DEFAULT_URL = "http://127.0.0.1:8080"  # where `make run` listens


@dataclass(frozen=True)
class Connection:
    """The service's base URL and the credentials sent as ``username`` and ``secretkey``.

    Credentials may be an owner's or an app key's; without them only GetImage works.
    """

    url: str = DEFAULT_URL
    username: str | None = None
    secretkey: str | None = None

    @classmethod
    def resolve(cls, url: str | None = None, username: str | None = None,
                secretkey: str | None = None, *,
                environ: Mapping[str, str] | None = None) -> Connection:
        """Each value from its argument, else from ``CLOUDRECO_URL``, ``CLOUDRECO_USERNAME``
        and ``CLOUDRECO_SECRETKEY``, else the default (the local stack, no credentials)."""
        env = os.environ if environ is None else environ
        return cls(url=url or env.get(URL_VARIABLE) or DEFAULT_URL,
                   username=username or env.get(USERNAME_VARIABLE) or None,
                   secretkey=secretkey or env.get(SECRETKEY_VARIABLE) or None)

    def credentials(self) -> dict[str, str]:
        """The credential fields of a request (none when no username is set)."""
        if not self.username:
            return {}
        return {"username": self.username, "secretkey": self.secretkey or ""}

    def endpoint(self, name: str) -> str:
        return f"{self.url.rstrip('/')}/{name}"

    def __repr__(self) -> str:  # never show the secret key
        return f"Connection(url={self.url!r}, username={self.username!r})"
