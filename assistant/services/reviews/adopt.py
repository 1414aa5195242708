"""What accepting a review does with it, and where each accepted review went.

- Assigned to a catalog item: its text, without personal data (``strip_pii``: even
  masked numbers and names are cut out), becomes a situation of the item through a
  catalog revision (``knowledge.revisions.publish_change``: the same validation as
  ``/admin/catalog``, author the admin, reason ``审核采纳：<review id>…``). Every replica
  takes it up live and the item linker links the text without retraining; it shows in
  the item's history with one-click revert. Nothing is published for a text that is
  already a situation or an alias, names the service (the catalog's rule), is
  a near-miss of the item, is too short or too long, or when the item has
  ``max_situations`` already: the reason is said instead (:class:`Adoption`).
- Assigned an intent: a training example of the next ``banshi train``
  (``assistant.dialogue.reviewed``).

:func:`destinations` says, for accepted reviews, where they went: the situation and its
revision (or that it was reverted since), the training example waiting for the next
training or in the model of a run, the list of questions not covered.
All functions are blocking.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Tuple
from zoneinfo import ZoneInfo

from sqlalchemy import select

from assistant.config.settings import Settings
from assistant.dialogue import reviewed
from assistant.services.reviews.config import TUNABLES
from assistant.services.reviews.queue import ReviewError
from assistant.storage import training_tables
from assistant.storage.catalog_tables import CatalogRevision
from assistant.storage.database import session_factory
from knowledge import problems_zh, revisions
from knowledge.catalog import Catalog
from knowledge.schema import short_name

logger = logging.getLogger(__name__)

REASON_PREFIX = "审核采纳："
REASON = REASON_PREFIX + "{review_id}（添加情形「{text}」）"
_REASON_ID = re.compile("^" + REASON_PREFIX + r"(\d+)")
_FOLD = re.compile(r"[\W_]+")

ADDED, PRESENT, SKIPPED = "added", "present", "skipped"
KIND_SITUATION, KIND_TRAINING, KIND_NOT_COVERED = "situation", "training", "not_covered"
# Why a text is not added as a situation (for people: shown on the page).
NOTHING_LEFT = "去掉个人信息后没有可用的文字，未添加为情形"
TOO_SHORT = "文字太短（不足{n}个字），未添加为情形"
TOO_LONG = "文字超过{n}个字，不适合直接作为情形；如需要，请在目录管理页面精简后添加"
ALREADY = "事项「{name}」已有这条情形"
AN_ALIAS = "这句话是事项「{name}」的别名，已能直接识别，未添加为情形"
OTHER_SITUATION = "这句话已是事项「{name}」的情形，未添加，以免两个事项混淆"
NAMES_SERVICE = "这句话提到了事项名称「{name}」，按目录规则情形不写事项名称（写了名称已能识别），未添加为情形"
NEAR_MISS = "这句话在事项「{name}」的“不是本事项”示例中，未添加为情形"
FULL = "事项「{name}」已有{n}条情形，达到上限，未再添加；请先在目录管理页面整理"
REFUSED = "这句话作为事项「{name}」的情形未通过目录校验，尚未采纳：{problem}"
ADDED_LIVE = "已添加为事项「{name}」的情形「{text}」（目录修订 #{revision}，各网关实时生效）"
REVERTED = "曾添加为事项「{name}」的情形「{text}」（目录修订 #{revision}），此后已撤回"
NOT_ADDED_EARLIER = "采纳时尚未自动添加为情形"
TRAINING_WAITING = "训练样例（意图 {intent}）：等待下次训练"
TRAINING_IN_MODEL = "训练样例（意图 {intent}）：已包含在 {day} 训练的模型中（训练完成后各网关自动启用）"
TRAINING_KNOWN = "训练数据中已有这句话，无需再作训练样例"
TRAINING_NOTHING = "去掉个人信息后没有可作训练样例的文字"
NOT_COVERED_LIST = "已记入“目录未收录”的问题（导出文件 not_covered_reviewed.yml）"


@dataclass(frozen=True)
class Adoption:
    """What became of a text accepted for an item: ``status`` added (``revision``),
    present (a situation already) or skipped; ``message`` says it for people."""

    item_id: str
    status: str
    text: str
    message: str
    revision: Optional[int] = None

    def public(self) -> Dict[str, Any]:
        return asdict(self)


def fold(text: str) -> str:
    return _FOLD.sub("", text).lower()


def situation_text(text: str) -> str:
    """The review's text as a situation: one line without personal data."""
    return reviewed.example_text(text)


def _name(catalog: Catalog, item_id: str) -> str:
    record = catalog.get(item_id)
    return record.name if record is not None else item_id


_indexed: Dict[str, Tuple[Dict[str, str], Dict[str, List[Tuple[str, str]]]]] = {}


def _index(catalog: Catalog) -> Tuple[Dict[str, str], Dict[str, List[Tuple[str, str]]]]:
    """(folded alias or name → the record's name, folded situation → [(record id, name)])
    of a catalog version, built once per version."""
    found = _indexed.get(catalog.fingerprint)
    if found is None:
        aliases: Dict[str, str] = {}
        owners: Dict[str, List[Tuple[str, str]]] = {}
        for record in catalog.items():
            for alias in (*record.aliases, record.name):
                aliases.setdefault(fold(alias), record.name)
            for situation in record.situations:
                owners.setdefault(fold(situation), []).append((record.id, record.name))
        found = (aliases, owners)
        _indexed.clear()  # the version in use only
        _indexed[catalog.fingerprint] = found
    return found


def plan(catalog: Catalog, document: Dict[str, Any], text: str) -> Tuple[str, str]:
    """(status, message) of ``text`` as a new situation of the record ``document`` (the
    record in effect); status ADDED means: to be added."""
    name = str(document.get("name") or document.get("id"))
    if not text:
        return SKIPPED, NOTHING_LEFT
    if len(text) < TUNABLES.situation_min_chars:
        return SKIPPED, TOO_SHORT.format(n=TUNABLES.situation_min_chars)
    if len(text) > TUNABLES.situation_max_chars:
        return SKIPPED, TOO_LONG.format(n=TUNABLES.situation_max_chars)
    key = fold(text)
    situations = [str(s) for s in document.get("situations") or []]
    if key in {fold(s) for s in situations}:
        return PRESENT, ALREADY.format(name=name)
    aliases, owners = _index(catalog)
    if key in aliases:
        return SKIPPED, AN_ALIAS.format(name=aliases[key])
    other = next((owner for record_id, owner in owners.get(key, ()) if record_id != document.get("id")), None)
    if other is not None:
        return SKIPPED, OTHER_SITUATION.format(name=other)
    short = short_name(name)
    if short and short in text:
        return SKIPPED, NAMES_SERVICE.format(name=short)
    if key in {fold(str(n.get("text") or "")) for n in document.get("not_this") or [] if isinstance(n, dict)}:
        return SKIPPED, NEAR_MISS.format(name=name)
    if len(situations) >= TUNABLES.max_situations:
        return SKIPPED, FULL.format(name=name, n=len(situations))
    return ADDED, ""


def adopt(settings: Settings, catalog: Catalog, review_id: int, item_id: str, text: str, author: str) -> Adoption:
    """Publish ``text`` (a review's masked text) as a situation of ``item_id`` unless
    :func:`plan` says otherwise. ReviewError (422) when the catalog's validation refuses
    it: then nothing is published and the review is not accepted."""
    situation = situation_text(text)
    decided: Dict[str, str] = {}

    def change(document: Dict[str, Any]) -> Any:
        status, message = plan(catalog, document, situation)
        decided.update(status=status, message=message)
        if status != ADDED:
            return revisions.NO_CHANGE
        document["situations"] = [*(document.get("situations") or []), situation]
        return document

    reason = REASON.format(review_id=review_id, text=situation[:60])
    try:
        revision, _, _ = revisions.publish_change(
            settings.db_url, settings.catalog_dir, settings.region_override, item_id, change, author, reason
        )
    except revisions.RevisionError as exc:
        problem = problems_zh.explain(exc.problems[0]) if exc.problems else ""
        raise ReviewError(REFUSED.format(name=_name(catalog, item_id), problem=problem)) from None
    if decided["status"] != ADDED:
        logger.info("reviews.adopt.skipped id=%s item=%s status=%s", review_id, item_id, decided["status"])
        return Adoption(item_id, decided["status"], situation, decided["message"])
    logger.info("reviews.adopt.published id=%s item=%s revision=%s", review_id, item_id, revision)
    return Adoption(item_id, ADDED, situation,
                    ADDED_LIVE.format(name=_name(catalog, item_id), text=situation, revision=revision), revision)


# ------------------------------------------------------------- destinations
def _revisions_of(db_url: str, item_ids: List[str]) -> Dict[int, int]:
    """``{review id: revision id}`` of the situations accepting published."""
    if not item_ids:
        return {}
    r = CatalogRevision
    query = select(r.id, r.reason).where(r.record_id.in_(item_ids), r.reason.like(REASON_PREFIX + "%"))
    found: Dict[int, int] = {}
    with session_factory(db_url)() as session:
        for revision, reason in session.execute(query).all():
            matched = _REASON_ID.match(reason or "")
            if matched:
                found.setdefault(int(matched.group(1)), int(revision))
    return found


def _training_runs(db_url: str) -> List[Tuple[dt.datetime, dt.datetime]]:
    """(started, finished) of the succeeded training runs, oldest first (UTC)."""
    t = training_tables.TrainingRun
    query = select(t.started_at, t.finished_at).where(t.status == training_tables.STATUS_SUCCEEDED).order_by(t.started_at)
    with session_factory(db_url)() as session:
        return [(started, finished or started) for started, finished in session.execute(query).all()]


def _utc(iso: Optional[str]) -> Optional[dt.datetime]:
    return dt.datetime.fromisoformat(iso).astimezone(dt.timezone.utc).replace(tzinfo=None) if iso else None


def _situation(catalog: Catalog, item: Dict[str, Any], revision: Optional[int]) -> str:
    item_id = item["assigned_item"]
    name = _name(catalog, item_id)
    text = situation_text(item["text"])
    record = catalog.get(item_id)
    present = record is not None and fold(text) in {fold(s) for s in record.situations}
    if revision is not None:
        return (ADDED_LIVE if present else REVERTED).format(name=name, text=text, revision=revision)
    if record is None:
        return NOT_ADDED_EARLIER
    status, message = plan(catalog, revisions.record_document(record), text)
    return NOT_ADDED_EARLIER if status == ADDED else message


def _training(item: Dict[str, Any], runs: List[Tuple[dt.datetime, dt.datetime]], zone: ZoneInfo) -> str:
    example = reviewed.example_text(item["text"])
    if not example:
        return TRAINING_NOTHING
    if example in reviewed.taken_now():
        return TRAINING_KNOWN
    accepted_at = _utc(item.get("done_at"))
    finished = next((end for start, end in runs if accepted_at is not None and start >= accepted_at), None)
    if finished is None:
        return TRAINING_WAITING.format(intent=item["assigned_intent"])
    day = finished.replace(tzinfo=dt.timezone.utc).astimezone(zone).date().isoformat()
    return TRAINING_IN_MODEL.format(intent=item["assigned_intent"], day=day)


def destinations(settings: Settings, catalog: Catalog, items: List[Dict[str, Any]]) -> None:
    """Add ``destinations`` (``[{kind, text}]``) to each accepted review of ``items``
    (as ``queue.as_dict`` makes them)."""
    accepted = [item for item in items if item.get("outcome") == "accepted"]
    if not accepted:
        return
    found = _revisions_of(settings.db_url, sorted({i["assigned_item"] for i in accepted if i["assigned_item"]}))
    runs = _training_runs(settings.db_url) if any(i["assigned_intent"] for i in accepted) else []
    zone = ZoneInfo(settings.timezone)
    for item in accepted:
        out: List[Dict[str, str]] = []
        if item["assigned_item"]:
            out.append({"kind": KIND_SITUATION, "text": _situation(catalog, item, found.get(item["id"]))})
        if item["assigned_intent"]:
            out.append({"kind": KIND_TRAINING, "text": _training(item, runs, zone)})
        if item["not_covered"]:
            out.append({"kind": KIND_NOT_COVERED, "text": NOT_COVERED_LIST})
        item["destinations"] = out
