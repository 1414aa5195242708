"""POST /api/v1/assist: suggested answers for hotline operators (API key or desk session)."""

from __future__ import annotations

import logging
import re
import time
from typing import Dict, List, Optional

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictStr, validator
from pydantic.error_wrappers import ErrorWrapper

from assistant.api.deps import CatalogDep, RuntimeDep
from assistant.api.schemas import ErrorResponse, _clean_text
from assistant.security.access import AssistCallerDep
from assistant.security.pii import mask_pii
from assistant.services.assist import QUESTION_ORDER, suggest
from assistant.services.conversation import ItemScore
from knowledge.schema import ID_PATTERN

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["assist"])

MAX_ITEM_ID_CHARS = 64
ERRORS = {
    400: {"model": ErrorResponse},
    401: {"model": ErrorResponse},
    403: {"model": ErrorResponse},
    422: {"model": ErrorResponse},
    503: {"model": ErrorResponse},
}


def unknown_item_message(item_id: str) -> str:
    return f"context.item_id 不是已知的事项：{item_id}"


class AssistContext(BaseModel):
    """What the conversation is about so far (resolves "那要多少钱")."""

    item_id: Optional[StrictStr] = Field(None, description="The item discussed so far", example="passport")
    question_type: Optional[StrictStr] = Field(
        None, description=f"The previous question type: {' | '.join(QUESTION_ORDER)}", example="materials"
    )

    class Config:
        extra = "forbid"

    @validator("item_id")
    def _item_id(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and (len(value) > MAX_ITEM_ID_CHARS or not re.match(ID_PATTERN, value)):
            raise ValueError(unknown_item_message(value[:MAX_ITEM_ID_CHARS]))
        return value

    @validator("question_type")
    def _question_type(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and value not in QUESTION_ORDER:
            raise ValueError(f"context.question_type 只能是 {', '.join(QUESTION_ORDER)} 之一")
        return value


class AssistRequest(BaseModel):
    text: StrictStr = Field(
        ..., description="What the caller said (or the operator typed)", example="那个社保卡要带什么材料啊",
        minLength=1, maxLength=500,
    )
    context: Optional[AssistContext] = None

    class Config:
        extra = "forbid"

    _text = validator("text", allow_reuse=True)(_clean_text)


class AssistWhere(BaseModel):
    window: str
    online: List[str]
    phone: str


class AssistCard(BaseModel):
    materials: List[str]
    fees: str
    time_limit: str
    departments: List[str]
    where: AssistWhere


class AssistSuggestion(BaseModel):
    rank: int
    item_id: str
    item_name: str
    question_type: str = Field(..., description=" | ".join(QUESTION_ORDER))
    intent: str
    answer: str
    card: AssistCard
    confidence: float = Field(..., ge=0, le=1)


class AssistResponse(BaseModel):
    suggestions: List[AssistSuggestion]
    intent: Optional[str]
    items: List[ItemScore]
    needs_item: bool = Field(..., description="No clear item: confirm the item with the caller")


@router.post("/assist", response_model=AssistResponse, responses=ERRORS)
async def assist(
    body: AssistRequest, caller: AssistCallerDep, runtime: RuntimeDep, catalog: CatalogDep
) -> JSONResponse:
    """Up to 3 suggested answers (item × question type), most likely first.

    ``suggestions`` is empty for out-of-scope text and when no item is found; then
    ``needs_item`` says whether the operator should first confirm the item.
    """
    context: Dict[str, Optional[str]] = body.context.dict() if body.context else {}
    item_id = context.get("item_id")
    if item_id is not None and item_id not in catalog:
        error = ErrorWrapper(ValueError(unknown_item_message(item_id)), loc=("body", "context", "item_id"))
        raise RequestValidationError([error])
    started = time.perf_counter()
    result = await suggest(runtime, catalog, body.text, context)
    elapsed_ms = 1000 * (time.perf_counter() - started)
    logger.info(
        "assist.suggest caller=%s text=%s top=%s ms=%.1f",
        caller.actor,
        mask_pii(body.text).replace("\n", " "),
        result.top,
        elapsed_ms,
    )
    # Built from typed data: skip FastAPI's second validation pass (hot path).
    return JSONResponse(result.to_dict())
