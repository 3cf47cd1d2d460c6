"""The one settings object, read from ``CLOUDRECO_*`` environment variables."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Configuration shared by every process of the stack.

    Built once in each entry point and passed down; nothing reads the environment elsewhere.
    """

    model_config = SettingsConfigDict(env_prefix="CLOUDRECO_", frozen=True)

    data_dir: Path = Path(".cloudreco")
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    shards: int = Field(2, ge=1, le=1024)
    database_url: str | None = None
    redis_url: str | None = None

    # Uploads larger than this are refused while they stream in (20006).
    max_image_bytes: int = Field(2 * 1024 * 1024, ge=1024)
    # Decoded images larger than this many pixels are refused before decoding (20006): a
    # 2 MiB PNG can otherwise inflate to gigabytes.
    max_image_pixels: int = Field(40_000_000, ge=10_000)
    # How long the gateway waits for the matchers on one request before answering 20015.
    job_timeout: float = Field(5.0, gt=0)
    # How often matcher workers look for new jobs, in seconds (replies need no polling: the
    # gateway blocks on them). arq's default of 0.5 s would dominate the answer.
    poll_delay: float = Field(0.003, gt=0)
    # Threads a matcher process uses for decoding, feature extraction, search and verification.
    matcher_threads: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    # Jobs one matcher worker runs at once; CPU work queues on its thread pool.
    matcher_jobs: int = Field(16, ge=1)
    log_level: str = "INFO"

    @property
    def postgres_dir(self) -> Path:
        return self.data_dir / "postgres"
