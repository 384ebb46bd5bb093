"""Configuration: the only module that reads the environment.

Every setting comes from a ``TUNESCOPE_*`` environment variable or an optional
``tunescope.toml`` in the working directory; library packages (``index``, ``retrieval``,
``generation``) never read settings themselves, they take what they need as arguments.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class Settings(BaseSettings):
    """Runtime configuration of a tunescope installation."""

    model_config = SettingsConfigDict(env_prefix="TUNESCOPE_", toml_file="tunescope.toml", extra="ignore")

    home: Path = Field(default=Path("var"), description="Runtime data: database, audio store, indexes.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default is a SQLite file under `home`."
    )
    encoder: str = Field(default="default", description="Encoder used by search and embed.")
    encoder_path: Path | None = Field(default=None, description="Local weights for non-default encoders.")
    generator: str = Field(default="symbolic", description=(
        "Generator used by backfill and generate: symbolic, musicgen, audioldm2 or stable-audio."))
    generator_path: Path | None = Field(default=None,
                                        description="Local weights directory for the real generator backends.")
    device: str = Field(default="auto", description="'auto', 'cpu' or 'cuda'.")
    min_duration_s: float = Field(default=1.0, gt=0)
    max_duration_s: float = Field(default=1800.0, gt=0)
    api_key: str | None = Field(default=None, description="Key required for writes (and reads if keyed).")
    read_requires_key: bool = False
    server_torch_threads: int = Field(default=1, ge=1, le=256,
                                      description="torch intra-op and BLAS threads per request in `tunescope serve`.")
    host: str = "127.0.0.1"
    port: int = 8000
    backfill_generate: str | None = Field(
        default=None, description="'module:factory' building the backfill generate function from "
        "the settings (the generator + re-ranking + gate pipeline); unset: no backfill worker. The "
        "built-in one is 'api.backfill_pipeline:from_settings' (needs `tunescope build-novelty-index` once).")
    backfill_in_process: bool = Field(default=True, description="`serve` runs a backfill worker "
                                      "thread when a pipeline is configured.")
    worker_lease_s: float = Field(default=60.0, gt=0, description="Backfill job lease length.")
    worker_heartbeat_s: float = Field(default=10.0, gt=0, description="Lease renewal period.")
    worker_poll_s: float = Field(default=1.0, gt=0, description="Idle worker's queue poll period.")
    backfill_max_running: int | None = Field(default=None, ge=1,
                                             description="Concurrent backfill jobs, all workers.")
    backfill_candidates: int = Field(default=4, ge=1, le=16, description=(
        "Candidates a backfill job queued by a weak search asks the generator for."))
    backfill_duration_s: float = Field(default=20.0, ge=5, le=60, description=(
        "Seconds of audio per candidate of a backfill job queued by a weak search."))
    backfill_recent_s: float = Field(default=600.0, ge=0, description=(
        "A finished job answers equivalent weak searches (and generate requests) for this "
        "long instead of a new job being queued."))
    backfill_max_per_hour: int | None = Field(default=100, ge=1, description=(
        "Generated tracks per hour that weak searches may queue (stored in the last hour plus "
        "those still pending in queued or running jobs); past it the search answers backfill "
        "status 'limited' and queues nothing. Unset: no limit. POST /v1/generate (keyed) is "
        "not limited by it."))
    llm_url: str | None = Field(default=None, description="OpenAI-compatible endpoint (e.g. "
                                "http://127.0.0.1:8080/v1) that reads conversation messages; "
                                "off by default (the offline parser reads them).")
    llm_model: str = Field(default="smollm2", description="Model name sent to `llm_url`.")
    llm_timeout_s: float = Field(default=5.0, gt=0, le=120,
                                 description="After this the offline parser answers instead.")
    llm_api_key: str | None = Field(default=None, description="Bearer key for `llm_url`.")

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then ``TUNESCOPE_*`` variables, then ``tunescope.toml`` (no .env files)."""
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def resolved_database_url(self) -> str:
        """The configured URL, or a SQLite file inside ``home``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'tunescope.db').resolve()}"

    @property
    def audio_dir(self) -> Path:
        """The audio store's folder."""
        return self.home / "audio"

    @property
    def index_dir(self) -> Path:
        """The vector indexes' folder (one index and manifest per encoder)."""
        return self.home / "indexes"

    @property
    def novelty_index_path(self) -> Path:
        """The novelty gate's melodic n-gram index (``tunescope build-novelty-index``)."""
        return self.home / "novelty" / "melody-12grams.npy"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings read once per process (tests call ``get_settings.cache_clear()``)."""
    return Settings()
