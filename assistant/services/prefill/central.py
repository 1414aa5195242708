"""The central server's side of kiosk pre-applications: what the inbox receives (the
pre-application as JSON, each photo as its bytes; each applied once by its message id),
stored sealed and linked by the receipt number; opened for operators (the caller
audits); looked up by receipt number from any channel; and purged after the retention
period (``prefill_retention_days``). ``purge`` also does the kiosk's catch-up and
removes sealed files that no row refers to.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from cryptography.exceptions import InvalidTag
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from assistant.config.settings import Settings
from assistant.security.pii import is_receipt_number
from assistant.services.prefill import receipts, sealing
from assistant.services.prefill.kiosk import forget_delivered
from assistant.services.prefill.photos import CONTENT_TYPES, PhotoLimits, check_photo
from assistant.services.progress.records import mask_name
from assistant.storage.database import session_factory, utcnow
from assistant.storage.tables import InboxMessage, OutboxMessage, Preapplication, PreapplicationMaterial
from knowledge.prefill import FIELD_ID, MAX_FIELDS

logger = logging.getLogger(__name__)

KIND_MATERIAL = "material"
MAX_VALUE_CHARS = 500
MAX_MATERIALS = 20
MAX_MATERIAL_CHARS = 64
_FIELD_ID_RE = re.compile(FIELD_ID)
_ITEM_ID_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
ORPHAN_AGE = dt.timedelta(days=1)  # sealed files without a row are removed after this

STATE_PENDING = "pending"  # still at the kiosk (looked up at the kiosk)
STATE_RECEIVED = "received"  # the central server has it

CONFLICT = "回执号已被其他自助终端使用"
BAD_PHOTO_HASH = "照片在传输中损坏"
NO_PREAPPLICATION = "该回执号的预申请还没有送达，请先提交预申请"


class ReceiptConflict(Exception):
    """The receipt number belongs to another kiosk's or message's pre-application."""


class NoPreapplication(Exception):
    """A photo for a receipt number whose pre-application has not arrived."""


# -------------------------------------------------------------- validation
def check_payload(payload: Dict[str, Any]) -> None:
    """A pre-application from a kiosk, bounded (the kiosk checked the values against
    its form; forms may differ between versions, so only the shape is checked here)."""
    receipt = payload.get("receipt")
    if not isinstance(receipt, str) or not is_receipt_number(receipt):
        raise ValueError("payload.receipt 格式不正确")
    item_id = payload.get("item_id")
    if not isinstance(item_id, str) or not _ITEM_ID_RE.match(item_id):
        raise ValueError("payload.item_id 格式不正确")
    fields = payload.get("fields")
    if not isinstance(fields, dict) or not fields or len(fields) > MAX_FIELDS:
        raise ValueError(f"payload.fields 必须是1到{MAX_FIELDS}项的对象")
    for key, value in fields.items():
        if not _FIELD_ID_RE.match(key) or not isinstance(value, str) or not 0 < len(value) <= MAX_VALUE_CHARS:
            raise ValueError("payload.fields 的内容格式不正确")
    materials = payload.get("materials", 0)
    if not isinstance(materials, int) or isinstance(materials, bool) or not 0 <= materials <= MAX_MATERIALS:
        raise ValueError(f"payload.materials 必须是0到{MAX_MATERIALS}的整数")
    applicant = payload.get("applicant_masked")
    if applicant is not None and (not isinstance(applicant, str) or len(applicant) > 64):
        raise ValueError("payload.applicant_masked 格式不正确")
    created = payload.get("created_at")
    if created is not None and _parse_time(created) is None:
        raise ValueError("payload.created_at 格式不正确")


def _parse_time(value: Any) -> Optional[dt.datetime]:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return parsed


def stored_payload(payload: Dict[str, Any]) -> Dict[str, Any]:
    """What the inbox keeps of a pre-application message: no field values."""
    return {
        "receipt": payload.get("receipt"),
        "item_id": payload.get("item_id"),
        "fields": sorted((payload.get("fields") or {}).keys()),
        "materials": payload.get("materials", 0),
    }


# ----------------------------------------------------------------- inbound
def apply_preapplication_in(session, settings: Settings, kiosk_id: str, message_id: str, payload: Dict[str, Any]) -> str:
    """Store a pre-application inside the inbox's transaction. Returns the inbox ref."""
    receipt = payload["receipt"]
    existing = session.get(Preapplication, receipt)
    if existing is not None:
        raise ReceiptConflict(receipt)
    _, day, seq = receipts.parse_receipt(receipt)
    applicant = payload.get("applicant_masked")
    now = utcnow()
    session.add(
        Preapplication(
            receipt=receipt,
            kiosk_id=kiosk_id,
            day=day,
            seq=seq,
            item_id=payload["item_id"],
            fields_sealed=sealing.seal_fields(settings.secret(), receipt, dict(payload["fields"])),
            applicant_masked=mask_name(applicant) if applicant else None,
            materials=int(payload.get("materials", 0)),
            message_id=message_id,
            created_at=_parse_time(payload.get("created_at")) or now,
            received_at=now,
        )
    )
    session.flush()
    return f"preapplication:{receipt}"


@dataclass(frozen=True)
class MaterialUpload:
    id: str
    kiosk_id: str
    receipt: str
    material: str
    sha256: str
    content_type: str
    created_at: Optional[dt.datetime]
    data: bytes


def check_material(settings: Settings, upload: MaterialUpload) -> Tuple[int, int]:
    """Bounds and integrity of a photo from a kiosk: (width, height). ``PhotoRefused``
    for a photo that is not one; ``ValueError`` for a damaged transfer."""
    if hashlib.sha256(upload.data).hexdigest() != upload.sha256:
        raise ValueError(BAD_PHOTO_HASH)
    photo = check_photo(upload.data, PhotoLimits.of(settings))
    if photo.content_type != upload.content_type:
        raise ValueError("照片格式与声明的不一致")
    return photo.width, photo.height


def store_material(settings: Settings, upload: MaterialUpload, size: Tuple[int, int]) -> Tuple[bool, Optional[str]]:
    """Store a photo once by its message id: (True, ref) the first time, (False, ref) after.

    The sealed file is written first (under a name from the id, atomically); the inbox
    row and the material row are then committed together. A repeated id whose first
    attempt committed is answered from the rows without writing anything. A photo is
    taken only for a pre-application of the same kiosk that arrived before it
    (``NoPreapplication``, ``ReceiptConflict``): photos never join another's receipt.
    """
    if upload.content_type not in CONTENT_TYPES or not _SHA256_RE.match(upload.sha256):
        raise ValueError("照片格式不正确")
    ref = f"material:{upload.id}"
    with session_factory(settings.db_url)() as session:
        existing = session.get(InboxMessage, upload.id)
        if existing is not None:
            return False, existing.result_ref
        form = session.get(Preapplication, upload.receipt)
        if form is None or form.received_at is None:
            raise NoPreapplication(upload.receipt)
        if form.kiosk_id != upload.kiosk_id:
            raise ReceiptConflict(upload.receipt)
    relative = sealing.write_photo(settings, upload.id, upload.data)
    now = utcnow()
    with session_factory(settings.db_url)() as session:
        session.add(
            InboxMessage(
                id=upload.id,
                kiosk_id=upload.kiosk_id,
                kind=KIND_MATERIAL,
                payload=f'{{"receipt":"{upload.receipt}","material_id":"{upload.id}"}}',
                sent_at=upload.created_at,
                received_at=now,
                result_ref=ref,
            )
        )
        session.add(
            PreapplicationMaterial(
                id=upload.id,
                receipt=upload.receipt,
                material=upload.material,
                content_type=upload.content_type,
                size=len(upload.data),
                width=size[0],
                height=size[1],
                sha256=upload.sha256,
                path=relative,
                created_at=upload.created_at or now,
                received_at=now,
            )
        )
        try:
            session.commit()
        except IntegrityError:  # a concurrent delivery of the same id won; its file is as good
            session.rollback()
            existing = session.get(InboxMessage, upload.id)
            return False, existing.result_ref if existing is not None else ref
    return True, ref


# ------------------------------------------------------------------- lookup
@dataclass(frozen=True)
class ReceiptView:
    """What anyone may learn from a receipt number: no personal data."""

    receipt: str
    item_id: str
    state: str  # pending | received
    created_at: dt.datetime
    received_at: Optional[dt.datetime]
    materials: int
    materials_received: int
    purged: bool


def find_receipt(db_url: str, receipt: str) -> Optional[ReceiptView]:
    """The pre-application with this receipt number, on this server (kiosk or central)."""
    if not is_receipt_number(receipt):
        return None
    with session_factory(db_url)() as session:
        row = session.get(Preapplication, receipt)
        if row is None:
            return None
        if row.received_at is not None:  # the central server (or stored directly)
            state = STATE_RECEIVED
            received = int(
                session.execute(
                    select(func.count()).select_from(PreapplicationMaterial).where(
                        PreapplicationMaterial.receipt == receipt, PreapplicationMaterial.received_at.is_not(None)
                    )
                ).scalar_one()
            )
            received_at = row.received_at
        else:  # the kiosk: delivered when the outbox says so
            message = session.get(OutboxMessage, row.message_id) if row.message_id else None
            received_at = message.delivered_at if message is not None else None
            state = STATE_RECEIVED if received_at is not None else STATE_PENDING
            received = int(
                session.execute(
                    select(func.count())
                    .select_from(PreapplicationMaterial)
                    .join(OutboxMessage, OutboxMessage.id == PreapplicationMaterial.id)
                    .where(PreapplicationMaterial.receipt == receipt, OutboxMessage.delivered_at.is_not(None))
                ).scalar_one()
            )
        return ReceiptView(
            receipt=row.receipt,
            item_id=row.item_id,
            state=state,
            created_at=row.created_at,
            received_at=received_at,
            materials=row.materials,
            materials_received=received,
            purged=row.fields_sealed is None and row.received_at is not None,
        )


# ---------------------------------------------------------------- operators
def list_received(db_url: str, limit: int = 50) -> List[Dict[str, Any]]:
    """The newest pre-applications received, without personal data (masked applicant)."""
    limit = max(1, min(int(limit), 500))
    with session_factory(db_url)() as session:
        rows = session.execute(
            select(Preapplication)
            .where(Preapplication.received_at.is_not(None))
            .order_by(Preapplication.received_at.desc(), Preapplication.receipt)
            .limit(limit)
        ).scalars().all()
        counts = dict(
            session.execute(
                select(PreapplicationMaterial.receipt, func.count())
                .where(PreapplicationMaterial.receipt.in_([r.receipt for r in rows]))
                .where(PreapplicationMaterial.path.is_not(None))
                .group_by(PreapplicationMaterial.receipt)
            ).all()
        )
    return [
        {
            "receipt": r.receipt,
            "kiosk_id": r.kiosk_id,
            "item_id": r.item_id,
            "applicant": r.applicant_masked,
            "created_at": r.created_at,
            "received_at": r.received_at,
            "materials": r.materials,
            "photos": int(counts.get(r.receipt, 0)),
            "purged": r.fields_sealed is None,
        }
        for r in rows
    ]


class Unavailable(Exception):
    """The data is gone (purged) or cannot be opened with this server's key."""


def open_received(settings: Settings, receipt: str) -> Optional[Dict[str, Any]]:
    """A received pre-application with its fields opened (the caller audits), or None."""
    with session_factory(settings.db_url)() as session:
        row = session.get(Preapplication, receipt)
        if row is None or row.received_at is None:
            return None
        photos = session.execute(
            select(PreapplicationMaterial)
            .where(PreapplicationMaterial.receipt == receipt)
            .order_by(PreapplicationMaterial.created_at, PreapplicationMaterial.id)
        ).scalars().all()
        fields: Optional[Dict[str, str]] = None
        if row.fields_sealed is not None:
            try:
                fields = sealing.open_fields(settings.secret(), receipt, row.fields_sealed)
            except (InvalidTag, ValueError):
                raise Unavailable(receipt) from None
        return {
            "receipt": row.receipt,
            "kiosk_id": row.kiosk_id,
            "item_id": row.item_id,
            "applicant": row.applicant_masked,
            "fields": fields,
            "created_at": row.created_at,
            "received_at": row.received_at,
            "materials": row.materials,
            "photos": [
                {
                    "id": p.id,
                    "material": p.material,
                    "content_type": p.content_type,
                    "size": p.size,
                    "width": p.width,
                    "height": p.height,
                    "available": p.path is not None,
                }
                for p in photos
            ],
        }


def open_photo(settings: Settings, receipt: str, photo_id: str) -> Optional[Tuple[str, bytes]]:
    """(content type, bytes) of a received photo (the caller audits); None when unknown."""
    with session_factory(settings.db_url)() as session:
        row = session.get(PreapplicationMaterial, photo_id)
        if row is None or row.receipt != receipt or row.received_at is None:
            return None
        if row.path is None:
            raise Unavailable(photo_id)
        try:
            return row.content_type, sealing.read_photo(settings, row.id, row.path)
        except (FileNotFoundError, InvalidTag, ValueError):
            raise Unavailable(photo_id) from None


# -------------------------------------------------------------------- purge
@dataclass
class PurgeReport:
    fields: int = 0  # pre-applications whose fields were deleted
    photos: int = 0  # photo files deleted
    orphans: int = 0  # sealed files without a row, deleted


def purge(settings: Settings, now: Optional[dt.datetime] = None) -> PurgeReport:
    """Delete personal data that is no longer needed: on the central server what was
    received more than ``prefill_retention_days`` ago; on a kiosk what the central server
    confirmed; everywhere sealed files that no row refers to (older than a day)."""
    now = now or utcnow()
    cutoff = now - dt.timedelta(days=settings.prefill_retention_days)
    report = PurgeReport()
    with session_factory(settings.db_url)() as session:
        result = session.execute(
            update(Preapplication)
            .where(Preapplication.received_at < cutoff, Preapplication.fields_sealed.is_not(None))
            .values(fields_sealed=None, purged_at=now)
        )
        report.fields = int(result.rowcount or 0)
        old = session.execute(
            select(PreapplicationMaterial).where(
                PreapplicationMaterial.received_at < cutoff, PreapplicationMaterial.path.is_not(None)
            )
        ).scalars().all()
        for row in old:
            sealing.delete_photo(settings, row.path)
            row.path = None
            row.purged_at = now
            report.photos += 1
        session.commit()
        known = set(session.execute(select(PreapplicationMaterial.path).where(PreapplicationMaterial.path.is_not(None))).scalars())
    kiosk_fields, kiosk_photos = forget_delivered(settings)
    report.fields += kiosk_fields
    report.photos += kiosk_photos
    directory = sealing.files_dir(settings)
    if directory.is_dir():
        for path in directory.iterdir():
            relative = f"{sealing.FILES_DIR}/{path.name}"
            if relative in known or not path.is_file():
                continue
            age = now - dt.datetime.utcfromtimestamp(path.stat().st_mtime)
            if age > ORPHAN_AGE:
                path.unlink(missing_ok=True)
                report.orphans += 1
    if report.fields or report.photos or report.orphans:
        logger.info(
            "prefill.purged fields=%d photos=%d orphans=%d", report.fields, report.photos, report.orphans
        )
    return report
