"""Submitting a pre-application at the kiosk, and its way to the central server.

``submit`` checks the fields against the item's form and every photo (bounded), seals
them (fields in the row, photos in files), gives the next receipt number of this kiosk
and day, and, in one transaction with the rows, queues one outbox message for the
pre-application and one per photo. It works without any network. On a gateway that is
not a kiosk (``kiosk_mode`` off: the page is served by the central server itself) the
rows are stored as received at once and nothing is queued.

The outbox builds the requests only when it sends them (``register_kind``): the
pre-application's fields are opened then and posted as JSON to the inbox; a photo is
opened and posted as its bytes to ``POST /api/v1/kiosk/inbox/material``, never before its
pre-application was confirmed (the photos are queued just after it, and a photo whose
pre-application is still on its way waits: ``outbox.NotYet``). Once the central
server confirmed a message, the kiosk deletes that personal data (the sealed fields,
the photo file); the row stays, so that the receipt can be looked up here too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from cryptography.exceptions import InvalidTag
from sqlalchemy import false, func, select, text, update
from sqlalchemy.exc import IntegrityError

from assistant.config.settings import Settings
from assistant.services import outbox
from assistant.services.prefill import receipts, sealing
from assistant.services.prefill.photos import Photo, PhotoLimits, PhotoRefused, check_photo
from assistant.services.progress.records import mask_name
from assistant.storage.database import session_factory, utcnow
from assistant.storage.tables import OutboxMessage, Preapplication, PreapplicationMaterial
from knowledge.prefill import KIND_NAME, ItemForm, check_fields

logger = logging.getLogger(__name__)

KIND_PREAPPLICATION = "preapplication"
KIND_MATERIAL = "material"
MATERIAL_PATH = outbox.INBOX_PATH + "/material"
ALLOCATE_TRIES = 5
# Photo uploads get more time than the client's default: at least this many bytes a second.
UPLOAD_BYTES_PER_SECOND = 32 * 1024
MAX_UPLOAD_TIMEOUT_S = 600.0

FIELDS_PROBLEM = "有几项需要修改，请看标出的地方。"
NO_FORM = "这个事项暂时不能在自助机上预填，请到窗口办理。"
TOO_MANY_PHOTOS = "材料照片太多了，最多 {n} 张。"
NOT_A_MATERIAL = "这张照片对应的材料不在本事项的材料清单里。"
TOO_MUCH_TEXT = "填写的内容太多了，请精简一些。"
KIOSK_FULL = "本机暂存的预申请已满，网络恢复后才能继续使用。请到窗口办理，或稍后再试。"
DAY_FULL = "本机今天的预申请已满，请到窗口办理。"


class PrefillRefused(Exception):
    """A submission that cannot be taken: ``status`` (HTTP), ``message`` for the citizen,
    ``problems`` by field id (``photo:<n>`` for the n-th photo)."""

    def __init__(self, status: int, message: str, problems: Optional[Dict[str, str]] = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.problems = problems or {}


@dataclass(frozen=True)
class PhotoUpload:
    material: str
    data: bytes


@dataclass
class Submitted:
    receipt: str
    item_id: str
    item_name: str
    created_at: dt.datetime
    materials: int
    queued: bool  # False when stored directly (not a kiosk)
    message_ids: List[str] = field(default_factory=list)


# ------------------------------------------------------------------- submit
def _applicant(form: ItemForm, values: Dict[str, str]) -> Optional[str]:
    first = next((f for f in form.fields if f.kind == KIND_NAME and values.get(f.id)), None)
    return mask_name(values[first.id])[:64] if first is not None else None


def check_submission(
    settings: Settings, form: ItemForm, values: Any, photos: List[PhotoUpload]
) -> Tuple[Dict[str, str], List[Photo]]:
    """The normalised fields and the checked photos; ``PrefillRefused`` otherwise."""
    clean, problems = check_fields(form, values)
    if problems:
        raise PrefillRefused(422, FIELDS_PROBLEM, problems)
    if len(json.dumps(clean, ensure_ascii=False).encode("utf-8")) > outbox.MAX_PAYLOAD_BYTES // 2:
        raise PrefillRefused(422, TOO_MUCH_TEXT)
    if len(photos) > settings.prefill_max_photos:
        raise PrefillRefused(422, TOO_MANY_PHOTOS.format(n=settings.prefill_max_photos))
    limits = PhotoLimits.of(settings)
    checked: List[Photo] = []
    for index, photo in enumerate(photos):
        key = f"photo:{index}"
        if photo.material not in form.photos:
            raise PrefillRefused(422, NOT_A_MATERIAL, {key: NOT_A_MATERIAL})
        try:
            checked.append(check_photo(photo.data, limits))
        except PhotoRefused as exc:
            raise PrefillRefused(exc.status, exc.message, {key: exc.message}) from None
    return clean, checked


def pending_count(db_url: str) -> int:
    """Pre-applications this kiosk still has to deliver."""
    with session_factory(db_url)() as session:
        return int(
            session.execute(
                select(func.count())
                .select_from(Preapplication)
                .join(OutboxMessage, OutboxMessage.id == Preapplication.message_id)
                .where(OutboxMessage.delivered_at.is_(None))
            ).scalar_one()
        )


def _serialize_allocation(session, kiosk_id: str, day: str) -> None:
    """One transaction at a time takes a kiosk's next number of the day: concurrent
    ``max(seq) + 1`` would otherwise collide again and again. PostgreSQL: a
    transaction-level advisory lock for this kiosk and day (released at commit or
    rollback). SQLite: a write that changes nothing takes the database's write lock
    first, so the ``max`` below is read by the only writer (others wait up to the
    connection's busy timeout)."""
    dialect = session.bind.dialect.name
    if dialect == "postgresql":
        digest = hashlib.sha256(f"banshi.receipt:{kiosk_id}:{day}".encode("utf-8")).digest()
        key = int.from_bytes(digest[:8], "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    elif dialect == "sqlite":
        session.execute(update(Preapplication).where(false()).values(seq=Preapplication.seq))


def _next_seq(session, kiosk_id: str, day: str) -> int:
    _serialize_allocation(session, kiosk_id, day)
    top = session.execute(
        select(func.max(Preapplication.seq)).where(Preapplication.kiosk_id == kiosk_id, Preapplication.day == day)
    ).scalar()
    return int(top or 0) + 1


def submit(
    settings: Settings,
    form: ItemForm,
    values: Any,
    photos: List[PhotoUpload],
    now: Optional[dt.datetime] = None,
) -> Submitted:
    """Check, seal and store a pre-application with its photos; a receipt number at once."""
    clean, checked = check_submission(settings, form, values, photos)
    queued = settings.kiosk_mode
    if queued and pending_count(settings.db_url) >= settings.prefill_max_pending:
        logger.warning("kiosk.prefill.full pending>=%s", settings.prefill_max_pending)
        raise PrefillRefused(503, KIOSK_FULL)
    now = now or utcnow()
    day = receipts.local_day(now, settings.timezone)
    secret = settings.secret()
    photo_ids = [str(uuid.uuid4()) for _ in photos]
    paths: List[str] = []
    try:
        for photo_id, photo in zip(photo_ids, photos):
            paths.append(sealing.write_photo(settings, photo_id, photo.data))
        for attempt in range(ALLOCATE_TRIES):
            try:
                receipt, message_ids = _store(
                    settings, form, clean, checked, photos, photo_ids, paths, day, now, secret, queued
                )
                break
            except IntegrityError:  # another submission took this number a moment ago
                if attempt == ALLOCATE_TRIES - 1:
                    raise
    except BaseException:
        for relative in paths:
            sealing.delete_photo(settings, relative)
        raise
    logger.info(
        "kiosk.prefill.stored receipt=%s item=%s fields=%d photos=%d queued=%s",
        receipt, form.item_id, len(clean), len(photos), queued,
    )
    return Submitted(receipt, form.item_id, form.item_name, now, len(photos), queued, message_ids)


def _store(
    settings: Settings,
    form: ItemForm,
    clean: Dict[str, str],
    checked: List[Photo],
    photos: List[PhotoUpload],
    photo_ids: List[str],
    paths: List[str],
    day: str,
    now: dt.datetime,
    secret: bytes,
    queued: bool,
) -> Tuple[str, List[str]]:
    with session_factory(settings.db_url)() as session:
        seq = _next_seq(session, settings.kiosk_id, day)
        if seq > receipts.MAX_SEQ:
            raise PrefillRefused(503, DAY_FULL)
        receipt = receipts.format_receipt(settings.receipt_code, day, seq)
        received = None if queued else now
        message_id = str(uuid.uuid4()) if queued else None
        session.add(
            Preapplication(
                receipt=receipt,
                kiosk_id=settings.kiosk_id,
                day=day,
                seq=seq,
                item_id=form.item_id,
                fields_sealed=sealing.seal_fields(secret, receipt, clean),
                applicant_masked=_applicant(form, clean),
                materials=len(photos),
                message_id=message_id,
                created_at=now,
                received_at=received,
            )
        )
        session.flush()  # the receipt number is taken here (or IntegrityError)
        for photo_id, photo, info, relative in zip(photo_ids, photos, checked, paths):
            session.add(
                PreapplicationMaterial(
                    id=photo_id,
                    receipt=receipt,
                    material=photo.material,
                    content_type=info.content_type,
                    size=info.size,
                    width=info.width,
                    height=info.height,
                    sha256=info.sha256,
                    path=relative,
                    created_at=now,
                    received_at=received,
                )
            )
        message_ids: List[str] = []
        if queued:
            payload = {"receipt": receipt, "item_id": form.item_id}
            message_ids.append(outbox.enqueue_in(session, KIND_PREAPPLICATION, payload, now, message_id))
            for index, (photo_id, photo) in enumerate(zip(photo_ids, photos), start=1):
                # Queued just after the pre-application (the outbox sends oldest first).
                later = now + dt.timedelta(microseconds=index)
                message_ids.append(
                    outbox.enqueue_in(session, KIND_MATERIAL, {"receipt": receipt, "material_id": photo_id}, later, photo_id)
                )
        session.commit()
    return receipt, message_ids


# --------------------------------------------------------------- outbound
def _iso(value: Optional[dt.datetime]) -> Optional[str]:
    return value.replace(tzinfo=dt.timezone.utc).isoformat() if value else None


def build_preapplication(settings: Settings, message: outbox.Pending, kiosk_id: str) -> outbox.Outbound:
    receipt = message.payload.get("receipt")
    with session_factory(settings.db_url)() as session:
        row = session.get(Preapplication, receipt) if isinstance(receipt, str) else None
        if row is None or row.fields_sealed is None:
            raise outbox.Unsendable("the pre-application's data is gone")
        try:
            fields = sealing.open_fields(settings.secret(), row.receipt, row.fields_sealed)
        except (InvalidTag, ValueError):
            raise outbox.Unsendable("the pre-application cannot be opened with this secret key") from None
        payload = {
            "receipt": row.receipt,
            "item_id": row.item_id,
            "fields": fields,
            "applicant_masked": row.applicant_masked,
            "materials": row.materials,
            "created_at": _iso(row.created_at),
        }
    body = outbox.body_of(outbox.Pending(message.id, message.kind, payload, message.created_at, message.attempts), kiosk_id)
    return outbox.Outbound(outbox.INBOX_PATH, json=body)


def build_material(settings: Settings, message: outbox.Pending, kiosk_id: str) -> outbox.Outbound:
    with session_factory(settings.db_url)() as session:
        row = session.get(PreapplicationMaterial, message.id)
        if row is None or row.path is None:
            raise outbox.Unsendable("the photo is gone")
        form = session.get(Preapplication, row.receipt)
        sent = session.get(OutboxMessage, form.message_id) if form is not None and form.message_id else None
        if sent is not None and sent.delivered_at is None:
            if sent.failed_at is not None:
                raise outbox.Unsendable("its pre-application was given up (see that message)")
            raise outbox.NotYet("its pre-application is not delivered yet")
        try:
            data = sealing.read_photo(settings, row.id, row.path)
        except FileNotFoundError:
            raise outbox.Unsendable("the photo file is missing") from None
        except (InvalidTag, ValueError):
            raise outbox.Unsendable("the photo cannot be opened with this secret key") from None
        params = {
            "id": row.id,
            "kiosk_id": kiosk_id,
            "receipt": row.receipt,
            "material": row.material,
            "sha256": row.sha256,
            "created_at": _iso(row.created_at) or "",
        }
        content_type = row.content_type
    timeout = min(MAX_UPLOAD_TIMEOUT_S, 10.0 + len(data) / UPLOAD_BYTES_PER_SECOND)
    return outbox.Outbound(
        MATERIAL_PATH, content=data, params=params, headers={"Content-Type": content_type}, timeout_s=timeout
    )


# ------------------------------------------------------------ after delivery
def forget_preapplication(settings: Settings, message: outbox.Pending) -> None:
    """The central server has the pre-application: its fields leave the kiosk."""
    with session_factory(settings.db_url)() as session:
        session.execute(
            update(Preapplication)
            .where(Preapplication.message_id == message.id, Preapplication.fields_sealed.is_not(None))
            .values(fields_sealed=None, purged_at=utcnow())
        )
        session.commit()
    logger.info("kiosk.prefill.forgotten kind=preapplication id=%s", message.id)


def forget_material(settings: Settings, message: outbox.Pending) -> None:
    """The central server has the photo: its file leaves the kiosk."""
    with session_factory(settings.db_url)() as session:
        row = session.get(PreapplicationMaterial, message.id)
        if row is None or row.path is None:
            return
        sealing.delete_photo(settings, row.path)
        row.path = None
        row.purged_at = utcnow()
        session.commit()
    logger.info("kiosk.prefill.forgotten kind=material id=%s", message.id)


def forget_delivered(settings: Settings) -> Tuple[int, int]:
    """Catch up: delete the personal data of everything the central server confirmed
    (normally done at each delivery). Returns (pre-applications, photos)."""
    with session_factory(settings.db_url)() as session:
        forms = session.execute(
            select(Preapplication.message_id)
            .join(OutboxMessage, OutboxMessage.id == Preapplication.message_id)
            .where(OutboxMessage.delivered_at.is_not(None), Preapplication.fields_sealed.is_not(None))
        ).scalars().all()
        photos = session.execute(
            select(PreapplicationMaterial.id)
            .join(OutboxMessage, OutboxMessage.id == PreapplicationMaterial.id)
            .where(OutboxMessage.delivered_at.is_not(None), PreapplicationMaterial.path.is_not(None))
        ).scalars().all()
    for message_id in forms:
        forget_preapplication(settings, outbox.Pending(message_id, KIND_PREAPPLICATION, {}, utcnow(), 0))
    for message_id in photos:
        forget_material(settings, outbox.Pending(message_id, KIND_MATERIAL, {}, utcnow(), 0))
    return len(forms), len(photos)


outbox.register_kind(KIND_PREAPPLICATION, build_preapplication, forget_preapplication)
outbox.register_kind(KIND_MATERIAL, build_material, forget_material)
