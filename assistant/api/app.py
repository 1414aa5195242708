"""The banshi gateway: FastAPI app with the Rasa agent loaded in-process."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Dict, List, Optional, Pattern, Sequence, Tuple

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from rasa.core.lock_store import LockError
from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.api import openapi
from assistant.api.observability import RequestMetrics
from assistant.api.paths import STATIC_DIR
from assistant.api.routers import (
    admin as admin_router,
    analytics as analytics_router,
    catalog_admin as catalog_admin_router,
    applications,
    assist,
    call as call_router,
    conversation,
    desk,
    desk_auth,
    health,
    inbox,
    items,
    reminders as reminders_router,
    prefill as prefill_router,
    metrics as metrics_router,
    reviews as reviews_router,
    tts as tts_router,
    uploads as uploads_router,
    voice as voice_router,
)
from assistant.channels import wechat as wechat_channel
from assistant.channels.notify import build_senders
from assistant.config.settings import Settings, get_settings
from assistant.dialogue.runtime import AssistantRuntime
from assistant.security.headers import SecurityHeaders
from assistant.security.pii import install_log_masking
from assistant.services import speech
from assistant.services.materials.runner import Materials
from assistant.services.analytics.background import RollupLoop
from assistant.services.catalog_live import CatalogWatcher
from assistant.services.model_live import ModelWatcher
from assistant.services.retrain import Retrainer
from assistant.services.live import ChangeFeed
from assistant.services.progress import polling
from assistant.services.progress.loop import NoticeLoop
from assistant.storage import spool
from knowledge import db

logger = logging.getLogger(__name__)

# Request bodies above this size are refused before they are parsed (voice uploads:
# settings.max_audio_bytes plus this).
MAX_BODY_BYTES = 64 * 1024
VOICE_PATH_PREFIX = "/api/v1/voice/"
# Pre-applications with their photos (base64 in JSON), and a kiosk's photo upload.
PREFILL_SUBMIT_PATH = "/api/v1/kiosk/preapplications"
PREFILL_MATERIAL_PATH = "/api/v1/kiosk/inbox/material"
WECHAT_PATH = "/channels/wechat"

BAD_JSON = "请求体不是有效的 JSON"
BAD_REQUEST = "请求格式不正确"
TOO_LARGE = "请求内容太大"
SERVER_ERROR = "系统繁忙，请稍后再试"
DATABASE_DOWN = "系统正在恢复，请稍等几秒再试。"
DATABASE_RETRY_AFTER_S = 5
CONVERSATION_BUSY = "您的上一条消息还在处理中，请稍后再发。"


class BodySizeLimit:
    """Refuse request bodies over ``max_bytes`` (declared or streamed) with a 413.

    ``path_limits`` maps path prefixes to their own limit (the longest matching
    prefix wins), e.g. voice uploads; ``pattern_limits`` (regular expressions, tried
    first) do the same for paths with a variable part, e.g. material uploads. A plain
    ASGI middleware: Starlette's BaseHTTPMiddleware costs ~1 ms per request.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, path_limits: Optional[Dict[str, int]] = None,
                 pattern_limits: Sequence[Tuple[Pattern[str], int]] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.path_limits = sorted((path_limits or {}).items(), key=lambda item: -len(item[0]))
        self.pattern_limits = list(pattern_limits)

    def limit_for(self, path: str) -> int:
        for pattern, limit in self.pattern_limits:
            if pattern.match(path):
                return limit
        for prefix, limit in self.path_limits:
            if path.startswith(prefix):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.limit_for(scope.get("path") or "")
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > max_bytes):
            await JSONResponse({"detail": TOO_LARGE}, status_code=413)(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise StarletteHTTPException(status_code=413, detail=TOO_LARGE)
            return message

        await self.app(scope, limited_receive, send)


def _first_error_message(errors: List[Dict[str, Any]]) -> str:
    for error in errors:
        field = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        if error.get("type") == "value_error.jsondecode":
            return BAD_JSON
        message = str(error.get("msg", ""))
        if error.get("type") == "value_error.missing":
            return f"缺少字段：{field}" if field else "缺少请求内容"
        if error.get("type", "").startswith("type_error"):
            return f"字段类型不正确：{field}"
        if error.get("type") == "value_error.extra":
            return f"不支持的字段：{field}"
        if any("\u4e00" <= ch <= "\u9fff" for ch in message):
            return message
        return f"{BAD_REQUEST}：{field}"
    return BAD_REQUEST


def create_app(settings: Optional[Settings] = None, load_model: bool = True) -> FastAPI:
    settings = settings or get_settings()
    settings.ensure_dirs()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        install_log_masking()
        # Database, Redis and speech work runs in worker threads (asyncio.to_thread);
        # Python's default of cpu_count + 4 threads let a few slow database calls
        # queue every other request behind them under load.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=settings.worker_threads, thread_name_prefix="banshi-io")
        )
        app.state.catalog = await asyncio.to_thread(
            db.load_files_into, settings.db_url, settings.catalog_dir, settings.region_override
        )
        await app.state.catalog_watcher.start(app.state.catalog)  # catalog edits published later
        await app.state.live.start()
        spool.start_replayer(settings.db_url)  # writes kept while the database was unreachable
        # Kiosk: deliver the outbox (handoffs, ratings) to the central server.
        outbox_worker = None
        if settings.kiosk_mode and settings.central_url:
            from assistant.services.outbox_worker import OutboxWorker

            outbox_worker = OutboxWorker(settings)
            outbox_worker.start()
        app.state.outbox = outbox_worker
        # Personal data deleted after its retention: pre-applications, call tickets.
        from assistant.services import retention

        purger = asyncio.get_running_loop().create_task(retention.purge_periodically(settings), name="banshi-retention")
        # Analytics: the turns rollup kept up to date in the background (one replica).
        app.state.analytics_rollup = RollupLoop(settings)
        app.state.analytics_rollup.start()
        if settings.kiosk_mode:  # a kiosk: speech model and voice ready before the first visitor
            app.state.voice_warm_up = speech.start_warm_up(app)
        # WeChat official account: deliveries by the customer-service API, desk relay.
        if settings.wechat_enabled:
            app.state.wechat = wechat_channel.WeChatChannel(app, settings)
            await app.state.wechat.start()
        # Status notices and reminders: sent when the events endpoint wakes the
        # scheduler, and by one replica every notice_interval_seconds.
        notice_senders = None
        if settings.notice_scheduler:
            wechat = getattr(app.state, "wechat", None)
            notice_senders = build_senders(settings, wechat.api if wechat is not None else None, app.state.live.notify)
            app.state.notices = NoticeLoop(settings.db_url, settings.secret(), notice_senders.senders,
                                           settings.timezone, settings.notice_interval_seconds,
                                           poller=polling.poller_for(settings))
            app.state.notices.start()
        # Missing materials by photo: forwarding retries and the retention purge.
        app.state.materials = Materials(settings)
        app.state.materials.start()
        if load_model:
            await app.state.model_watcher.load_at_start()  # the pinned or newest model, or a newer retrained one
            app.state.model_watcher.start()  # models of later retraining runs, swapped in live
        yield
        await app.state.model_watcher.stop()
        if app.state.notices is not None:
            await app.state.notices.stop()
            await notice_senders.aclose()
        if getattr(app.state, "wechat", None) is not None:
            await app.state.wechat.stop()
        purger.cancel()
        await app.state.analytics_rollup.stop()
        await app.state.materials.stop()
        if outbox_worker is not None:
            await outbox_worker.stop()
        await app.state.live.stop()
        await app.state.catalog_watcher.stop()
        await asyncio.to_thread(app.state.retrainer.stop)
        await app.state.runtime.close()

    app = FastAPI(
        title="banshi 办事助手 API",
        version="0.1.0",
        description="Government-service guidance: chat, NLU parse, service catalog.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    openapi.install(app)  # errors as they are answered, nullable optional fields
    app.state.runtime = AssistantRuntime(settings)
    app.state.live = ChangeFeed(settings.db_url)
    app.state.catalog_watcher = CatalogWatcher(app, settings)
    app.state.retrainer = Retrainer(settings)  # retraining from the admin catalog page
    app.state.model_watcher = ModelWatcher(app, settings)  # its models taken up without a restart
    app.state.notices = None  # the notice scheduler (NoticeLoop), started with the app
    # Channel name → async push(conversation_id, text) for operator replies (see api/routers/desk.py).
    app.state.pushers = {}

    # Voice uploads (WAV files) may be larger than other bodies.
    app.add_middleware(
        BodySizeLimit,
        max_bytes=MAX_BODY_BYTES,
        path_limits={
            VOICE_PATH_PREFIX: settings.max_audio_bytes + MAX_BODY_BYTES,
            PREFILL_SUBMIT_PATH: (settings.prefill_max_photos * settings.prefill_max_photo_bytes * 4) // 3
            + MAX_BODY_BYTES,
            PREFILL_MATERIAL_PATH: settings.prefill_max_photo_bytes + MAX_BODY_BYTES,
            # The channel refuses bodies over wechat_max_xml_bytes itself (400, as WeChat expects).
            WECHAT_PATH: settings.wechat_max_xml_bytes * 4,
        },
        pattern_limits=[(uploads_router.UPLOAD_PATH_RE, uploads_router.upload_body_limit(settings))],
    )
    # Every response, the 413s above included (CSP, no framing, nosniff, ...).
    app.add_middleware(SecurityHeaders)
    # Outermost: every request counted and timed by route template (/metrics).
    app.add_middleware(RequestMetrics)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        message = _first_error_message(errors)
        status = 400 if message == BAD_JSON else 422
        safe = [{"loc": list(e.get("loc", ())), "type": e.get("type")} for e in errors]
        return JSONResponse({"detail": message, "errors": safe}, status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else BAD_REQUEST
        if exc.status_code == 400 and detail == "There was an error parsing the body":  # not UTF-8, not JSON
            detail = BAD_JSON
        elif exc.status_code == 404 and detail == "Not Found":
            detail = "没有找到该地址"
        elif exc.status_code == 405:
            detail = "不支持该请求方法"
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(LockError)
    async def on_conversation_busy(request: Request, exc: LockError) -> JSONResponse:
        # Another turn of this conversation held it for longer than a turn may wait.
        return JSONResponse({"detail": CONVERSATION_BUSY}, status_code=503, headers={"Retry-After": "2"})

    @app.exception_handler(SQLAlchemyTimeoutError)
    @app.exception_handler(RedisConnectionError)
    @app.exception_handler(RedisTimeoutError)
    async def on_store_unreachable(request: Request, exc: Exception) -> JSONResponse:
        # No pooled database connection in time, or Redis (the conversation lock, the
        # limits) unreachable: like a database outage, a clear 503 at once.
        logger.warning("gateway.store.unavailable path=%s error=%s", request.url.path, type(exc).__name__)
        return JSONResponse(
            {"detail": DATABASE_DOWN}, status_code=503, headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)}
        )

    @app.exception_handler(DBAPIError)
    async def on_database_down(request: Request, exc: DBAPIError) -> JSONResponse:
        # The database is restarting or unreachable: say so at once; the engine's
        # pre-ping reconnects when it is back (no restart of banshi needed).
        if not exc.connection_invalidated and not isinstance(exc, (OperationalError, InterfaceError)):
            logger.exception("gateway.request.failed path=%s", request.url.path)
            return JSONResponse({"detail": SERVER_ERROR}, status_code=500)
        logger.warning("gateway.database.unavailable path=%s error=%s", request.url.path, type(exc.orig).__name__)
        return JSONResponse(
            {"detail": DATABASE_DOWN}, status_code=503, headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)}
        )

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("gateway.request.failed path=%s", request.url.path)
        return JSONResponse({"detail": SERVER_ERROR}, status_code=500)

    app.include_router(conversation.router)
    app.include_router(items.router)
    app.include_router(health.router)
    app.include_router(assist.router)
    app.include_router(desk_auth.router)
    app.include_router(desk.router)
    app.include_router(desk.page_router)
    app.include_router(call_router.router)
    app.include_router(admin_router.router)
    app.include_router(analytics_router.router)
    app.include_router(analytics_router.page_router)
    app.include_router(reviews_router.router)
    app.include_router(reviews_router.page_router)
    app.include_router(catalog_admin_router.router)
    app.include_router(catalog_admin_router.page_router)
    app.include_router(tts_router.router)
    app.include_router(voice_router.router)
    app.include_router(voice_router.page_router)
    app.include_router(inbox.router)
    app.include_router(prefill_router.router)
    app.include_router(applications.router)
    app.include_router(reminders_router.router)
    app.include_router(wechat_channel.router)
    app.include_router(uploads_router.router)
    app.include_router(uploads_router.desk_router)
    app.include_router(metrics_router.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def chat_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "chat" / "index.html")

    return app
