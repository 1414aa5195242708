"""What a citizen says to set, list and cancel reminders (服务找人), read without the
dialogue's understanding: the intents are fixed and these sentences are regular
enough for patterns. Pure functions (no database); ``commands.py`` carries them out.

* "身份证明年3月到期，提醒我", "护照2027年5月到期提醒我换", "养老金认证提醒我",
  "补交材料截止前提醒我", "领证的时候提醒我" → :data:`REMIND` with the kind and the
  date or month said (or none: then the citizen is asked);
* "我的提醒" → :data:`LIST`; "退订提醒" / "取消提醒" → :data:`CANCEL`;
  "取消第2个提醒" → :data:`CANCEL_ONE`; "取消身份证提醒" → :data:`CANCEL_KIND`;
* after the assistant asked for a date or month: "2027年3月", "明年三月", "12月20号",
  "明天", "不知道" → :func:`answer_of` (an :data:`ANSWER`; only taken as one while a
  question is pending).

Dates: Arabic or Chinese numerals (三月, 十二月, 二〇二七年, 两千零二十七年, 27年),
今年/明年/后年, 下个月, 月底, 今天/明天/后天, N天后, 下周三, 2027-03, 2027/3/15,
12.20. A month without a year is the next one to come (this month included); a day
without a year likewise. Common typos of the keywords are accepted (身分证, 户照,
认正, 题醒, 退定).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from typing import List, Optional, Tuple

LIST = "list"
CANCEL = "cancel"
CANCEL_ONE = "cancel_one"
CANCEL_KIND = "cancel_kind"
REMIND = "remind"
ANSWER = "answer"

ID_CARD = "id_card_expiry"
PASSPORT = "passport_expiry"
PENSION = "pension_certification"
SUPPLEMENT = "supplement_deadline"
PICKUP = "ready_for_pickup"

# Longest sentence read as a list/cancel command, a reminder request, an answer.
MAX_COMMAND_CHARS = 20
MAX_REMIND_CHARS = 40
MAX_ANSWER_CHARS = 24

# ------------------------------------------------------------------ numerals
_DIGIT = {"〇": 0, "零": 0, "○": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6,
          "七": 7, "八": 8, "九": 9}
_UNIT = {"十": 10, "百": 100, "千": 1000}
NUM = r"[0-9〇零○一二两三四五六七八九十百千]+"


def number_of(token: str) -> Optional[int]:
    """``"12"``, ``"十二"``, ``"二十七"``, ``"二〇二七"`` (digit by digit), ``"两千零二十七"``
    → the integer; None when it is not a number."""
    if not token:
        return None
    if token.isdigit():
        return int(token)
    if all(c in _DIGIT for c in token):
        if len(token) == 1:
            return _DIGIT[token]
        return int("".join(str(_DIGIT[c]) for c in token))  # 二〇二七: read digit by digit
    total, current = 0, 0
    for c in token:
        if c in _DIGIT:
            current = _DIGIT[c]
        elif c in _UNIT:
            total += (current or 1) * _UNIT[c]
            current = 0
        elif c.isdigit():
            return None  # mixed forms like 2十
        else:
            return None
    return total + current


# ------------------------------------------------------------------ dates
@dataclass(frozen=True)
class When:
    """A date or month said, resolved against today (local)."""

    month: Optional[dt.date] = None  # the month (its first day); set whenever a month is known
    day: Optional[dt.date] = None  # the day, when one was said (or a month's end: 月底)
    year_only: bool = False  # a year without a month ("明年到期"): ask for the month
    spans: Tuple[Tuple[int, int], ...] = ()  # where in the (normalised) text it was said

    def end_of_month(self) -> Optional[dt.date]:
        if self.month is None:
            return None
        last = calendar.monthrange(self.month.year, self.month.month)[1]
        return self.month.replace(day=last)


_YEAR = (r"(?P<year>(?<![0-9])\d{4}|(?<![0-9])\d{2}|[〇零○一二三四五六七八九]{4}|[〇零○一二三四五六七八九]{2}"
         r"|两千[零〇]?[一二三四五六七八九十]+|今|明|大后|后|去|前)年")
_MONTH = r"(?P<month>(?<![0-9])(?:1[0-2]|0?[1-9])(?![0-9])|十[一二]?|[一二三四五六七八九]|下下个?|下个?|这个?|本|当)月份?"
_DAY = r"(?P<day>(?<![0-9])(?:3[01]|[12][0-9]|0?[1-9])(?![0-9])|三十一?|二十[一二三四五六七八九]?|十[一二三四五六七八九]?|[一二三四五六七八九])[日号]"
_EDGE = r"(?P<edge>底|末|初|中)"
_YEAR_RE = re.compile(_YEAR)
_MONTH_RE = re.compile(rf"(?:{_YEAR})?{_MONTH}(?:{_DAY}|{_EDGE})?")
_NUMERIC_RE = re.compile(r"(?<![0-9])(?P<y>\d{4})[-/.](?P<m>\d{1,2})(?:[-/.](?P<d>\d{1,2}))?(?![0-9])")
_SHORT_RE = re.compile(r"(?<![0-9.])(?P<m>1[0-2]|0?[1-9])[/.](?P<d>3[01]|[12][0-9]|0?[1-9])(?![0-9.])")
_RELATIVE_DAY_RE = re.compile(r"大后天|后天|明天|明日|今天|今日")
_DAYS_LATER_RE = re.compile(rf"(?P<n>{NUM})天(?:以|之)?后")
_WEEKDAY_RE = re.compile(r"(?P<which>下下|下|这|本)?(?:个)?(?:周|星期|礼拜)(?P<wd>[一二三四五六日天1-7])")
_MONTH_EDGE_RE = re.compile(r"(?P<which>下个?|这个?|本)?月(?P<edge>底|末)")
_RELATIVE_DAYS = {"今天": 0, "今日": 0, "明天": 1, "明日": 1, "后天": 2, "大后天": 3}
_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6,
             "1": 0, "2": 1, "3": 2, "4": 3, "5": 4, "6": 5, "7": 6}
_RELATIVE_YEARS = {"今": 0, "明": 1, "后": 2, "大后": 3, "去": -1, "前": -2}


def _year(token: str, today: dt.date) -> Optional[int]:
    if token in _RELATIVE_YEARS:
        return today.year + _RELATIVE_YEARS[token]
    value = number_of(token)
    if value is None:
        return None
    if value < 100:
        value += 2000
    return value


def _month_number(token: str, today: dt.date) -> Optional[Tuple[int, Optional[int]]]:
    """(month, months ahead for 下个月/这个月 or None)."""
    token = token.rstrip("个")
    if token in ("这", "本", "当"):
        return today.month, 0
    if token == "下":
        return None, 1  # type: ignore[return-value]
    if token == "下下":
        return None, 2  # type: ignore[return-value]
    value = number_of(token)
    if value is None or not 1 <= value <= 12:
        return None
    return value, None


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def _safe_date(year: int, month: int, day: int) -> Optional[dt.date]:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _last_day(month: dt.date) -> dt.date:
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


def _next_month(month: int, today: dt.date) -> dt.date:
    """The month ``month`` to come (this month included)."""
    year = today.year if month >= today.month else today.year + 1
    return dt.date(year, month, 1)


def _next_day(month: int, day: int, today: dt.date) -> Optional[dt.date]:
    for year in (today.year, today.year + 1):
        found = _safe_date(year, month, day)
        if found is not None and found >= today:
            return found
    return None


def when_of(text: str, today: dt.date) -> Optional[When]:
    """The first date or month said in ``text`` (normalised), or None."""
    match = _NUMERIC_RE.search(text)
    if match:
        year, month = int(match["y"]), int(match["m"])
        if not 1 <= month <= 12:
            return None
        first = dt.date(year, month, 1)
        day = _safe_date(year, month, int(match["d"])) if match["d"] else None
        if match["d"] and day is None:
            return None
        return When(month=first, day=day, spans=(match.span(),))
    match = _RELATIVE_DAY_RE.search(text)
    if match:
        day = today + dt.timedelta(days=_RELATIVE_DAYS[match.group()])
        return When(month=day.replace(day=1), day=day, spans=(match.span(),))
    match = _DAYS_LATER_RE.search(text)
    if match:
        n = number_of(match["n"])
        if n is None or n > 3660:
            return None
        day = today + dt.timedelta(days=n)
        return When(month=day.replace(day=1), day=day, spans=(match.span(),))
    match = _WEEKDAY_RE.search(text)
    if match:
        wanted = _WEEKDAYS[match["wd"]]
        monday = today - dt.timedelta(days=today.weekday())
        weeks = {"下": 1, "下下": 2}.get(match["which"] or "", 0)
        day = monday + dt.timedelta(weeks=weeks, days=wanted)
        if weeks == 0 and day < today:  # "周一" said on a Wednesday: next week's
            day += dt.timedelta(weeks=1)
        return When(month=day.replace(day=1), day=day, spans=(match.span(),))
    match = _MONTH_RE.search(text)
    if match:
        return _month_when(match, today)
    match = _MONTH_EDGE_RE.search(text)
    if match:
        ahead = 1 if (match["which"] or "").startswith("下") else 0
        month = _add_months(today.replace(day=1), ahead)
        return When(month=month, day=_last_day(month), spans=(match.span(),))
    match = _SHORT_RE.search(text)
    if match:
        day = _next_day(int(match["m"]), int(match["d"]), today)
        if day is None:
            return None
        return When(month=day.replace(day=1), day=day, spans=(match.span(),))
    match = _YEAR_RE.search(text)
    if match and _year(match["year"], today) is not None:
        return When(year_only=True, spans=(match.span(),))
    return None


def _month_when(match: re.Match, today: dt.date) -> Optional[When]:
    said = _month_number(match["month"], today)
    if said is None:
        return None
    number, ahead = said
    year = _year(match["year"], today) if match["year"] else None
    if match["year"] and year is None:
        return None
    if ahead is not None and number is None:  # 下个月, 下下个月
        first = _add_months(today.replace(day=1), ahead)
    elif year is not None:
        first = dt.date(year, number, 1)
    elif ahead == 0:
        first = today.replace(day=1)
    else:
        first = _next_month(number, today)
    day: Optional[dt.date] = None
    if match["day"]:
        value = number_of(match["day"])
        if value is None:
            return None
        if year is None and ahead is None:
            day = _next_day(first.month, value, today)
            if day is not None:
                first = day.replace(day=1)
        else:
            day = _safe_date(first.year, first.month, value)
        if day is None:
            return None
    elif match["edge"] in ("底", "末"):
        day = _last_day(first)
    elif match["edge"] == "初":
        day = first
    elif match["edge"] == "中":
        day = first.replace(day=15)
    return When(month=first, day=day, spans=(match.span(),))


# ------------------------------------------------------------------ what is said
def normalise(text: str) -> str:
    """NFKC (full-width digits and letters), no spaces, at most 200 characters."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", (text or "")[:200]))


_TRAILING = r"[了吧啊呀呢吗嘛哈]*[。.!！?？~～]*"
_CANCEL_WORD = r"(?:退订|退定|取消|关闭|关掉|停止|停掉|删除|删掉|不要再?|别再?|不用再?|不需要再?)"
_REMINDER_WORD = r"(?:提醒|题醒|通知|订阅|推送)"
_CANCEL_RE = re.compile(
    rf"^(?:请|帮我|麻烦|麻烦你|我想|我要)?{_CANCEL_WORD}(?:所有|全部)?(?:的)?"
    rf"(?:办件|进度|状态|办件进度)?(?:的)?{_REMINDER_WORD}(?:我)?(?:了)?{_TRAILING}$"
    r"|^(?:退订|退定|TD)$",
    re.IGNORECASE,
)
_CANCEL_ONE_RE = re.compile(
    rf"^(?:请|帮我|麻烦|我想|我要)?{_CANCEL_WORD}(?:第)?(?P<n>{NUM})(?:个|条|项|号)(?:的)?{_REMINDER_WORD}?{_TRAILING}$"
    rf"|^(?:请|帮我|麻烦|我想|我要)?{_CANCEL_WORD}(?:的)?{_REMINDER_WORD}(?:里的|中的|的)?第?(?P<m>{NUM})(?:个|条|项|号)?{_TRAILING}$"
)
_LIST_RE = re.compile(
    r"^(?:我的|我得|我滴|查看|查询|看看|看一下|查一下|查看我的|看看我的|我有哪些|我有什么|我设置的|我设的|我订的)"
    rf"(?:办件|进度)?(?:的)?(?:提醒|题醒|订阅)(?:列表|有哪些|有什么|都有哪些|都有什么|是什么)?{_TRAILING}$"
    rf"|^(?:提醒|订阅)列表{_TRAILING}$"
    rf"|^(?:我)?(?:设置|设|订)了(?:哪些|什么|几个)(?:提醒|订阅){_TRAILING}$"
)

# The kinds, by the words that name them (typos included).
_KIND_WORDS: List[Tuple[str, re.Pattern]] = [
    (PENSION, re.compile(
        r"(?:养老金?|养老保险|退休金?|退休工资|社保)(?:待遇)?(?:领取)?(?:资格)?(?:认证|认正|认征|年审|年检|验证|核验)"
        r"|生存认证|生存验证|领取资格认证|待遇资格认证|资格认证|养老认证")),
    (ID_CARD, re.compile(r"身份证|身分证|身份正|身份征|省份证|身份症|二代证")),
    (PASSPORT, re.compile(r"护照|户照|护找|护兆|扩照")),
    (SUPPLEMENT, re.compile(r"补正|补交|补材料|补充材料|补件|补齐材料|补资料")),
    (PICKUP, re.compile(r"领取|领证|取证|拿证|取件|去拿|去取|领回|拿回|可以领|可以取")),
]
_PENSION_HINT = re.compile(r"养老|退休")
_REMIND_VERB = re.compile(
    r"(?:提醒|题醒)(?:我|一下|下|一声)|提个醒|提示我|记得提醒|帮我记|(?:提醒|题醒)(?:吧|啊|呀)?[。.!！~～]*$"
    r"|通知我(?:一下|一声)?(?:吧|啊|呀)?[。.!！~～]*$"
)
# "收到了补正提醒": a report, not a request.
_REPORTED = re.compile(r"收到|接到|看到了")
_CANCEL_VERB = r"(?:退订|退定|取消|关闭|关掉|停止|停掉|删除|删掉)"
_REMINDER_RE = re.compile(_REMINDER_WORD)
_CANCEL_START_RE = re.compile(rf"^(?:请|帮我|麻烦|麻烦你|我想|我要)?(?:把)?{_CANCEL_VERB}")
_CANCEL_END_RE = re.compile(rf"{_CANCEL_VERB}(?:掉)?(?:吧|了)?[。.!！~～]*$")
# A question about the service, not a request: the dialogue answers it.
_QUESTION = re.compile(r"怎么|怎样|如何|哪里|哪儿|在哪|多少钱|什么材料|带什么|要什么|需要什么|流程|手续|能不能办|可以办吗")
_NEGATION = re.compile(r"(?:不要|不用|别|无需|不需要|不必)(?:再)?(?:给我|帮我)?(?:提醒|题醒|通知)")
_UNKNOWN_RE = re.compile(
    r"^(?:我)?(?:也|还|真)?(?:不知道|不清楚|不记得|记不清|记不得|忘了|忘记了|没注意|没看|不确定|说不准|不晓得|不太清楚)"
    rf"(?:了|啊|呢|耶)?{_TRAILING}$"
)
# What may stand around a date said as an answer ("大概是明年3月吧").
_FILLER_RE = re.compile(
    r"是|在|大概|大约|应该|可能|估计|差不多|左右|到期|过期|期满|截止|截至|之前|以前|前|有效期|有效期限|至|到|"
    r"那天|这天|就|再|我的|的|了|吧|呢|啊|呀|哦|嗯|好|嘛|提醒我|提醒|日期|时间|去领|领取|份|号|日|"
    r"[，,。.!！~～、:：]"
)


@dataclass(frozen=True)
class Said:
    command: str  # LIST, CANCEL, CANCEL_ONE, CANCEL_KIND, REMIND, ANSWER
    kind: Optional[str] = None  # REMIND, CANCEL_KIND (ANSWER: when a kind was named too)
    when: Optional[When] = None  # REMIND, ANSWER: the date or month said
    index: Optional[int] = None  # CANCEL_ONE: which one (1-based, as "我的提醒" numbers them)
    unknown: bool = False  # ANSWER: "不知道"


def kind_of(text: str) -> Optional[str]:
    """The reminder kind a (normalised) sentence names, or None."""
    for kind, words in _KIND_WORDS:
        if words.search(text):
            if kind == PICKUP and _PENSION_HINT.search(text):
                return None  # 领取养老金: not an application to pick up
            return kind
    return None


def parse(text: str, today: Optional[dt.date] = None) -> Optional[Said]:
    """The reminder command ``text`` says, or None (then the dialogue answers it)."""
    said = normalise(text)
    if not said:
        return None
    today = today or dt.date.today()
    if len(said) <= MAX_COMMAND_CHARS:
        match = _CANCEL_ONE_RE.match(said)
        if match:
            index = number_of(match["n"] or match["m"])
            if index is not None and 1 <= index <= 100:
                return Said(CANCEL_ONE, index=index)
        if _CANCEL_RE.match(said):
            return Said(CANCEL)
        if _LIST_RE.match(said):
            return Said(LIST)
    if len(said) > MAX_REMIND_CHARS or _QUESTION.search(said):
        return None
    kind = kind_of(said)
    if kind is None or _REPORTED.search(said):
        return None
    if _NEGATION.search(said) or (_REMINDER_RE.search(said) and (
            _CANCEL_START_RE.match(said) or _CANCEL_END_RE.search(said))):
        return Said(CANCEL_KIND, kind=kind)
    if not _REMIND_VERB.search(said):
        return None
    return Said(REMIND, kind=kind, when=when_of(said, today))


def answer_of(text: str, today: Optional[dt.date] = None) -> Optional[Said]:
    """``text`` as the answer to "哪年哪月到期？" / "截止日期是哪天？": a date or month
    with little else around it, or "不知道"; None otherwise. Only taken as an answer
    while such a question is pending (the gateway checks)."""
    said = normalise(text)
    if not said or len(said) > MAX_ANSWER_CHARS:
        return None
    if _UNKNOWN_RE.match(said):
        return Said(ANSWER, unknown=True)
    today = today or dt.date.today()
    when = when_of(said, today)
    if when is None:
        return None
    rest = said
    for start, end in sorted(when.spans, reverse=True):
        rest = rest[:start] + rest[end:]
    kind = kind_of(rest)
    if kind is not None:
        for _, words in _KIND_WORDS:
            rest = words.sub("", rest)
    if _FILLER_RE.sub("", rest):
        return None
    return Said(ANSWER, kind=kind, when=when)
