"""WeChat message XML: parsing (defusedxml, bounded) and building replies.

Inbound messages are flat ``<xml>`` documents (ToUserName, FromUserName,
CreateTime, MsgType, Content, MsgId, MediaId, PicUrl, Format, Recognition, Event,
EventKey, Encrypt). Anything with a DTD or entities, over the size limit, not
well-formed, or not such a document raises :class:`WeChatXmlError` (→ 400).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Dict, Optional
from xml.etree.ElementTree import ParseError

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException

MSG_TEXT = "text"
MSG_VOICE = "voice"
MSG_IMAGE = "image"
MSG_EVENT = "event"
EVENT_SUBSCRIBE = "subscribe"
EVENT_UNSUBSCRIBE = "unsubscribe"
EVENT_CLICK = "CLICK"
# Plain field text above this length is refused (WeChat's own fields are short;
# Content is bounded again by the gateway's text limit).
MAX_FIELD_CHARS = 8192
OPENID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# MsgId is a 64-bit number: ASCII digits only (str.isdigit also accepts "１２３" and "²"),
# short enough for the 200-character dedup key column.
MSG_ID_RE = re.compile(r"[0-9]{1,20}")


class WeChatXmlError(ValueError):
    """Not an acceptable WeChat message document (the reason is for logs, not users)."""


def parse_fields(body: bytes, max_bytes: int) -> Dict[str, str]:
    """The child elements of a WeChat ``<xml>`` document as a dict of stripped texts."""
    if len(body) > max_bytes:
        raise WeChatXmlError(f"over {max_bytes} bytes")
    if not body.strip():
        raise WeChatXmlError("empty")
    try:
        root = DET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (DefusedXmlException, ParseError, ValueError) as exc:
        raise WeChatXmlError(f"{type(exc).__name__}") from None
    if root.tag != "xml":
        raise WeChatXmlError("root is not <xml>")
    fields: Dict[str, str] = {}
    for child in root:
        if len(child):
            continue  # nested structures (e.g. menu event details) are not used
        text = (child.text or "").strip()
        if len(text) > MAX_FIELD_CHARS:
            raise WeChatXmlError(f"field {child.tag} too long")
        fields[child.tag] = text
    return fields


@dataclass(frozen=True)
class Inbound:
    """One message or event from a user."""

    to_user: str
    from_user: str
    create_time: int
    msg_type: str
    content: str = ""
    msg_id: str = ""
    media_id: str = ""
    pic_url: str = ""  # never fetched: images are downloaded by MediaId from the WeChat API
    format: str = ""
    recognition: str = ""
    event: str = ""
    event_key: str = ""

    @classmethod
    def from_fields(cls, fields: Dict[str, str]) -> "Inbound":
        from_user = fields.get("FromUserName", "")
        if not OPENID_RE.match(from_user):
            raise WeChatXmlError("bad FromUserName")
        msg_type = fields.get("MsgType", "")
        if not msg_type:
            raise WeChatXmlError("no MsgType")
        try:
            create_time = int(fields.get("CreateTime", "0"))
        except ValueError:
            raise WeChatXmlError("bad CreateTime") from None
        msg_id = fields.get("MsgId", "")
        if msg_id and not MSG_ID_RE.fullmatch(msg_id):
            raise WeChatXmlError("bad MsgId")
        return cls(
            to_user=fields.get("ToUserName", ""),
            from_user=from_user,
            create_time=create_time,
            msg_type=msg_type,
            content=fields.get("Content", ""),
            msg_id=msg_id,
            media_id=fields.get("MediaId", ""),
            pic_url=fields.get("PicUrl", ""),
            format=fields.get("Format", "").lower(),
            recognition=fields.get("Recognition", ""),
            event=fields.get("Event", ""),
            event_key=fields.get("EventKey", ""),
        )

    @property
    def dedup_key(self) -> str:
        """The same for WeChat's retries of this message: MsgId, or for events
        FromUserName + CreateTime (+ the event)."""
        if self.msg_id:
            return f"msg:{self.msg_id}"
        return f"evt:{self.from_user}:{self.create_time}:{self.event or self.msg_type}"[:200]


# Characters XML 1.0 does not allow at all (not even in CDATA).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _cdata(text: str) -> str:
    text = _NOT_XML.sub("", text)
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def text_reply(to_user: str, from_user: str, content: str, create_time: Optional[int] = None) -> str:
    """A passive text reply (to the user, from the account)."""
    return (
        "<xml>"
        f"<ToUserName>{_cdata(to_user)}</ToUserName>"
        f"<FromUserName>{_cdata(from_user)}</FromUserName>"
        f"<CreateTime>{int(create_time or time.time())}</CreateTime>"
        "<MsgType><![CDATA[text]]></MsgType>"
        f"<Content>{_cdata(content)}</Content>"
        "</xml>"
    )


def encrypted_envelope(encrypted: str, msg_signature: str, timestamp: str, nonce: str) -> str:
    """A safe-mode reply: the encrypted reply XML with its signature."""
    return (
        "<xml>"
        f"<Encrypt>{_cdata(encrypted)}</Encrypt>"
        f"<MsgSignature>{_cdata(msg_signature)}</MsgSignature>"
        f"<TimeStamp>{timestamp}</TimeStamp>"
        f"<Nonce>{_cdata(nonce)}</Nonce>"
        "</xml>"
    )
