"""WeChat image messages (MsgType ``image``): the photo is downloaded by its MediaId
from the WeChat API (bounded; ``PicUrl`` is never fetched), then

* from a user who has just verified an application that is missing materials (需补正),
  it is that material handed in (补交材料): checked, pre-checked, stored encrypted and
  forwarded (``services/materials/uploads.py``); the reply is the pre-check's answer;
* from anyone else it is a photo question (``services/materials/photo.py``): the text
  read from it goes through the normal understanding, an application number on it
  starts the progress lookup.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Optional, Tuple

from assistant.channels.wechat_api import WeChatApiError
from assistant.channels.wechat_xml import Inbound
from assistant.security.client import conversation_key
from assistant.security.pii import hash_id
from assistant.services.materials import inspect, photo, uploads
from assistant.services.materials.runner import materials_of, photo_limit_wait
from assistant.storage.tables import STATUS_SUPPLEMENT

logger = logging.getLogger(__name__)

CHANNEL = "wechat"
TOO_LARGE_ERROR = "media too large"
STILL_MISSING = "还需要补交：{names}。请再发一张照片，每次一项。"
TOO_MANY = "您发送照片的次数太多了，请 {minutes} 分钟后再试。"


async def image_text(channel: Any, inbound: Inbound, sender: str) -> Tuple[Optional[str], Optional[str]]:
    """(text for the dialogue, None) or (None, the reply): see the module docstring."""
    settings = channel.settings
    texts = channel.texts
    if not inbound.media_id:
        return None, texts.image_failed
    wait = await asyncio.to_thread(photo_limit_wait, settings, conversation_key(settings.secret(), sender))
    if wait is not None:
        return None, TOO_MANY.format(minutes=max(1, -(-wait // 60)))
    try:
        data, _kind = await channel.api.media(inbound.media_id, settings.upload_max_bytes)
    except WeChatApiError as exc:
        logger.warning("wechat.image.download_failed user=%s error=%s", hash_id(sender), exc)
        if exc.errmsg == TOO_LARGE_ERROR:
            return None, inspect.UploadRefused(
                inspect.TOO_LARGE, max_mb=max(1, settings.upload_max_bytes // 2**20)).message
        return None, texts.image_failed
    services = materials_of(channel.app)
    try:
        wanted = await uploads.wanted(settings, services.provider, sender)
    except uploads.UploadError as exc:
        if exc.status != 403:
            return None, exc.message
        wanted = None
    if wanted is not None and wanted.status == STATUS_SUPPLEMENT and wanted.accepted:
        return None, await _hand_in(channel, services, sender, wanted, data)
    try:
        found = await photo.read_question(settings, data)
    except inspect.UploadRefused as exc:
        return None, exc.message
    if not found.text:
        return None, texts.image_unread
    logger.info("wechat.image.question user=%s number=%s", hash_id(sender), bool(found.number))
    return found.text, None


async def _hand_in(channel: Any, services: Any, sender: str, wanted: uploads.Wanted, data: bytes) -> str:
    try:  # WeChat cannot say which material a photo is: with several, its reading decides
        stored = await uploads.store(channel.settings, services.provider, services.case_system, sender,
                                     CHANNEL, data, None, guess=True)
    except uploads.UploadError as exc:
        logger.info("wechat.image.refused user=%s code=%s", hash_id(sender), exc.code)
        return exc.message
    logger.info("wechat.image.stored user=%s verdict=%s", hash_id(sender), stored.verdict)
    left = [name for name in wanted.missing if name != stored.material
            and name not in {row["material"] for row in wanted.uploaded}]
    return f"{stored.message}\n{STILL_MISSING.format(names='、'.join(left))}" if left else stored.message
