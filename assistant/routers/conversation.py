"""POST /api/v1/chat and POST /api/v1/parse."""

from __future__ import annotations

import logging
from typing import Any, Dict, List

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from assistant.deps import RuntimeDep
from assistant.pii import hash_id
from assistant.schemas import (
    BotMessage,
    ChatRequest,
    ChatResponse,
    ErrorResponse,
    ItemScore,
    ParseRequest,
    ParseResponse,
)

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["conversation"])

TOP_ITEMS = 5
# Said when the dialogue produced no reply (e.g. the action server failed).
NO_REPLY = "抱歉，系统暂时有点忙，请稍后再试，或拨打12345政务服务便民热线。"
ERRORS = {400: {"model": ErrorResponse}, 422: {"model": ErrorResponse}, 503: {"model": ErrorResponse}}


def items_of(parse_data: Dict[str, Any]) -> List[ItemScore]:
    return [ItemScore(**item) for item in (parse_data.get("service_items") or [])[:TOP_ITEMS]]


def parse_response(parse_data: Dict[str, Any]) -> ParseResponse:
    intent = parse_data.get("intent") or {}
    entities = [
        {k: e.get(k) for k in ("entity", "value", "start", "end", "confidence_entity", "extractor")}
        for e in parse_data.get("entities") or []
    ]
    for entity in entities:
        entity["confidence"] = entity.pop("confidence_entity")
    return ParseResponse(
        intent={"name": intent.get("name"), "confidence": float(intent.get("confidence") or 0.0)},
        items=items_of(parse_data),
        entities=entities,
    )


def bot_messages(raw: List[Dict[str, Any]]) -> List[BotMessage]:
    messages = []
    for message in raw:
        buttons = message.get("buttons") or None
        if message.get("text") or buttons:
            messages.append(BotMessage(text=message.get("text"), buttons=buttons))
    return messages


@router.post("/chat", response_model=ChatResponse, responses=ERRORS)
async def chat(body: ChatRequest, runtime: RuntimeDep) -> JSONResponse:
    """One conversation turn: the assistant's replies, the intent and the linked items."""
    result = await runtime.chat(body.sender_id, body.text, body.channel)
    intent = (result.parse_data.get("intent") or {}).get("name")
    logger.info(
        "gateway.chat.turn sender=%s channel=%s intent=%s",
        hash_id(body.sender_id),
        body.channel,
        intent,
    )
    messages = bot_messages(result.messages)
    if not messages:
        logger.warning("gateway.chat.no_reply sender=%s intent=%s", hash_id(body.sender_id), intent)
        messages = [BotMessage(text=NO_REPLY)]
    # Built from typed models above: skip FastAPI's second validation pass (hot path).
    return JSONResponse(
        {
            "messages": [m.dict(exclude_none=True) for m in messages],
            "intent": intent,
            "items": [i.dict() for i in items_of(result.parse_data)],
        }
    )


@router.post("/parse", response_model=ParseResponse, responses=ERRORS)
async def parse(body: ParseRequest, runtime: RuntimeDep) -> JSONResponse:
    """Intent, top-5 service items and entities of one message (no conversation state)."""
    return JSONResponse(parse_response(await runtime.parse(body.text)).dict())
