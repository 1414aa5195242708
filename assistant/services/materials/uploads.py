"""Missing materials handed in by photo or PDF (补交材料): accepted, stored, forwarded,
shown, deleted.

A conversation that has just verified an application (``progress/grants.py``) may send
a photo or PDF of each material the application is missing (status 需补正). Each upload
is checked by content before anything is stored (``inspect.py``: type, size, pixels,
pages, scripts), pre-checked offline (``precheck.py``: document type, readable,
expired, name), then

* the file is encrypted at rest (AES-GCM, key derived from the secret key for this
  purpose, the upload id as associated data) under ``data_dir/uploads/<id>.bin``;
* a ``material_uploads`` row links it to the application and the material, with the
  pre-check's verdict and flags and the OCR text (personal numbers masked, sealed);
* it is handed on to the case-management system (``forward.py``), now and, after a
  failure, by ``forwarding.forward_due`` with back-off;
* every access (store, list, view, delete, purge) is audited; files are deleted after
  ``upload_retention_days`` by :func:`purge` (the row stays, marked deleted).

A doubtful pre-check is accepted with its flags for the operator, never silently refused.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from cryptography.exceptions import InvalidTag
from sqlalchemy import select

from assistant.config.settings import Settings
from assistant.security.audit import citizen_actor, record_audit
from assistant.security.pii import mask_pii
from assistant.security.sealed import seal, unseal
from assistant.services.materials import forwarding, inspect, ocr, precheck, vault
from assistant.services.materials.forward import CaseSystem
from assistant.services.progress import grants
from assistant.services.progress.providers import ProgressProvider, ProgressUnavailable
from assistant.storage.database import session_factory, utcnow
from assistant.storage.tables import STATUS_SUPPLEMENT, MaterialUpload

logger = logging.getLogger(__name__)

TEXT_PURPOSE = "material-upload-text"
MAX_MATERIAL_CHARS = 100
MAX_TEXT_CHARS = 4000  # of the OCR text kept for the operator
ORPHAN_SECONDS = 3600  # a file this old without its row is a leftover

AUDIT_STORE = "materials.upload.store"
AUDIT_REFUSE = "materials.upload.refuse"
AUDIT_LIST = "materials.upload.list"
AUDIT_VIEW = "materials.upload.view"
AUDIT_DELETE = "materials.upload.delete"
AUDIT_PURGE = "materials.upload.purge"
RETENTION_ACTOR = "system:retention"

NOT_VERIFIED = "请先核实办件信息（受理编号和手机尾号），再上传材料。"
NOT_NEEDED = "编号 {number} 的办件目前不需要补交材料。"
CHOOSE_MATERIAL = "请选择您要补交的是哪一项材料：{names}。"
UNKNOWN_MATERIAL = "“{name}”不在需要补交的材料里。需要补交的是：{names}。"
SYSTEM_DOWN = "办件系统暂时无法查询，请稍后再上传，或拨打12345政务服务便民热线。"
RECEIVED = "已收到您补交的“{material}”，已转交工作人员审核。"
RECEIVED_LATER = "已收到您补交的“{material}”，稍后会转交工作人员审核。"


class UploadError(Exception):
    """An upload that is not taken: HTTP ``status`` and a message for the citizen."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class Wanted:
    """What a verified conversation may hand in."""

    number: str
    status: str
    applicant_masked: str
    missing: List[str]  # still missing (the case system's list)
    uploaded: List[Dict[str, Any]] = field(default_factory=list)  # earlier uploads, newest first

    @property
    def accepted(self) -> List[str]:
        """Materials an upload may be for: the missing ones, and any sent before (a better photo)."""
        names = list(self.missing)
        for row in reversed(self.uploaded):
            if row["material"] not in names:
                names.append(row["material"])
        return names


@dataclass
class Stored:
    id: str
    number: str
    material: str
    verdict: str
    reasons: List[str]
    message: str
    forwarded: bool


# ------------------------------------------------------------------- limits
def limits_of(settings: Settings) -> inspect.UploadLimits:
    return inspect.UploadLimits(
        max_bytes=settings.upload_max_bytes,
        max_pixels=settings.upload_max_pixels,
        max_pages=settings.upload_max_pages,
        max_side=settings.upload_max_side,
    )


# ---------------------------------------------------------------- the wanted
def _uploads_of(db_url: str, number: str) -> List[Dict[str, Any]]:
    with session_factory(db_url)() as session:
        rows = session.execute(
            select(MaterialUpload)
            .where(MaterialUpload.number == number, MaterialUpload.deleted_at.is_(None))
            .order_by(MaterialUpload.created_at.desc())
        ).scalars().all()
        return [_public(row) for row in rows]


async def wanted(settings: Settings, provider: ProgressProvider, sender_id: str) -> Wanted:
    """What this conversation may hand in; UploadError 403 without a grant, 503 when
    the progress system cannot answer."""
    number = await asyncio.to_thread(grants.granted, settings, sender_id)
    if number is None:
        raise UploadError(403, "not_verified", NOT_VERIFIED)
    try:
        view = await provider.lookup(number)
    except ProgressUnavailable:
        raise UploadError(503, "unavailable", SYSTEM_DOWN) from None
    if view is None:
        raise UploadError(403, "not_verified", NOT_VERIFIED)
    uploaded = await asyncio.to_thread(_uploads_of, settings.db_url, number)
    return Wanted(number, view.status, view.applicant_masked, view.missing_materials, uploaded)


def choose_material(wanted_: Wanted, name: Optional[str], guess: bool = False) -> Optional[str]:
    """The material an upload is for: the one named, or the only one wanted; None
    with ``guess`` when several are wanted (the pre-check's reading decides)."""
    accepted = wanted_.accepted
    if wanted_.status != STATUS_SUPPLEMENT or not accepted:
        raise UploadError(409, "not_needed", NOT_NEEDED.format(number=wanted_.number))
    names = "、".join(accepted)
    name = (name or "").strip()
    if not name:
        if len(wanted_.missing) == 1:
            return wanted_.missing[0]
        if not wanted_.missing and len(accepted) == 1:
            return accepted[0]
        if guess:
            return None
        raise UploadError(422, "choose_material", CHOOSE_MATERIAL.format(names=names))
    if name not in accepted:
        raise UploadError(422, "unknown_material", UNKNOWN_MATERIAL.format(name=name[:MAX_MATERIAL_CHARS], names=names))
    return name


# -------------------------------------------------------------------- store
def _insert(settings: Settings, row: MaterialUpload, data: bytes) -> None:
    """The encrypted file, then its row; no row without its file, no file left without its row."""
    vault.write_file(settings, row.id, data)
    try:
        with session_factory(settings.db_url)() as session:
            session.add(row)
            session.commit()
    except BaseException:
        vault.remove_file(settings, row.id)
        raise


def _audit(settings: Settings, actor: str, action: str, subject: Optional[str], channel: Optional[str],
           result: str) -> None:
    record_audit(settings.db_url, actor=actor, action=action, subject=subject, channel=channel, result=result[:32])


def guess_material(wanted_: Wanted, doc_type: Optional[str]) -> str:
    """The wanted material a document of ``doc_type`` is for; else the first missing one
    not handed in yet (photos tend to come in the order asked), else the first."""
    names = wanted_.missing or wanted_.accepted
    for name in names:
        if doc_type and precheck.expected_doc_type(name) == doc_type:
            return name
    sent = {row["material"] for row in wanted_.uploaded}
    return next((name for name in names if name not in sent), names[0])


async def _precheck(data: bytes, inspected: inspect.Inspected, wanted_: Wanted, chosen: Optional[str]
                    ) -> Tuple[str, precheck.Precheck]:
    if chosen is not None:
        return chosen, await precheck.precheck_upload(data, inspected, chosen, wanted_.applicant_masked)
    read = await ocr.ocr_upload(data, inspected)  # read once, then judged against the guessed material
    seen = await asyncio.to_thread(precheck.evaluate, read, None, wanted_.applicant_masked)
    chosen = guess_material(wanted_, seen.doc_type)
    return chosen, await asyncio.to_thread(precheck.evaluate, read, chosen, wanted_.applicant_masked)


async def store(settings: Settings, provider: ProgressProvider, case_system: CaseSystem, sender_id: str,
                channel: str, data: bytes, material: Optional[str], guess: bool = False) -> Stored:
    """Check, pre-check, store and forward one upload. UploadError when it is not taken
    (nothing is stored then). ``guess``: without a material named, several wanted, the
    document read decides (WeChat images, which cannot say which material they are)."""
    actor = citizen_actor(sender_id)
    try:
        wanted_ = await wanted(settings, provider, sender_id)
        chosen = choose_material(wanted_, material, guess)
        inspected = await asyncio.to_thread(inspect.inspect_upload, data, limits_of(settings))
    except UploadError as exc:
        await asyncio.to_thread(_audit, settings, actor, AUDIT_REFUSE, None, channel, exc.code)
        raise
    except inspect.UploadRefused as exc:
        await asyncio.to_thread(_audit, settings, actor, AUDIT_REFUSE, wanted_.number, channel, exc.code)
        raise UploadError(refused_status(exc.code), exc.code, exc.message) from None
    chosen, checked = await _precheck(data, inspected, wanted_, chosen)
    upload_id = str(uuid.uuid4())
    text = mask_pii(checked.text_masked or "")[:MAX_TEXT_CHARS]
    row = MaterialUpload(
        id=upload_id, number=wanted_.number, material=chosen, mime=inspected.mime, size=len(data),
        pages=inspected.pages or 1, width=inspected.width, height=inspected.height,
        doc_type=checked.doc_type, verdict=checked.verdict,
        reasons=json.dumps(list(checked.reasons), ensure_ascii=False),
        readable=checked.readable, expired=checked.expired, expiry=checked.expiry,
        name_matches=checked.name_matches,
        text_sealed=seal(settings.secret(), TEXT_PURPOSE, text) if text else None,
        channel=channel, sender_hash=grants.sender_key(settings, sender_id),
        created_at=utcnow(), next_forward_at=utcnow(),
    )
    await asyncio.to_thread(_insert, settings, row, data)
    await asyncio.to_thread(_audit, settings, actor, AUDIT_STORE, wanted_.number, channel, checked.verdict)
    logger.info("materials.upload.stored id=%s verdict=%s type=%s bytes=%d", upload_id, checked.verdict,
                checked.doc_type, len(data))
    forwarded = await forwarding.forward_one(settings, case_system, upload_id, data)
    message = (RECEIVED if forwarded else RECEIVED_LATER).format(material=chosen)
    return Stored(upload_id, wanted_.number, chosen, checked.verdict, list(checked.reasons),
                  f"{checked.message}\n{message}" if checked.message else message, forwarded)


def refused_status(code: str) -> int:
    """The HTTP status of an inspection refusal: 413 too big, 415 not a photo or PDF, else 422."""
    if code in (inspect.TOO_LARGE, inspect.TOO_MANY_PIXELS, inspect.TOO_MANY_PAGES):
        return 413
    if code == inspect.NOT_ALLOWED_TYPE:
        return 415
    return 422


# ------------------------------------------------------------- desk access
def _public(row: MaterialUpload, text: Optional[str] = None) -> Dict[str, Any]:
    found = {
        "id": row.id, "number": row.number, "material": row.material, "mime": row.mime, "size": row.size,
        "pages": row.pages, "doc_type": row.doc_type, "verdict": row.verdict,
        "reasons": json.loads(row.reasons or "[]"), "readable": row.readable, "expired": row.expired,
        "expiry": row.expiry.isoformat() if row.expiry else None, "name_matches": row.name_matches,
        "channel": row.channel, "created_at": row.created_at.isoformat(timespec="seconds") + "Z",
        "forwarded": row.forwarded_at is not None, "deleted": row.deleted_at is not None,
    }
    if text is not None:
        found["text"] = text
    return found


def _text_of(settings: Settings, row: MaterialUpload) -> str:
    if not row.text_sealed:
        return ""
    try:
        return unseal(settings.secret(), TEXT_PURPOSE, row.text_sealed)
    except (InvalidTag, ValueError):  # sealed under another secret key
        logger.error("materials.upload.text_unreadable id=%s", row.id)
        return ""


def list_uploads(settings: Settings, number: str, actor: str) -> List[Dict[str, Any]]:
    """An application's uploads, newest first, with the masked OCR text (an audited read)."""
    with session_factory(settings.db_url)() as session:
        rows = session.execute(
            select(MaterialUpload).where(MaterialUpload.number == number)
            .order_by(MaterialUpload.created_at.desc())
        ).scalars().all()
        found = [_public(r, _text_of(settings, r)) for r in rows]
    _audit(settings, actor, AUDIT_LIST, number, "desk", "ok" if found else "none")
    return found


def open_upload(settings: Settings, upload_id: str, actor: str) -> Optional[Tuple[Dict[str, Any], bytes]]:
    """An upload's record and bytes (an audited read); None when unknown or deleted."""
    with session_factory(settings.db_url)() as session:
        row = session.get(MaterialUpload, upload_id)
    if row is None or row.deleted_at is not None:
        _audit(settings, actor, AUDIT_VIEW, row.number if row else None, "desk", "gone" if row else "not_found")
        return None
    try:
        data = vault.read_file(settings, upload_id)
    except (OSError, ValueError, InvalidTag):  # the file is gone or was sealed under another key
        logger.error("materials.upload.file_unreadable id=%s", upload_id)
        _audit(settings, actor, AUDIT_VIEW, row.number, "desk", "unreadable")
        return None
    _audit(settings, actor, AUDIT_VIEW, row.number, "desk", "ok")
    return _public(row), data


def delete_upload(settings: Settings, upload_id: str, actor: str, action: str = AUDIT_DELETE) -> bool:
    """Delete the file and mark the row (audited); False when unknown or already deleted."""
    with session_factory(settings.db_url)() as session:
        row = session.get(MaterialUpload, upload_id)
        if row is None or row.deleted_at is not None:
            return False
        row.deleted_at, row.next_forward_at, row.text_sealed = utcnow(), None, None
        number = row.number
        session.commit()
    vault.remove_file(settings, upload_id)
    _audit(settings, actor, action, number, None, "ok")
    logger.info("materials.upload.deleted id=%s by=%s", upload_id, action)
    return True


def _remove_orphans(settings: Settings) -> None:
    """Files without a live row (a crash between file and row, a half-written file)."""
    stale = vault.stale_files(settings, ORPHAN_SECONDS)
    if not stale:
        return
    with session_factory(settings.db_url)() as session:
        live = set(session.execute(select(MaterialUpload.id).where(
            MaterialUpload.id.in_([upload_id for upload_id, _ in stale]), MaterialUpload.deleted_at.is_(None),
        )).scalars())
    for upload_id, path in stale:
        if upload_id not in live or path.suffix != ".bin":
            path.unlink(missing_ok=True)
            logger.warning("materials.upload.orphan_removed id=%s", upload_id)


def purge(settings: Settings, now: Optional[dt.datetime] = None) -> int:
    """Delete the files older than ``upload_retention_days`` (and expired grants); how many files."""
    cutoff = (now or utcnow()) - dt.timedelta(days=settings.upload_retention_days)
    with session_factory(settings.db_url)() as session:
        old = session.execute(
            select(MaterialUpload.id).where(MaterialUpload.created_at < cutoff, MaterialUpload.deleted_at.is_(None))
        ).scalars().all()
    count = sum(delete_upload(settings, upload_id, RETENTION_ACTOR, AUDIT_PURGE) for upload_id in old)
    _remove_orphans(settings)
    grants.purge_expired(settings.db_url)
    if count:
        logger.info("materials.upload.purged count=%d days=%d", count, settings.upload_retention_days)
    return count
