"""The ticket draft (工单) of a hotline call, filled by rules from what was said.

* phone: a number read plainly in the transcript, else the one the digit recogniser
  heard in the audio (``digits.py``; ``phone_heard``: to be read back to the caller
  before the ticket is saved). In the transcript, spoken Chinese digits ("幺三八 幺二四五…", "一八六零…") become digits
  (``voice.dictation.DIGITS``; a lone digit word such as 一个/两天 stays a word),
  groups said apart are joined, and the last mobile (or landline) number said wins, as
  a caller who corrects a number says the right one last; digits said again after it
  with 不对/尾号… replace the ones they correct;
* name: after 我叫/名字叫/姓名, or 我是 + a surname, or 我姓X then a name starting with X;
* address: a run of place words ending in 区/路/街/号/小区… (the cue before it cut off);
* category: 投诉/建议/求助 by keywords (``callmode.yml``), else 咨询;
* summary: one paragraph from the item, the question type and the caller's own words
  (masked); answer given: the operator's words, else the first suggestion's answer.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence

from assistant.security.pii import LANDLINE_RE, MOBILE_RE, landline_number, mask_pii, mobile_number
from assistant.services.callmode.config import TUNABLES, DraftTunables
from knowledge.answers import QUESTION_LABELS
from voice.dictation import DIGITS

SPOKEN_DIGITS = {**DIGITS, "拐": "7"}
_HAN = "\u4e00-\u9fff"
_DIGIT_WORD_RUN = re.compile("[" + "".join(SPOKEN_DIGITS) + "]+")
_MEASURE_WORDS = set("个天年月次遍份位块岁趟下点")
_GROUP_GAP = re.compile(r"(?<=\d)[\s\-－—,，、.。]+(?=\d)")
# Digits said again after a number, to correct it: after 不对/错了/应该是…, or 尾号/最后
# (the end of the number). Not a whole number: that one is found as a number itself.
_CORRECTION = re.compile(
    r"(?:不对|错了|说错|不是|应该是|改成|改一下|更正"
    r"|(?P<tail>尾号|尾数|末尾|后几位|后四位|后面是|最后是|最后[一两几四]位))"
    r"[^\d]{0,6}?(?<!\d)(?P<digits>\d{1,8})(?!\d)"
    # Not a year, a date, an amount or a count ("应该是2019年办的", "不对 要300块").
    r"(?!\s*(?:年|月|日|号|元|块|天|次|个|岁|点|分|小时|周|万|千|百|多|左右))"
)
MIN_CORRECTION_DIGITS = 4  # a group of 4 (3-4-4); shorter ones only with 尾号…
# A local number (no area code) only after a cue: a bare 7-8 digit run in a call is as
# often a date, an amount or an application number (pii.py has no such datum).
_LOCAL = re.compile(r"(?:电话|号码|手机|联系|打)[^\d]{0,6}(?<!\d)([2-9]\d{6,7})(?!\d)")
# Wider than pii.NAME_CUE on purpose: these find the name to fill a ticket in, not to mask it.
_NAME_CUE = re.compile(rf"(?:我叫|我的名字叫|名字叫|名字是|姓名是|姓名|叫我)\s*([{_HAN}]{{2,4}})")
_I_AM = re.compile(rf"我是\s*([{_HAN}]{{2,4}})")
_SURNAME_CUE = re.compile(rf"(?:我姓|姓)\s*([{_HAN}]{{1,2}})")
# What cannot be part of a name said after a cue.
_NAME_STOP = re.compile(r"(电话|手机|号码|身份证|住在|住|家在|地址|今年|的|啊|呀|吧|呢|哈|嘛|哦|了|是|在|想|要|问|给|我|你|他|她)")
_NOT_NAME_CHARS = set("区路市县镇村街号的了吗呢吧啊想要在个人们这那")
_ADDRESS_SUFFIX = (
    "省|市|区|县|镇|乡|街道|大道|路|街|巷|胡同|村|小区|社区|花园|家园|新村|苑|大厦|广场"
)
_UNIT_SUFFIX = "号楼|号院|号|栋|幢|单元|室|楼"
_ADDRESS = re.compile(
    rf"[{_HAN}\d]{{1,10}}?(?:{_ADDRESS_SUFFIX})(?:[{_HAN}\d]{{0,10}}?(?:{_ADDRESS_SUFFIX}))*(?:[\d零一二三四五六七八九十百幺两]+(?:{_UNIT_SUFFIX}))*"
)
_STRONG_SUFFIX = re.compile(r"(区|路|街|巷|胡同|村|镇|县|小区|社区|号|栋|单元|大道|苑|花园|家园)")
# Words that end in a place suffix but are no address.
_NOT_ADDRESS = re.compile(r"(市民|热线|地区|误区|社区医院|服务区|办事大厅|政务区|大厅)$")
MIN_ADDRESS_CHARS = 4


@dataclass
class TicketDraft:
    """What the operator sees in the form (``caller_name`` is the full name: mask it
    when showing it, see :meth:`shown`)."""

    caller_name: Optional[str] = None
    phone: Optional[str] = None
    address: Optional[str] = None
    item_id: Optional[str] = None
    item_name: Optional[str] = None
    question_type: Optional[str] = None
    category: str = TUNABLES.draft.default_category
    summary: str = ""
    answer: str = ""
    # The phone number was heard by the digit recogniser, not read in the transcript:
    # the operator reads it back to the caller before saving.
    phone_heard: bool = False

    def shown(self) -> Dict[str, Any]:
        """The draft for the screen: the name masked (王**)."""
        data = asdict(self)
        data["caller_name"] = mask_name(self.caller_name)
        return data


def mask_name(name: Optional[str]) -> Optional[str]:
    if not name:
        return name
    return name[0] + "*" * max(1, len(name) - 1)


# ------------------------------------------------------------------- phone
def digits_of(text: str) -> str:
    """Spoken Chinese digits as digits (runs of two or more; a lone 一/两 is a word),
    digit groups said apart joined."""
    def convert(match: re.Match) -> str:
        run = match.group(0)
        # 一个/两天 after the number: the last digit word belongs to the measure word.
        kept = ""
        if match.end() < len(text) and text[match.end()] in _MEASURE_WORDS:
            run, kept = run[:-1], run[-1]
        if len(run) < 2:
            return match.group(0)
        return "".join(SPOKEN_DIGITS[c] for c in run) + kept

    return _GROUP_GAP.sub("", _DIGIT_WORD_RUN.sub(convert, text))


def find_phone(texts: Sequence[str]) -> Optional[str]:
    """The last phone number said: a mobile number, a landline with its area code, or a
    local number after a cue (电话/号码…), with the caller's corrections of some of its
    digits said after it applied ("不对 是七七四六", "尾号是幺六")."""
    joined = digits_of(" ".join(texts))
    found: List[tuple] = [(m.end("number"), mobile_number(m)) for m in MOBILE_RE.finditer(joined)]
    found.extend((m.end(), landline_number(m)) for m in LANDLINE_RE.finditer(joined))
    found.extend((m.end(1), m.group(1)) for m in _LOCAL.finditer(joined))
    if not found:
        return None
    end, number = max(found)
    for match in _CORRECTION.finditer(joined, end):
        number = corrected(number, match.group("digits"), tail=bool(match.group("tail")))
    return number


def corrected(number: str, group: str, tail: bool) -> str:
    """``number`` with ``group`` (digits said again) put where it fits best: at the end
    when the caller said so (尾号/最后), else over the digits it matches most (at least
    half of them; the later place on a tie). Unchanged when the group fits nowhere."""
    if len(group) >= len(number) or len(group) < 2:
        return number
    if tail:
        return number[: len(number) - len(group)] + group
    if len(group) < MIN_CORRECTION_DIGITS:
        return number
    best, best_at = -1, -1
    for at in range(len(number) - len(group) + 1):
        same = sum(a == b for a, b in zip(number[at:at + len(group)], group))
        if same >= best:
            best, best_at = same, at
    if best * 2 < len(group):
        return number
    return number[:best_at] + group + number[best_at + len(group):]


# -------------------------------------------------------------------- name
def _trim_name(raw: str, tunables: DraftTunables) -> Optional[str]:
    stop = _NAME_STOP.search(raw)
    name = raw[: stop.start()] if stop else raw
    if any(name.startswith(s) for s in tunables.compound_surnames):
        name = name[:4]
        return name if len(name) >= 3 else None
    if not name or name[0] not in tunables.surnames:
        return None
    name = name[:3]
    return name if len(name) >= 2 else None


def find_name(texts: Sequence[str], tunables: DraftTunables = TUNABLES.draft) -> Optional[str]:
    """The caller's name, or their surname alone (王) when only that was said."""
    name: Optional[str] = None
    surname: Optional[str] = None
    for n, text in enumerate(texts):
        for match in _NAME_CUE.finditer(text):
            name = _trim_name(match.group(1), tunables) or name
        for match in _I_AM.finditer(text):
            candidate = match.group(1)
            compound = any(candidate.startswith(s) for s in tunables.compound_surnames)
            if (compound or candidate[0] in tunables.surnames) and not (set(candidate[:3]) & _NOT_NAME_CHARS):
                name = _trim_name(candidate, tunables) or name
        for match in _SURNAME_CUE.finditer(text):
            said = match.group(1)
            said = said if said in tunables.compound_surnames else said[0]
            if said in tunables.compound_surnames or said in tunables.surnames:
                surname = said
                rest = " ".join([text[match.start(1) + len(said) :], *texts[n + 1 : n + 2]])
                full = _full_name_after(rest, said, tunables)
                if full:
                    name = full
    return name or surname


def _full_name_after(rest: str, surname: str, tunables: DraftTunables) -> Optional[str]:
    """After 我姓王: a name starting with 王 said as its own word (王秀英), if any."""
    for token in re.split(rf"[^{_HAN}]+", rest):
        start = token.find(surname)
        while start != -1:
            name = _trim_name(token[start:], tunables)
            if name and len(name) > len(surname) and "的" not in token[start : start + len(name) + 1]:
                return name
            start = token.find(surname, start + 1)
    return None


# ----------------------------------------------------------------- address
def find_address(texts: Sequence[str], tunables: DraftTunables = TUNABLES.draft) -> Optional[str]:
    """The longest place said (cue words before it cut off)."""
    best: Optional[str] = None
    for text in texts:
        for match in _ADDRESS.finditer(text):
            place = match.group(0)
            for cue in tunables.address_cues:
                cut = place.rfind(cue)
                if cut != -1:
                    place = place[cut + len(cue) :]
                    break
            if len(place) < MIN_ADDRESS_CHARS or not _STRONG_SUFFIX.search(place) or _NOT_ADDRESS.search(place):
                continue
            if best is None or len(place) > len(best):
                best = place
    return best


# ---------------------------------------------------------------- category
def find_category(texts: Iterable[str], tunables: DraftTunables = TUNABLES.draft) -> str:
    joined = " ".join(texts)
    for category, words in tunables.categories:
        if any(word in joined for word in words):
            return category
    return tunables.default_category


# ----------------------------------------------------------------- summary
def summary_of(
    caller: Optional[str],
    category: str,
    item_name: Optional[str],
    question_type: Optional[str],
    need: Sequence[str],
    has_phone: bool,
    tunables: DraftTunables = TUNABLES.draft,
) -> str:
    """One paragraph: who called about what, in their own (masked) words."""
    who = f"{mask_name(caller)}（来电人）" if caller else "来电人"
    about = f"“{item_name}”" if item_name else "未确定的事项"
    parts = [f"{who}来电{category}{about}"]
    if question_type in QUESTION_LABELS:
        parts.append(f"，关注{QUESTION_LABELS[question_type]}")
    words = "，".join(" ".join(p.split()) for p in need if p.strip())
    if words:
        words = mask_pii(words)[: tunables.summary_need_chars]
        parts.append(f"。来电所述：{words}")
    parts.append("。已登记回访电话。" if has_phone else "。未留回访电话。")
    return "".join(parts)


def build_draft(
    caller_phrases: Sequence[str],
    operator_phrases: Sequence[str],
    item_id: Optional[str],
    item_name: Optional[str],
    question_type: Optional[str],
    need_phrases: Sequence[str],
    suggested_answer: Optional[str],
    tunables: DraftTunables = TUNABLES.draft,
    heard_phone: Optional[str] = None,
) -> TicketDraft:
    """The draft from everything said so far (the caller's words first; the operator
    reading a number back counts when the caller's words hold none; ``heard_phone``, the
    digit recogniser's number, when neither does)."""
    phone = find_phone(caller_phrases) or find_phone(operator_phrases)
    phone_heard = phone is None and heard_phone is not None
    phone = phone or heard_phone
    name = find_name(caller_phrases, tunables)
    address = find_address(caller_phrases, tunables)
    category = find_category(caller_phrases, tunables)
    spoken_answer = "，".join(" ".join(p.split()) for p in operator_phrases)
    answer = spoken_answer or (suggested_answer or "")
    return TicketDraft(
        caller_name=name,
        phone=phone,
        address=address,
        item_id=item_id,
        item_name=item_name,
        question_type=question_type,
        category=category,
        summary=summary_of(name, category, item_name, question_type, need_phrases, bool(phone), tunables),
        answer=answer[: tunables.answer_chars],
        phone_heard=phone_heard,
    )
