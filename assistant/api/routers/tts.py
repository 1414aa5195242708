"""POST /api/v1/tts: a reply text → spoken Mandarin as a WAV file (public, like chat)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, StrictBool, StrictStr, validator

from assistant.api.schemas import ErrorResponse
from assistant.config.settings import get_settings
from voice.tts import TtsUnavailable, get_tts

router = APIRouter(prefix="/api/v1/tts", tags=["voice"])

# Answers are longer than questions: accept up to this many characters (or the
# message limit, if that is larger).
TTS_MAX_CHARS = 2000


def tts_max_chars() -> int:
    return max(TTS_MAX_CHARS, get_settings().max_text_chars)


class TtsRequest(BaseModel):
    text: StrictStr = Field(
        ...,
        description="The text to say (a reply as shown on screen)",
        example="您好，请问要办理什么业务？",
        minLength=1,
        maxLength=TTS_MAX_CHARS,
    )
    elderly: StrictBool = Field(False, description="Speak slower (for older people)")

    class Config:
        extra = "forbid"

    @validator("text")
    def _text(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("要朗读的文字不能为空")
        limit = tts_max_chars()
        if len(value) > limit:
            raise ValueError(f"要朗读的文字太长，请不超过{limit}字")
        return value


@router.post(
    "",
    response_class=Response,
    responses={
        200: {"content": {"audio/wav": {}}, "description": "A WAV file (mono, 16-bit)"},
        422: {"model": ErrorResponse},
        503: {"model": ErrorResponse, "description": "No speech engine or no Mandarin voice"},
    },
)
async def synthesize(body: TtsRequest, request: Request) -> Response:
    """Say ``text`` in Mandarin: numbers, dates and lists are read out as people say them."""
    tts = get_tts(request.app.state.settings)
    try:
        wav = await tts.synthesize(body.text, elderly=body.elderly)
    except TtsUnavailable as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from exc
    # The text may be a personal answer (a progress lookup): not for shared caches.
    return Response(content=wav, media_type="audio/wav", headers={"Cache-Control": "no-store"})
