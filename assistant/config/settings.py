"""Typed configuration for banshi, read from the environment (prefix ``BANSHI_``).

Rasa 3.6 pins pydantic 1.10, so this uses pydantic 1's ``BaseSettings`` (the
same class that became ``pydantic-settings`` for pydantic 2). Bad values fail
fast at start-up with a message naming the variable.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Optional

from pydantic import BaseSettings, Field, validator

from assistant.config.embedding_spec import check_spec
from assistant.config.hours import ServiceHours

PROJECT_ROOT = Path(__file__).resolve().parents[2]


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
    # Seconds between checks for a catalog version published on the admin page (every gateway).
    catalog_poll_seconds: float = Field(1.0, ge=0.2, le=60)
    # The training run started on the admin catalog page (shell words); default: `banshi train`.
    retrain_command: Optional[str] = Field(None, max_length=1000)

    # A specific model archive; default: the newest in models_dir.
    model_path: Optional[Path] = None
    # Take up the model of a newer succeeded retraining run without a restart, also when
    # model_path pins one (as `banshi run --replicas` does); false: keep the start model.
    model_follow_retrain: bool = True
    # Seconds between checks for a newer retrained model (every gateway).
    model_poll_seconds: float = Field(2.0, ge=0.2, le=300)
    # Sentence model of the NLU, read when a model is trained (knowledge/embedding.py;
    # checked by assistant/config/embedding_spec.py):
    # use, e5, use+e5, onnx:<dir with model.onnx and tokenizer.json>, or none.
    embedding_model: str = "use"
    action_endpoint: str = "http://127.0.0.1:5055/webhook"
    # Seconds a /healthz probe of the action server is reused (concurrent calls share one probe).
    health_probe_ttl_s: float = Field(2.0, ge=0, le=60)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    action_port: int = Field(5055, ge=1, le=65535)
    # Worker threads of a gateway process for blocking work (database, Redis, speech).
    worker_threads: int = Field(32, ge=4, le=256)

    # Input bounds.
    max_text_chars: int = Field(500, ge=1, le=10000)
    max_sender_id_chars: int = Field(128, ge=8, le=1024)

    # Signs web-chat conversation tokens and salts personal-data hashes. Default: a
    # random key created once in data_dir/secret_key (set it for several replicas).
    secret_key: Optional[str] = Field(None, min_length=32)

    # Progress lookups: "local" (the applications table) or "http" (a case-management
    # system answering GET {progress_url}/applications/{number} with JSON).
    progress_provider: str = "local"
    progress_url: Optional[str] = None
    progress_token: Optional[str] = None
    progress_timeout_s: float = Field(3.0, gt=0, le=30)
    progress_retries: int = Field(2, ge=0, le=5)
    # With the HTTP provider: ask it about every subscribed number at most this often
    # (seconds) and notify on a changed status, for case systems that cannot push
    # events; 0 = off (they push to /api/v1/applications/{number}/events).
    progress_poll_seconds: float = Field(0.0, ge=0, le=86400)

    # Human handoff: when operators answer ("always", or e.g. "mon-fri 09:00-17:00"),
    # in this time zone. Outside these hours a ticket waits for the morning.
    timezone: str = "Asia/Shanghai"
    service_hours: str = "mon-fri 09:00-17:00"

    # Operator desk.
    desk_session_hours: float = Field(8.0, gt=0, le=24 * 7)
    login_rate_limit: str = "5/minute"
    # API keys (comma-separated) for hotline software calling POST /api/v1/assist.
    assist_api_keys: str = ""

    # Public API. require_chat_token: every conversation id (chat, voice) needs its
    # signed token from POST /api/v1/chat/sessions or /voice/sessions; off for local
    # use, required on public deployments (else ids other than web-/kiosk-/wx- are open).
    require_chat_token: bool = False
    # Reverse proxies (IPs or CIDR networks, comma-separated) whose X-Forwarded-For is
    # believed; the client IP of any other peer is the peer itself.
    trusted_proxies: str = "127.0.0.1"
    # Progress lookups and phone verifications per client IP, across every conversation
    # (Redis when redis_url is set, else the database; shared by replicas and action servers).
    progress_ip_rate_limit: str = "30/15minutes"
    # Status events pushed by the case-management system (POST /api/v1/applications/
    # {number}/events), signed with HMAC-SHA256 under this shared secret; off when unset.
    cms_webhook_secret: Optional[str] = Field(None, min_length=16)
    cms_webhook_window_seconds: int = Field(300, ge=10, le=3600)
    # Status notices and reminders (services/progress/loop.py): the gateway's scheduler
    # sends at once when woken and every notice_interval_seconds otherwise (that round
    # in one replica of the deployment at a time, by a lease in the database).
    notice_scheduler: bool = True
    notice_interval_seconds: float = Field(10.0, ge=0.5, le=600)
    # Minutes between the gateway's analytics rollup passes (services/analytics/background.py,
    # one replica at a time by a lease); 0: off, each dashboard request refreshes every stale day.
    analytics_rollup_minutes: float = Field(5.0, ge=0, le=1440)
    # WeChat template message for notices outside the 48-hour customer-service window
    # (公众号后台 → 模板消息); its field names are in channels/wechat_notices.yml.
    wechat_notice_template_id: Optional[str] = Field(None, max_length=64, regex=r"^[A-Za-z0-9_-]+$")
    # SMS gateway for notices: POST {"phone", "text"} with this bearer token; off when unset.
    sms_url: Optional[str] = None
    sms_token: Optional[str] = Field(None, max_length=256)

    # Missing materials handed in by photo or PDF (补交材料, assistant/services/materials/):
    # bounds of one upload (checked by content, before anything is stored), how long a
    # verified progress lookup lets the conversation upload, how long the encrypted files
    # are kept, and where they are forwarded: the case-management system at
    # {materials_forward_url}/applications/{number}/materials (HMAC-signed with
    # cms_webhook_secret), or the local timeline when unset.
    upload_max_bytes: int = Field(10 * 1024 * 1024, ge=64 * 1024, le=50 * 1024 * 1024)
    upload_max_pixels: int = Field(40_000_000, ge=1_000_000, le=200_000_000)
    upload_max_side: int = Field(12000, ge=1000, le=50000)
    upload_max_pages: int = Field(10, ge=1, le=100)
    upload_grant_minutes: int = Field(30, ge=1, le=24 * 60)
    upload_retention_days: int = Field(90, ge=1, le=3650)
    materials_forward_url: Optional[str] = None
    # Photos read by the OCR (uploads and photo questions) per client IP (web) or per
    # WeChat user: each costs seconds of CPU.
    photo_rate_limit: str = "20/10minutes"
    materials_forward_timeout_s: float = Field(10.0, gt=0, le=120)

    # Voice (voice/): the Vosk model directory (default: data_dir/vosk/vosk-model-small-cn-0.22),
    # audio bounds, espeak-ng speaking rates (words per minute) and the TTS cache.
    # voice_biased: a second recogniser restricted to the catalog's words runs beside
    # free decoding (voice/biased.py). tts_variant / tts_word_gap: espeak-ng's voice
    # variant ("" for the default) and pause between words (10 ms units); the
    # round-trip intelligibility bench (bench/voice_accuracy.py) compares them.
    vosk_model_path: Optional[Path] = None
    voice_biased: bool = True
    tts_variant: str = Field("", regex=r"^[a-z0-9]{0,12}$")
    tts_word_gap: int = Field(0, ge=0, le=50)
    max_audio_bytes: int = Field(10 * 1024 * 1024, ge=1024, le=100 * 1024 * 1024)
    max_audio_seconds: float = Field(60.0, gt=0, le=600)
    tts_rate: int = Field(165, ge=60, le=400)
    tts_rate_elderly: int = Field(120, ge=60, le=400)
    tts_cache_entries: int = Field(256, ge=0, le=100000)

    # Kiosk mode: this machine is a kiosk; what must reach the central server (handoff
    # requests, ratings, appointment requests) goes through the persistent outbox.
    kiosk_mode: bool = False
    kiosk_id: str = Field("kiosk-1", regex=r"^[A-Za-z0-9_.-]{1,64}$")
    central_url: Optional[str] = None
    central_token: Optional[str] = None
    # Central server: tokens (comma-separated) it accepts from kiosks on POST /api/v1/kiosk/inbox.
    kiosk_api_keys: str = ""
    kiosk_idle_seconds: int = Field(90, ge=10, le=3600)
    # Barge-in: speaking while the kiosk talks stops the reply and starts a hands-free
    # turn. The level is the microphone RMS (0..1, after the browser's echo cancellation)
    # that counts as speech; raise it where the kiosk's own voice or the hall is loud.
    kiosk_barge_in: bool = True
    kiosk_barge_in_level: float = Field(0.02, gt=0.0, lt=1.0)
    kiosk_end_silence_seconds: float = Field(1.2, ge=0.5, le=5.0)
    # Pre-applications (预填) at the kiosk (assistant/services/prefill/): the kiosk's code in
    # its receipt numbers (KS<code>-<date>-<seq>; default: the letters and digits of
    # kiosk_id; give each kiosk a distinct one), whether a receipt printer is attached (the
    # page prints the receipt at once), bounds of the photos of materials, how many
    # undelivered pre-applications a kiosk keeps at most, and how long the central server
    # keeps their personal data (fields and photos) after receiving them.
    kiosk_code: Optional[str] = Field(None, regex=r"^[A-Z0-9]{1,8}$")
    kiosk_printer: bool = False
    prefill_max_photos: int = Field(6, ge=0, le=20)
    prefill_max_photo_bytes: int = Field(6 * 1024 * 1024, ge=64 * 1024, le=32 * 1024 * 1024)
    prefill_max_photo_pixels: int = Field(30_000_000, ge=100_000, le=100_000_000)
    prefill_max_pending: int = Field(500, ge=1, le=100_000)
    prefill_retention_days: int = Field(30, ge=1, le=3650)

    # Call mode on the desk (assistant/services/callmode/): tickets saved from a call
    # (transcript and caller's data sealed) are kept this long; one call streams at most
    # call_max_minutes of audio.
    call_retention_days: int = Field(180, ge=1, le=3650)
    call_max_minutes: int = Field(90, ge=1, le=600)

    # WeChat official account (公众号) channel at /channels/wechat; off without a token.
    # The token, app id and secret come from the account's developer settings
    # (开发 → 基本配置); the EncodingAESKey (43 characters) for compatible/safe mode.
    wechat_token: Optional[str] = Field(None, min_length=3, max_length=32, regex=r"^[A-Za-z0-9]+$")
    wechat_app_id: Optional[str] = Field(None, max_length=64)
    wechat_app_secret: Optional[str] = Field(None, max_length=128)
    wechat_encoding_aes_key: Optional[str] = Field(None, regex=r"^[A-Za-z0-9]{43}$")
    # plain: plaintext only; compatible: both; safe: encrypted only (needs the AES key).
    wechat_mode: str = "compatible"
    # The customer-service and token API (a local fake in tests and `banshi wechat-sim`).
    wechat_api_base: str = "https://api.weixin.qq.com"
    # Answer in the HTTP response when the reply is ready this soon; else "success"
    # at once and the reply by the customer-service API (WeChat waits 5 s).
    wechat_passive_seconds: float = Field(4.0, gt=0, le=4.8)
    # Requests whose timestamp is further than this from now are refused (replays).
    wechat_timestamp_window_s: int = Field(300, ge=10, le=3600)
    wechat_max_xml_bytes: int = Field(32 * 1024, ge=1024, le=1024 * 1024)
    # How long a message id is remembered for WeChat's retries.
    wechat_dedup_hours: float = Field(48.0, gt=0, le=24 * 30)
    wechat_api_timeout_s: float = Field(5.0, gt=0, le=60)

    # Prometheus metrics at /metrics (assistant/services/metrics.py): a scrape needs
    # ``Authorization: Bearer <metrics_token>`` or comes from metrics_allow (IPs or CIDR
    # networks, comma-separated; the client as resolved through trusted_proxies). Off
    # (404) when neither is set. Each gateway replica serves its own process's metrics.
    metrics_token: Optional[str] = Field(None, min_length=16, max_length=256)
    metrics_allow: str = ""

    # Where accepted reviews are exported as reviewable data files (assistant/services/reviews/export.py);
    # default: data_dir/reviews.
    review_export_dir: Optional[Path] = None

    log_level: str = "INFO"
    # Level of Rasa's own (structured) logs; DEBUG prints every tracker state.
    rasa_log_level: str = "WARNING"

    class Config:
        env_prefix = "BANSHI_"
        env_file = ".env"

    @validator("embedding_model")
    def _embedding_model(cls, value: str) -> str:
        return check_spec(value)

    @validator("tracker_store")
    def _check_tracker_store(cls, value: str) -> str:
        if value not in {"sql", "memory"}:
            raise ValueError("must be 'sql' or 'memory'")
        return value

    @validator("progress_provider")
    def _check_provider(cls, value: str) -> str:
        if value not in {"local", "http"}:
            raise ValueError("must be 'local' or 'http'")
        return value

    @validator("progress_url", always=True)
    def _check_progress_url(cls, value: Optional[str], values: dict) -> Optional[str]:
        if values.get("progress_provider") == "http" and not value:
            raise ValueError("BANSHI_PROGRESS_URL is required when BANSHI_PROGRESS_PROVIDER=http")
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"not an http(s) URL: {value!r}")
        return value

    @validator("timezone")
    def _check_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone: {value!r}") from exc
        return value

    @validator("service_hours")
    def _check_hours(cls, value: str, values: dict) -> str:
        ServiceHours.parse(value, values.get("timezone") or "Asia/Shanghai")
        return value

    @validator("login_rate_limit", "progress_ip_rate_limit", "photo_rate_limit")
    def _check_rate(cls, value: str) -> str:
        from limits import parse

        try:
            parse(value)
        except ValueError as exc:
            raise ValueError(f"not a rate limit like '5/minute': {value!r}") from exc
        return value

    @validator("trusted_proxies", "metrics_allow")
    def _check_proxies(cls, value: str) -> str:
        import ipaddress

        for part in (p.strip() for p in value.split(",")):
            if part:
                try:
                    ipaddress.ip_network(part, strict=False)
                except ValueError as exc:
                    raise ValueError(f"not an IP address or network: {part!r}") from exc
        return value

    @validator("wechat_api_base")
    def _check_wechat_api(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"not an http(s) URL: {value!r}")
        return value.rstrip("/")

    @validator("wechat_app_secret", always=True)
    def _check_wechat(cls, value: Optional[str], values: dict) -> Optional[str]:
        """A configured channel needs its app id and secret (to send replies), and
        safe or compatible mode needs the AES key."""
        if values.get("wechat_token"):
            missing = [name for name in ("wechat_app_id",) if not values.get(name)]
            if not value:
                missing.append("wechat_app_secret")
            if missing:
                raise ValueError(f"BANSHI_WECHAT_TOKEN is set: also set {', '.join('BANSHI_' + m.upper() for m in missing)}")
        return value

    @validator("wechat_mode", always=True)
    def _check_wechat_mode(cls, value: str, values: dict) -> str:
        if value not in ("plain", "compatible", "safe"):
            raise ValueError("must be plain, compatible or safe")
        if values.get("wechat_token") and value != "plain" and not values.get("wechat_encoding_aes_key"):
            raise ValueError(
                f"mode {value} needs BANSHI_WECHAT_ENCODING_AES_KEY (or set BANSHI_WECHAT_MODE=plain)"
            )
        return value

    @property
    def wechat_enabled(self) -> bool:
        return bool(self.wechat_token)

    @validator("log_level", "rasa_log_level")
    def _check_log_level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return value

    @validator("sms_url")
    def _check_sms_url(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"not an http(s) URL: {value!r}")
        return value

    @validator("materials_forward_url")
    def _check_forward_url(cls, value: Optional[str], values: dict) -> Optional[str]:
        if value is None:
            return value
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"not an http(s) URL: {value!r}")
        if not values.get("cms_webhook_secret"):
            raise ValueError("BANSHI_MATERIALS_FORWARD_URL needs BANSHI_CMS_WEBHOOK_SECRET (forwarded materials are signed)")
        return value.rstrip("/")

    @validator("action_endpoint", "redis_url", "database_url", "tracker_db_url", "central_url")
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

    @property
    def vosk_model_dir(self) -> Path:
        return self.vosk_model_path or self.data_dir / "vosk" / "vosk-model-small-cn-0.22"

    @property
    def receipt_code(self) -> str:
        """The kiosk's code in receipt numbers: ``kiosk_code``, else derived from ``kiosk_id``."""
        if self.kiosk_code:
            return self.kiosk_code
        return ("".join(ch for ch in self.kiosk_id.upper() if ch.isascii() and ch.isalnum()) or "K")[-8:]

    @property
    def metrics_enabled(self) -> bool:
        return bool(self.metrics_token or self.metrics_allow.strip())

    @property
    def hours(self) -> ServiceHours:
        return ServiceHours.parse(self.service_hours, self.timezone)

    @property
    def assist_keys(self) -> frozenset:
        return frozenset(k.strip() for k in self.assist_api_keys.split(",") if k.strip())

    def secret(self) -> bytes:
        """The secret key: configured, or created once (0600) in the data directory."""
        if self.secret_key:
            return self.secret_key.encode()
        path = self.data_dir / "secret_key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            temp = path.with_name(f".secret_key.{os.getpid()}")
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
            try:  # atomic; the first process to link wins, the others read its key
                os.link(temp, path)
            except FileExistsError:
                pass
            finally:
                temp.unlink()
        return path.read_text().strip().encode()

    def ensure_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.models_dir.mkdir(parents=True, exist_ok=True)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
