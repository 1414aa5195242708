"""Typed configuration for banshi, read from the environment (prefix ``BANSHI_``).

Rasa 3.6 pins pydantic 1.10, so this uses pydantic 1's ``BaseSettings`` (the
same class that became ``pydantic-settings`` for pydantic 2). Bad values fail
fast at start-up with a message naming the variable.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Optional

from pydantic import BaseSettings, Field, validator

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """All tunables of the gateway, the CLI and the actions."""

    # Where state lives: SQLite files, trained models, caches.
    data_dir: Path = Field(PROJECT_ROOT / "data")
    models_dir: Path = Field(PROJECT_ROOT / "models")
    # Our own tables (catalog, feedback, handoff requests). Default: SQLite in data_dir.
    database_url: Optional[str] = None
    # Rasa tracker store: "sql" (default, SQLite in data_dir or tracker_db_url) or "memory".
    tracker_store: str = "sql"
    tracker_db_url: Optional[str] = None
    # Start a new Rasa session (slots carried over) once the current one holds this many
    # events, so that a turn's cost does not grow with the conversation. 0 = never.
    session_roll_events: int = Field(40, ge=0)
    # Rasa lock store: Redis URL for several gateway replicas; in-memory otherwise.
    redis_url: Optional[str] = None

    catalog_dir: Path = Field(PROJECT_ROOT / "knowledge" / "catalog")
    # Optional regional override file (YAML) replacing any field of any item.
    region_override: Optional[Path] = None

    # A specific model archive; default: the newest in models_dir.
    model_path: Optional[Path] = None
    action_endpoint: str = "http://127.0.0.1:5055/webhook"

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    action_port: int = Field(5055, ge=1, le=65535)

    # Input bounds.
    max_text_chars: int = Field(500, ge=1, le=10000)
    max_sender_id_chars: int = Field(128, ge=8, le=1024)

    log_level: str = "INFO"
    # Level of Rasa's own (structured) logs; DEBUG prints every tracker state.
    rasa_log_level: str = "WARNING"

    class Config:
        env_prefix = "BANSHI_"
        env_file = ".env"

    @validator("tracker_store")
    def _check_tracker_store(cls, value: str) -> str:
        if value not in {"sql", "memory"}:
            raise ValueError("must be 'sql' or 'memory'")
        return value

    @validator("log_level", "rasa_log_level")
    def _check_log_level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return value

    @validator("action_endpoint", "redis_url", "database_url", "tracker_db_url")
    def _check_url(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and "://" not in value:
            raise ValueError(f"not a URL: {value!r}")
        return value

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'banshi.db'}"

    @property
    def trackers_url(self) -> str:
        return self.tracker_db_url or f"sqlite:///{self.data_dir / 'trackers.db'}"

    def ensure_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.models_dir.mkdir(parents=True, exist_ok=True)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
