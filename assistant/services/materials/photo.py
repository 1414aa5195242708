"""Photo questions (拍照提问): a photo of a notice, a receipt or a form sent in the chat
is read with the offline OCR and goes through the normal understanding as text. An
application number on it (e.g. a 受理回执) starts the progress lookup with that number.

Nothing of the photo is stored; personal numbers in the text are masked before the
dialogue (and its tracker store) sees it, and logs carry lengths only.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Optional

from assistant.config.settings import Settings
from assistant.security.pii import mask_pii
from assistant.services.materials import inspect, reading
from assistant.services.materials.uploads import limits_of

logger = logging.getLogger(__name__)

# What the dialogue is told when the photo shows an application number.
PROGRESS_TEXT = "查询办件进度 {number}"
UNREAD = "抱歉，这张图片上的字我没能看清。请您打字告诉我，或者重新拍一张清楚的照片。"


@dataclass(frozen=True)
class PhotoText:
    """What a photo says, for the dialogue: ``text`` ('' when nothing could be read);
    ``number``: the application number found on it, if any."""

    text: str
    number: Optional[str] = None


async def read_question(settings: Settings, data: bytes) -> PhotoText:
    """The text of a photo question. Raises ``inspect.UploadRefused`` for a file that
    is not an acceptable photo or PDF (its message says why, in Chinese)."""
    inspected = await asyncio.to_thread(inspect.inspect_upload, data, limits_of(settings))
    raw = await reading.read_text(data, inspected)
    numbers = reading.application_numbers_in(raw or "")
    if numbers:
        logger.info("materials.photo.number_found chars=%d", len(raw or ""))
        return PhotoText(PROGRESS_TEXT.format(number=numbers[0]), numbers[0])
    text = re.sub(r"\s+", " ", mask_pii(raw or "")).strip()[: settings.max_text_chars]
    logger.info("materials.photo.read chars=%d", len(text))
    return PhotoText(text)
