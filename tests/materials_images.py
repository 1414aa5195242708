"""Synthetic document photos for the material pre-check: tests and ``bench/precheck.py``.

Renders eight kinds of Chinese documents with the CJK fonts installed on the machine (found with
``fc-list :lang=zh``; :class:`NoFont` when there are none), with fake but realistic values, then
"photographs" them in several qualities (rotation, blur, low light, partial crop, heavy JPEG).

Nothing here is a real person: names are random pairs of common characters, ID numbers carry a
deliberately wrong check digit (a real resident ID always has a valid one), dates and addresses are
random. Every sample records its truth (type, name, ID number, validity end, application number,
and whether the validity field is still fully in the picture).

    sample = make_sample("id_card_back", "rotated", random.Random(7))
    sample.data   # JPEG bytes;  sample.truth.expiry, sample.truth.expiry_visible ...
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import random
import subprocess
from dataclasses import dataclass, field, replace
from typing import Callable, Dict, List, Optional, Tuple

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

DOC_TYPES = (
    "id_card_front",
    "id_card_back",
    "household_register",
    "marriage_certificate",
    "birth_certificate",
    "business_license",
    "rental_contract",
    "acceptance_receipt",
)
# Other documents a citizen may photograph instead, some close to a type above (a 居住证 carries
# the same fields as an ID card front; a 补正告知书 names the materials it asks for). The pre-check
# must not take them for the requested type.
DISTRACTORS = ("residence_permit", "divorce_certificate", "social_security_card", "supplement_notice")
QUALITIES = ("clean", "rotated", "blurred", "low_light", "cropped", "jpeg", "phone")
# Harder than the list above; added after the first run showed it was too easy (bench/README.md).
STRESS_QUALITIES = ("perspective", "glare", "sideways", "severe")
TODAY = dt.date(2026, 12, 5)  # the generator's "today": some validity ends before it, some after
LONG_TERM = "long_term"

Box = Tuple[int, int, int, int]


class NoFont(RuntimeError):
    """No CJK font on this machine (install fonts-noto-cjk)."""


@dataclass
class Truth:
    doc_type: str
    name: Optional[str] = None  # the main person on the document
    id_number: Optional[str] = None
    expiry: object = None  # dt.date | LONG_TERM | None (no validity on this document)
    expiry_visible: bool = False
    visible: frozenset = frozenset()  # the named fields still fully in the picture
    application_number: Optional[str] = None
    quality: str = "clean"
    boxes: Dict[str, Box] = field(default_factory=dict)  # field -> box in the final image


@dataclass
class Sample:
    data: bytes  # JPEG
    truth: Truth
    size: Tuple[int, int]


# ------------------------------------------------------------------------------------ fonts
@functools.lru_cache(maxsize=None)
def font_files() -> Dict[str, Tuple[str, int]]:
    """{"sans", "sans_bold", "serif", "serif_bold"} -> (file, index) of Simplified Chinese faces."""
    try:
        listing = subprocess.run(
            ["fc-list", "-f", "%{file}|%{index}|%{family}|%{style}\n", ":lang=zh"],
            capture_output=True, text=True, check=True, timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise NoFont(f"fc-list failed ({exc}): install fontconfig and fonts-noto-cjk") from exc
    found: Dict[str, Tuple[str, int]] = {}
    any_face: Optional[Tuple[str, int]] = None
    for line in listing.splitlines():
        parts = line.split("|")
        if len(parts) < 4:
            continue
        path, index, family, style = parts[0], int(parts[1] or 0), parts[2], parts[3]
        any_face = any_face or (path, index)
        if "Mono" in family or not any(tag in family for tag in ("SC", "CN", "Hei", "Song", "Kai")):
            continue
        kind = "serif" if ("Serif" in family or "Song" in family) else "sans"
        if "Bold" in style:
            kind += "_bold"
        found.setdefault(kind, (path, index))
    if not found and any_face is None:
        raise NoFont("no Chinese font found by `fc-list :lang=zh`: install fonts-noto-cjk")
    fallback = found.get("sans") or next(iter(found.values()), any_face)
    for kind in ("sans", "sans_bold", "serif", "serif_bold"):
        found.setdefault(kind, fallback)
    return found


@functools.lru_cache(maxsize=256)
def font(kind: str, size: int) -> ImageFont.FreeTypeFont:
    path, index = font_files()[kind]
    return ImageFont.truetype(path, size, index=index)


# ------------------------------------------------------------------------------ fake values
_SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红建文辉力斌宇浩凯鹏飞鑫波宁欣怡晨雪梅琳婷慧佳俊峰志新海亮林国春燕云颖晓丹阳健"
_PROVINCES = [
    ("北京市", "110105", "朝阳区"), ("上海市", "310104", "徐汇区"), ("广东省广州市", "440106", "天河区"),
    ("四川省成都市", "510107", "武侯区"), ("浙江省杭州市", "330106", "西湖区"), ("湖北省武汉市", "420106", "武昌区"),
    ("陕西省西安市", "610113", "雁塔区"), ("贵州省贵阳市", "520102", "南明区"), ("云南省昆明市", "530102", "五华区"),
]
_ROADS = "建设路 人民路 解放路 中山路 和平街 文化路 长江路 黄河路 新华街 光明路 幸福路 团结路".split()
_ETHNICITIES = ["汉"] * 6 + ["回", "壮", "苗", "彝", "土家", "满"]
_ITEMS = ["居住证申领", "居民身份证换领", "社会保障卡申领", "个体工商户设立登记", "不动产登记", "生育登记"]
_BUSINESS = ["科技", "商贸", "餐饮管理", "文化传媒", "农业发展", "建材"]
_SCOPES = "技术开发、技术咨询、技术服务；销售日用品、电子产品；餐饮服务；货物进出口。"


def fake_name(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2, 2))))


def fake_id_number(rng: random.Random, region: str, born: dt.date, male: bool) -> str:
    """18 characters in the resident ID format with a *wrong* check digit (never a real person's)."""
    sequence = rng.randrange(10, 100) * 10 + (rng.randrange(0, 10, 2) + (1 if male else 0))
    body = f"{region}{born:%Y%m%d}{sequence:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    valid = "10X98765432"[sum(int(c) * w for c, w in zip(body, weights)) % 11]
    wrong = [c for c in "0123456789" if c != valid]
    return body + rng.choice(wrong)


def fake_address(rng: random.Random, city: str, district: str) -> str:
    return f"{city}{district}{rng.choice(_ROADS)}{rng.randrange(1, 300)}号{rng.randrange(1, 30)}栋{rng.randrange(101, 2600)}室"


def random_date(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    return start + dt.timedelta(days=rng.randrange(max(1, (end - start).days)))


def add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def cn_date(day: dt.date, pad: bool = True) -> str:
    return f"{day.year}年{day.month:02d}月{day.day:02d}日" if pad else f"{day.year}年{day.month}月{day.day}日"


# --------------------------------------------------------------------------------- drawing
class Page:
    """A document being drawn: records where each named field lands."""

    def __init__(self, size: Tuple[int, int], colour, rng: random.Random):
        self.image = Image.new("RGB", size, colour)
        self.draw = ImageDraw.Draw(self.image)
        self.rng = rng
        self.boxes: Dict[str, Box] = {}
        self.ink = (20, 20, 20)

    def jitter(self, value: int, spread: int = 6) -> int:
        return value + self.rng.randint(-spread, spread)

    def text(self, xy, text: str, size: int, kind: str = "sans", fill=None, name: Optional[str] = None,
             anchor: str = "la") -> Box:
        x, y = self.jitter(xy[0]), self.jitter(xy[1], 3)
        face = font(kind, size)
        self.draw.text((x, y), text, font=face, fill=fill or self.ink, anchor=anchor)
        box = tuple(int(v) for v in self.draw.textbbox((x, y), text, font=face, anchor=anchor))
        if name:
            previous = self.boxes.get(name)
            self.boxes[name] = box if previous is None else (
                min(previous[0], box[0]), min(previous[1], box[1]), max(previous[2], box[2]), max(previous[3], box[3]))
        return box

    def label_value(self, xy, label: str, value: str, size: int, label_fill, gap: int = 24,
                    name: Optional[str] = None, value_kind: str = "sans") -> Box:
        box = self.text(xy, label, size, fill=label_fill, name=name)
        return self.text((box[2] + gap, xy[1]), value, size, kind=value_kind, name=name)

    def wrap(self, xy, text: str, size: int, width_chars: int, line_gap: float = 1.45, **kw) -> int:
        y = xy[1]
        for start in range(0, len(text), width_chars):
            self.text((xy[0], y), text[start : start + width_chars], size, **kw)
            y += int(size * line_gap)
        return y

    def stamp(self, centre, radius: int, text: str) -> None:
        red = (205, 40, 40)
        cx, cy = centre
        self.draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), outline=red, width=5)
        self.draw.regular_polygon((cx, cy, radius // 4), 5, rotation=self.rng.randint(0, 20), fill=red)
        face = font("sans_bold", max(14, radius // 5))
        self.draw.text((cx, cy + radius // 2), text[:10], font=face, fill=red, anchor="mm")

    def portrait(self, box: Box, background=(235, 235, 235)) -> None:
        x0, y0, x1, y1 = box
        self.draw.rectangle(box, fill=background)
        w, h = x1 - x0, y1 - y0
        grey = (120, 120, 125)
        self.draw.ellipse((x0 + w * 0.3, y0 + h * 0.15, x0 + w * 0.7, y0 + h * 0.6), fill=grey)
        self.draw.pieslice((x0 + w * 0.1, y0 + h * 0.6, x0 + w * 0.9, y0 + h * 1.3), 180, 360, fill=grey)

    def grid(self, x0: int, y0: int, widths: List[int], rows: int, row_height: int, colour=(60, 60, 60)) -> None:
        x1 = x0 + sum(widths)
        for r in range(rows + 1):
            self.draw.line((x0, y0 + r * row_height, x1, y0 + r * row_height), fill=colour, width=2)
        x = x0
        for w in [0] + widths:
            x += w
            self.draw.line((x, y0, x, y0 + rows * row_height), fill=colour, width=2)

    def background_pattern(self, colour, step: int = 18) -> None:
        w, h = self.image.size
        for i in range(-h, w, step):
            self.draw.line((i, 0, i + h, h), fill=colour, width=1)


# ------------------------------------------------------------------------------- documents
def _person(rng: random.Random) -> Dict[str, object]:
    city, region, district = rng.choice(_PROVINCES)
    born = random_date(rng, dt.date(1950, 1, 1), dt.date(2005, 12, 31))
    male = rng.random() < 0.5
    return {
        "name": fake_name(rng), "male": male, "born": born, "city": city, "district": district,
        "region": region, "id": fake_id_number(rng, region, born, male), "ethnicity": rng.choice(_ETHNICITIES),
        "address": fake_address(rng, city, district),
    }


def render_id_card_front(rng: random.Random) -> Tuple[Page, Truth]:
    p = _person(rng)
    page = Page((1030, 650), (236, 242, 246), rng)
    page.background_pattern((226, 234, 241))
    label = (60, 100, 150)
    page.label_value((80, 70), "姓名", p["name"], 36, label, gap=36, name="name")
    page.label_value((80, 145), "性别", "男" if p["male"] else "女", 32, label, gap=36)
    page.label_value((330, 145), "民族", p["ethnicity"], 32, label, gap=36)
    born = p["born"]
    page.label_value((80, 215), "出生", f"{born.year} 年 {born.month} 月 {born.day} 日", 32, label, gap=36)
    page.text((80, 285), "住址", 32, fill=label)
    page.wrap((180, 285), p["address"], 32, 12, line_gap=1.4)
    page.text((80, 540), "公民身份号码", 32, fill=label)
    page.text((360, 536), p["id"], 40, kind="sans_bold", name="id_number")
    page.portrait((700, 90, 960, 420), background=(226, 234, 241))
    return page, Truth("id_card_front", name=p["name"], id_number=p["id"])


def render_id_card_back(rng: random.Random) -> Tuple[Page, Truth]:
    city, _region, district = rng.choice(_PROVINCES)
    page = Page((1030, 650), (238, 242, 240), rng)
    page.background_pattern((228, 236, 232))
    red = (200, 40, 40)
    page.draw.ellipse((70, 60, 250, 240), outline=red, width=8)
    page.draw.regular_polygon((160, 140, 45), 5, fill=red)
    page.text((320, 80), "中华人民共和国", 52, kind="serif_bold")
    page.text((300, 170), "居民身份证", 86, kind="serif_bold")
    issued = random_date(rng, dt.date(2006, 1, 1), dt.date(2026, 6, 30))
    span = rng.choice((5, 10, 10, 20, 20, 0))  # 0: 长期
    end = LONG_TERM if span == 0 else add_years(issued, span)
    end_text = "长期" if span == 0 else f"{end:%Y.%m.%d}"
    authority = f"{city.split('省')[-1]}公安局{district}分局"
    label = (40, 40, 40)
    page.label_value((160, 450), "签发机关", authority, 34, label, gap=40)
    page.label_value((160, 530), "有效期限", f"{issued:%Y.%m.%d}-{end_text}", 34, label, gap=40, name="expiry")
    return page, Truth("id_card_back", expiry=end)


def render_household_register(rng: random.Random) -> Tuple[Page, Truth]:
    p = _person(rng)
    page = Page((1000, 1400), (250, 248, 240), rng)
    page.text((500, 70), "常住人口登记卡", 56, kind="serif_bold", anchor="ma")
    widths, row_h, x0, y0 = [190, 300, 190, 220], 92, 50, 180
    page.grid(x0, y0, widths, 11, row_h)
    born = p["born"]
    rows = [
        ("姓名", p["name"], "户主或与户主关系", rng.choice(["户主", "子", "女", "妻", "夫"])),
        ("曾用名", "", "性别", "男" if p["male"] else "女"),
        ("出生地", p["city"] + p["district"], "民族", p["ethnicity"] + "族"),
        ("籍贯", p["city"], "出生日期", cn_date(born, pad=False)),
        ("本市(县)其他住址", "", "宗教信仰", "无"),
        ("公民身份证件编号", p["id"], "身高", f"{rng.randrange(150, 190)}cm"),
        ("文化程度", rng.choice(["大学本科", "高中", "初中", "大学专科"]), "婚姻状况", rng.choice(["已婚", "未婚"])),
        ("服务处所", rng.choice(["某某科技有限公司", "个体", "无"]), "职业", rng.choice(["职员", "教师", "农民"])),
        ("兵役状况", "未服兵役", "血型", rng.choice(["A", "B", "O", "AB"])),
        ("何时由何地迁来本市(县)", "", "", ""),
        ("承办人签章", fake_name(rng), "登记日期", cn_date(random_date(rng, dt.date(2000, 1, 1), dt.date(2025, 12, 1)))),
    ]
    for r, (l1, v1, l2, v2) in enumerate(rows):
        y = y0 + r * row_h + 30
        size1 = 26 if len(l1) <= 6 else 20
        page.text((x0 + 12, y), l1[:9], size1, fill=(60, 60, 60))
        page.text((x0 + widths[0] + 12, y), v1, 26 if len(v1) < 12 else 19, name="name" if r == 0 else None)
        if l2:
            page.text((x0 + widths[0] + widths[1] + 12, y), l2[:8], 26 if len(l2) <= 6 else 19, fill=(60, 60, 60))
            page.text((x0 + sum(widths[:3]) + 12, y), v2, 26)
    return page, Truth("household_register", name=p["name"], id_number=p["id"])


def render_marriage_certificate(rng: random.Random) -> Tuple[Page, Truth]:
    a, b = _person(rng), _person(rng)
    page = Page((1000, 1400), (252, 238, 236), rng)
    label = (150, 40, 40)
    page.text((500, 60), "结婚证", 72, kind="serif_bold", fill=(190, 30, 30), anchor="ma")
    holder = rng.choice((a, b))
    registered = random_date(rng, dt.date(2005, 1, 1), dt.date(2025, 12, 1))
    page.label_value((90, 200), "持证人", holder["name"], 34, label, gap=30, name="name")
    page.label_value((90, 270), "登记日期", cn_date(registered), 34, label, gap=30)
    page.label_value((90, 340), "结婚证字号", f"J{a['region']}-{registered.year}-{rng.randrange(1, 9999):06d}", 34, label, gap=30)
    page.label_value((90, 410), "备注", "", 34, label)
    page.portrait((330, 470, 670, 700), background=(210, 40, 40))
    y = 760
    for person in (a, b):
        page.label_value((90, y), "姓名", person["name"], 30, label, gap=20)
        page.label_value((420, y), "性别", "男" if person["male"] else "女", 30, label, gap=20)
        page.label_value((90, y + 55), "国籍", "中国", 30, label, gap=20)
        page.label_value((420, y + 55), "出生日期", cn_date(person["born"]), 30, label, gap=20)
        page.label_value((90, y + 110), "身份证件号", person["id"], 30, label, gap=20)
        y += 200
    page.text((90, 1190), "婚姻登记员：" + fake_name(rng), 28, fill=label)
    page.stamp((760, 1230), 95, f"{a['district']}民政局婚姻登记专用章")
    return page, Truth("marriage_certificate", name=holder["name"], id_number=holder["id"])


def render_birth_certificate(rng: random.Random) -> Tuple[Page, Truth]:
    mother, father = _person(rng), _person(rng)
    baby = fake_name(rng)
    born = random_date(rng, dt.date(2015, 1, 1), dt.date(2026, 10, 1))
    page = Page((1400, 1000), (244, 246, 250), rng)
    page.background_pattern((234, 238, 246), step=24)
    page.text((700, 50), "出生医学证明", 64, kind="serif_bold", fill=(30, 60, 120), anchor="ma")
    page.text((700, 130), "Medical Certificate of Birth", 26, fill=(30, 60, 120), anchor="ma")
    label = (40, 70, 120)
    left = [
        ("新生儿姓名", baby), ("性别", rng.choice(["男", "女"])),
        ("出生时间", f"{born.year}年{born.month:02d}月{born.day:02d}日{rng.randrange(24):02d}时{rng.randrange(60):02d}分"),
        ("出生孕周", f"{rng.randrange(36, 42)}周"), ("出生体重", f"{rng.randrange(2600, 4200)}克"),
        ("出生身长", f"{rng.randrange(46, 55)}厘米"), ("出生地点", mother["city"] + mother["district"]),
        ("医疗机构名称", mother["city"].split("省")[-1] + "妇幼保健院"),
    ]
    right = [
        ("母亲姓名", mother["name"]), ("年龄", str(rng.randrange(22, 40))), ("国籍", "中国"), ("民族", mother["ethnicity"] + "族"),
        ("父亲姓名", father["name"]), ("年龄", str(rng.randrange(22, 45))), ("国籍", "中国"), ("民族", father["ethnicity"] + "族"),
    ]
    for i, (l, v) in enumerate(left):
        page.label_value((80, 210 + i * 78), l, v, 28, label, gap=20)
    for i, (l, v) in enumerate(right):  # the mother is the applicant in the truth
        page.label_value((800, 210 + i * 78), l, v, 28, label, gap=20, name="name" if i == 0 else None)
    page.label_value((80, 860), "出生证编号", f"{rng.choice('PQRS')}{rng.randrange(10**8, 10**9)}", 28, label, gap=20)
    page.label_value((800, 860), "签发日期", cn_date(born + dt.timedelta(days=rng.randrange(1, 20))), 28, label, gap=20)
    page.stamp((1200, 900), 80, "出生医学证明专用章")
    return page, Truth("birth_certificate", name=mother["name"])


def render_business_license(rng: random.Random) -> Tuple[Page, Truth]:
    owner = _person(rng)
    page = Page((1400, 1000), (250, 250, 246), rng)
    for inset, width in ((20, 10), (40, 3)):
        page.draw.rectangle((inset, inset, 1400 - inset, 1000 - inset), outline=(170, 120, 40), width=width)
    page.text((700, 90), "营业执照", 96, kind="serif_bold", fill=(150, 20, 20), anchor="ma")
    page.text((700, 210), "（副本）", 30, anchor="ma")
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    code = "91" + owner["region"] + "".join(rng.choice(alphabet) for _ in range(10))
    page.label_value((90, 250), "统一社会信用代码", code, 28, (40, 40, 40), gap=16)
    founded = random_date(rng, dt.date(2000, 1, 1), dt.date(2025, 12, 1))
    years = rng.choice((0, 10, 20, 30))
    end = LONG_TERM if years == 0 else add_years(founded, years) - dt.timedelta(days=1)
    name = f"{owner['city'].split('省')[-1].replace('市', '')}{rng.choice('华盛兴达恒远鑫博')}{rng.choice('创宇信泰和安')}{rng.choice(_BUSINESS)}有限公司"
    label = (40, 40, 40)
    left = [("名称", name), ("类型", "有限责任公司（自然人投资或控股）"), ("法定代表人", owner["name"])]
    for i, (l, v) in enumerate(left):
        page.label_value((90, 340 + i * 70), l, v, 30, label, gap=30, name="name" if l == "法定代表人" else None)
    page.text((90, 550), "经营范围", 30, fill=label)
    page.wrap((250, 550), _SCOPES, 28, 18, line_gap=1.5)
    right = [
        ("注册资本", f"人民币{rng.choice(['壹佰', '伍拾', '贰佰', '伍佰'])}万元整"), ("成立日期", cn_date(founded)),
        ("营业期限", f"{cn_date(founded)}至{'长期' if years == 0 else cn_date(end)}"), ("住所", owner["address"][:18]),
    ]
    # 营业期限 (long) gets its own line below the others on the right
    for i, (l, v) in enumerate([r for r in right if r[0] != "营业期限"]):
        page.label_value((780, 340 + i * 70), l, v, 28, label, gap=24)
    page.label_value((780, 560), "营业期限", right[2][1], 26, label, gap=16, name="expiry")
    page.text((820, 800), "登记机关", 30, fill=label)
    page.stamp((1080, 800), 85, f"{owner['district']}市场监督管理局")
    page.text((1010, 920), cn_date(random_date(rng, founded, TODAY)), 26, fill=label)
    page.text((90, 900), "国家企业信用信息公示系统网址：http://www.gsxt.gov.cn", 22, fill=(90, 90, 90))
    return page, Truth("business_license", name=owner["name"], expiry=end)


def render_rental_contract(rng: random.Random) -> Tuple[Page, Truth]:
    landlord, tenant = _person(rng), _person(rng)
    start = random_date(rng, dt.date(2022, 1, 1), dt.date(2026, 10, 1))
    page = Page((1000, 1400), (252, 252, 252), rng)
    page.text((500, 70), "房屋租赁合同", 54, kind="serif_bold", anchor="ma")
    page.text((90, 190), f"出租方（甲方）：{landlord['name']}", 30, name=None)
    page.text((90, 250), f"承租方（乙方）：{tenant['name']}", 30, name="name")
    body = [
        "根据《中华人民共和国民法典》及有关规定，为明确甲、乙双方的权利义务关系，经双方协商一致，签订本合同。",
        f"第一条 房屋坐落于{landlord['address']}，建筑面积{rng.randrange(40, 140)}平方米。",
        f"第二条 租赁期限自{cn_date(start, pad=False)}起至{cn_date(add_years(start, 1) - dt.timedelta(days=1), pad=False)}止。",
        f"第三条 租金每月人民币{rng.randrange(8, 60) * 100}元，押金{rng.randrange(1, 3)}个月租金，按月支付。",
        "第四条 乙方不得擅自转租，应爱护房屋及设施，按时缴纳水电燃气费用。",
        "第五条 本合同一式两份，甲乙双方各执一份，自双方签字之日起生效。",
    ]
    y = 330
    for paragraph in body:
        y = page.wrap((90, y), paragraph, 28, 28, line_gap=1.55, kind="serif") + 18
    page.text((90, max(y + 40, 1150)), "甲方（签字）：", 28)
    page.text((540, max(y + 40, 1150)), "乙方（签字）：", 28)
    return page, Truth("rental_contract", name=tenant["name"])


def render_acceptance_receipt(rng: random.Random) -> Tuple[Page, Truth]:
    applicant = _person(rng)
    accepted = random_date(rng, dt.date(2025, 1, 1), dt.date(2026, 11, 30))
    number = f"ZW{accepted:%Y%m%d}{rng.randrange(1000):03d}"
    page = Page((1000, 1400), (253, 253, 250), rng)
    centre = applicant["city"].split("省")[-1] + applicant["district"]
    page.text((500, 70), f"{centre}政务服务中心", 40, kind="serif_bold", anchor="ma")
    page.text((500, 140), "受理回执", 56, kind="serif_bold", anchor="ma")
    rows = [
        ("受理编号", number), ("申请人", applicant["name"]), ("事项名称", rng.choice(_ITEMS)),
        ("受理日期", cn_date(accepted)), ("承诺办结时限", f"{rng.choice((5, 10, 15, 20))}个工作日"),
        ("受理窗口", f"{rng.randrange(1, 30)}号窗口"), ("受理人", fake_name(rng)),
    ]
    for i, (l, v) in enumerate(rows):
        page.label_value((110, 280 + i * 80), l + "：", v, 32, (40, 40, 40), gap=8,
                         name={"受理编号": "application_number", "申请人": "name"}.get(l))
    page.wrap((110, 900), "您的申请已受理。请凭本回执查询办理进度或领取结果。可拨打12345或在微信中查询办件进度。", 26, 30, kind="serif")
    page.stamp((760, 1150), 100, f"{centre}政务服务中心")
    return page, Truth("acceptance_receipt", name=applicant["name"], application_number=number)


def render_residence_permit(rng: random.Random) -> Tuple[Page, Truth]:
    p = _person(rng)
    page = Page((1030, 650), (240, 244, 236), rng)
    page.background_pattern((230, 236, 226))
    page.text((515, 30), f"{p['city'].split('省')[-1]}居住证", 44, kind="serif_bold", fill=(30, 90, 60), anchor="ma")
    label = (50, 110, 80)
    page.label_value((80, 120), "姓名", p["name"], 32, label, gap=30, name="name")
    page.label_value((80, 180), "性别", "男" if p["male"] else "女", 30, label, gap=30)
    page.label_value((330, 180), "民族", p["ethnicity"], 30, label, gap=30)
    page.label_value((80, 240), "出生", cn_date(p["born"], pad=False), 30, label, gap=30)
    page.text((80, 300), "住址", 30, fill=label)
    page.wrap((170, 300), p["address"], 30, 12, line_gap=1.35)
    page.label_value((80, 440), "公民身份号码", p["id"], 30, label, gap=24)
    issued = random_date(rng, dt.date(2018, 1, 1), dt.date(2026, 6, 1))
    page.label_value((80, 500), "签发机关", f"{p['district']}公安分局", 28, label, gap=24)
    page.label_value((80, 555), "有效期限", f"{issued:%Y.%m.%d}-{add_years(issued, 1):%Y.%m.%d}", 28, label, gap=24)
    page.portrait((730, 110, 960, 400), background=(230, 236, 226))
    return page, Truth("residence_permit", name=p["name"], id_number=p["id"])


def render_divorce_certificate(rng: random.Random) -> Tuple[Page, Truth]:
    a, b = _person(rng), _person(rng)
    page = Page((1000, 1400), (238, 242, 236), rng)
    label = (60, 90, 60)
    page.text((500, 60), "离婚证", 72, kind="serif_bold", fill=(60, 100, 60), anchor="ma")
    holder = rng.choice((a, b))
    registered = random_date(rng, dt.date(2005, 1, 1), dt.date(2025, 12, 1))
    page.label_value((90, 200), "持证人", holder["name"], 34, label, gap=30, name="name")
    page.label_value((90, 270), "登记日期", cn_date(registered), 34, label, gap=30)
    page.label_value((90, 340), "离婚证字号", f"L{a['region']}-{registered.year}-{rng.randrange(1, 9999):06d}", 34, label, gap=30)
    y = 460
    for person in (a, b):
        page.label_value((90, y), "姓名", person["name"], 30, label, gap=20)
        page.label_value((420, y), "性别", "男" if person["male"] else "女", 30, label, gap=20)
        page.label_value((90, y + 55), "国籍", "中国", 30, label, gap=20)
        page.label_value((420, y + 55), "出生日期", cn_date(person["born"]), 30, label, gap=20)
        page.label_value((90, y + 110), "身份证件号", person["id"], 30, label, gap=20)
        y += 200
    page.text((90, 900), "婚姻登记员：" + fake_name(rng), 28, fill=label)
    page.stamp((760, 1000), 95, f"{a['district']}民政局婚姻登记专用章")
    return page, Truth("divorce_certificate", name=holder["name"], id_number=holder["id"])


def render_social_security_card(rng: random.Random) -> Tuple[Page, Truth]:
    p = _person(rng)
    page = Page((1030, 650), (232, 240, 250), rng)
    page.text((515, 40), "中华人民共和国社会保障卡", 46, kind="serif_bold", fill=(20, 60, 140), anchor="ma")
    page.text((515, 105), "SOCIAL SECURITY CARD", 24, fill=(20, 60, 140), anchor="ma")
    label = (40, 70, 130)
    page.label_value((80, 230), "姓名", p["name"], 32, label, gap=30, name="name")
    page.label_value((80, 300), "社会保障号码", p["id"], 30, label, gap=24)
    page.label_value((80, 370), "社会保障卡号", f"{rng.choice('ABCDE')}{rng.randrange(10**7, 10**8)}", 30, label, gap=24)
    issued = random_date(rng, dt.date(2015, 1, 1), dt.date(2026, 6, 1))
    page.label_value((80, 440), "发卡日期", f"{issued.year}年{issued.month:02d}月", 30, label, gap=24)
    page.text((80, 540), rng.choice(["中国农业银行", "中国工商银行", "中国建设银行", "中国银行"]), 30, kind="sans_bold")
    page.portrait((760, 200, 960, 460), background=(232, 240, 250))
    return page, Truth("social_security_card", name=p["name"], id_number=p["id"])


def render_supplement_notice(rng: random.Random) -> Tuple[Page, Truth]:
    applicant = _person(rng)
    when = random_date(rng, dt.date(2025, 1, 1), dt.date(2026, 11, 30))
    number = f"ZW{when:%Y%m%d}{rng.randrange(1000):03d}"
    page = Page((1000, 1400), (253, 253, 250), rng)
    centre = applicant["city"].split("省")[-1] + applicant["district"]
    page.text((500, 70), f"{centre}政务服务中心", 38, kind="serif_bold", anchor="ma")
    page.text((500, 140), "补正材料告知书", 52, kind="serif_bold", anchor="ma")
    page.text((90, 260), f"{applicant['name']}：", 30, name="name")
    body = (
        f"您于{cn_date(when, pad=False)}申请的{rng.choice(_ITEMS)}事项（申请编号{number}），经审查，申请材料不齐全。"
        "请您在十个工作日内补正以下材料："
    )
    y = page.wrap((90, 320), body, 28, 28, line_gap=1.55, kind="serif") + 20
    for i, item in enumerate(rng.sample(["居民身份证复印件", "居民户口簿", "结婚证", "房屋租赁合同", "近期免冠证件照片"], 3), 1):
        page.text((120, y), f"{i}. {item}", 28, kind="serif")
        y += 50
    page.wrap((90, y + 30), "逾期未补正的，视为放弃申请。可通过微信或12345查询办理进度。", 28, 28, line_gap=1.55, kind="serif")
    page.stamp((760, 1150), 100, f"{centre}政务服务中心")
    return page, Truth("supplement_notice", name=applicant["name"], application_number=number)


RENDERERS: Dict[str, Callable[[random.Random], Tuple[Page, Truth]]] = {
    "id_card_front": render_id_card_front,
    "id_card_back": render_id_card_back,
    "household_register": render_household_register,
    "marriage_certificate": render_marriage_certificate,
    "birth_certificate": render_birth_certificate,
    "business_license": render_business_license,
    "rental_contract": render_rental_contract,
    "acceptance_receipt": render_acceptance_receipt,
    "residence_permit": render_residence_permit,
    "divorce_certificate": render_divorce_certificate,
    "social_security_card": render_social_security_card,
    "supplement_notice": render_supplement_notice,
}


# ---------------------------------------------------------------------------- photography
def _on_desk(page: Page, rng: random.Random) -> Tuple[Image.Image, Tuple[int, int]]:
    """The document on a desk-coloured background (margins 4-9 %)."""
    w, h = page.image.size
    mx, my = int(w * rng.uniform(0.04, 0.09)), int(h * rng.uniform(0.04, 0.09))
    desk = tuple(rng.randint(90, 160) for _ in range(3))
    photo = Image.new("RGB", (w + 2 * mx, h + 2 * my), desk)
    photo.paste(page.image, (mx, my))
    return photo, (mx, my)


def _shift(boxes: Dict[str, Box], dx: int, dy: int) -> Dict[str, Box]:
    return {k: (b[0] + dx, b[1] + dy, b[2] + dx, b[3] + dy) for k, b in boxes.items()}


def _noise(image: Image.Image, sigma: float, rng: random.Random) -> Image.Image:
    """Sensor noise drawn from ``rng`` (reproducible: Pillow's own noise is not seeded)."""
    import numpy as np

    pixels = np.asarray(image).astype(np.int16)
    noise = np.random.default_rng(rng.randrange(2**32)).normal(0.0, sigma, pixels.shape[:2])
    noisy = np.clip(pixels + noise[:, :, None].astype(np.int16), 0, 255).astype(np.uint8)
    return Image.fromarray(noisy)


def _vignette(image: Image.Image) -> Image.Image:
    w, h = image.size
    mask = Image.radial_gradient("L").resize((w, h))  # 0 centre .. 255 edge
    dark = ImageEnhance.Brightness(image).enhance(0.55)
    return Image.composite(dark, image, mask)


def _perspective(photo: Image.Image, rng: random.Random) -> Image.Image:
    """As if the phone were tilted: one edge 8-14 % shorter than the opposite one."""
    w, h = photo.size
    k = rng.uniform(0.08, 0.14)
    d = {"top": (k * w, 0), "bottom": (k * w, 0), "left": (0, k * h), "right": (0, k * h)}
    side = rng.choice(sorted(d))
    # Target quad (where the photo's corners land), then the coefficients mapping back.
    tl, tr, br, bl = [0, 0], [w, 0], [w, h], [0, h]
    if side == "top":
        tl[0] += k * w / 2; tr[0] -= k * w / 2
    elif side == "bottom":
        bl[0] += k * w / 2; br[0] -= k * w / 2
    elif side == "left":
        tl[1] += k * h / 2; bl[1] -= k * h / 2
    else:
        tr[1] += k * h / 2; br[1] -= k * h / 2
    import numpy as np

    source = [(0, 0), (w, 0), (w, h), (0, h)]
    rows = []
    for (x, y), (u, v) in zip([tl, tr, br, bl], source):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    coefficients = np.linalg.solve(np.array(rows, dtype=float), np.array([c for p in source for c in p], dtype=float))
    return photo.transform((w, h), Image.PERSPECTIVE, tuple(coefficients), Image.BICUBIC, fillcolor=photo.getpixel((2, 2)))


def _glare(photo: Image.Image, rng: random.Random) -> Image.Image:
    """A bright reflection (a soft white ellipse, 15-25 % of the width) somewhere on the document."""
    w, h = photo.size
    r = int(w * rng.uniform(0.15, 0.25))
    cx, cy = rng.randint(r, w - r), rng.randint(int(h * 0.2), int(h * 0.8))
    mask = Image.new("L", photo.size, 0)
    ImageDraw.Draw(mask).ellipse((cx - r, cy - int(r * 0.6), cx + r, cy + int(r * 0.6)), fill=rng.randint(235, 255))
    mask = mask.filter(ImageFilter.GaussianBlur(r / 6))
    return Image.composite(Image.new("RGB", photo.size, (255, 255, 255)), photo, mask)


def photograph(page: Page, truth: Truth, quality: str, rng: random.Random) -> Tuple[Image.Image, Truth, int]:
    """Degrade a rendered page as a phone photo of the given quality. Returns (image, truth, JPEG quality)."""
    photo, (mx, my) = _on_desk(page, rng)
    boxes = _shift(page.boxes, mx, my)
    visible = frozenset(boxes)
    jpeg_quality = 90
    if quality in ("rotated", "phone", "severe"):
        low, high = {"rotated": (5, 15), "phone": (4, 8), "severe": (18, 28)}[quality]
        angle = rng.uniform(low, high)
        angle *= rng.choice((-1, 1))
        photo = photo.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=photo.getpixel((2, 2)))
        boxes = {}  # the boxes no longer apply; everything stays in view
    if quality == "sideways":  # a phone photo whose orientation tag was lost
        photo = photo.transpose(rng.choice((Image.ROTATE_90, Image.ROTATE_270)))
        boxes = {}
    if quality == "perspective":
        photo = _perspective(photo, rng)
        boxes = {}
    if quality == "glare":
        photo = _glare(photo, rng)
    if quality == "blurred":
        photo = photo.filter(ImageFilter.GaussianBlur(rng.uniform(1.5, 2.5)))
    if quality == "low_light":
        photo = ImageEnhance.Contrast(photo).enhance(0.6)
        photo = ImageEnhance.Brightness(photo).enhance(rng.uniform(0.3, 0.45))
        photo = _vignette(photo)
        photo = _noise(photo, 12, rng)
    if quality == "cropped":
        w, h = page.image.size
        side = rng.choice(("left", "right", "top", "bottom"))
        cut = rng.uniform(0.12, 0.22)
        pw, ph = photo.size
        box = {
            "left": (mx + int(w * cut), 0, pw, ph), "right": (0, 0, mx + w - int(w * cut), ph),
            "top": (0, my + int(h * cut), pw, ph), "bottom": (0, 0, pw, my + h - int(h * cut)),
        }[side]
        photo = photo.crop(box)
        kept = {}
        for key, b in boxes.items():
            if b[0] >= box[0] and b[1] >= box[1] and b[2] <= box[2] and b[3] <= box[3]:
                kept[key] = (b[0] - box[0], b[1] - box[1], b[2] - box[0], b[3] - box[1])
        boxes, visible = kept, frozenset(kept)
    if quality == "jpeg":
        scale = rng.uniform(0.55, 0.7)
        photo = photo.resize((int(photo.width * scale), int(photo.height * scale)), Image.BILINEAR)
        boxes = {k: tuple(int(v * scale) for v in b) for k, b in boxes.items()}
        jpeg_quality = rng.randint(12, 20)
    if quality == "phone":
        photo = photo.filter(ImageFilter.GaussianBlur(1.0))
        photo = ImageEnhance.Brightness(photo).enhance(0.7)
        jpeg_quality = 35
    if quality == "severe":  # everything at once, harder: steep angle, blur, dark, small, blocky
        photo = photo.filter(ImageFilter.GaussianBlur(2.5))
        photo = ImageEnhance.Contrast(photo).enhance(0.6)
        photo = ImageEnhance.Brightness(photo).enhance(0.35)
        photo = _noise(photo, 10, rng)
        photo = photo.resize((int(photo.width * 0.55), int(photo.height * 0.55)), Image.BILINEAR)
        jpeg_quality = 15
    truth = replace(truth, quality=quality, boxes=boxes, visible=visible,
                    expiry_visible=truth.expiry is not None and "expiry" in visible)
    return photo, truth, jpeg_quality


def make_sample(doc_type: str, quality: str, rng: random.Random) -> Sample:
    """One synthetic photo of ``doc_type`` in ``quality``, as JPEG bytes, with its truth."""
    page, truth = RENDERERS[doc_type](rng)
    photo, truth, jpeg_quality = photograph(page, truth, quality, rng)
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=jpeg_quality)
    return Sample(data=buffer.getvalue(), truth=truth, size=photo.size)


def make_set(seed: int, doc_types=DOC_TYPES, qualities=QUALITIES) -> List[Sample]:
    """Every type in every quality, reproducible from ``seed``."""
    samples = []
    for doc_type in doc_types:
        for quality in qualities:
            rng = random.Random(f"{seed}:{doc_type}:{quality}")
            samples.append(make_sample(doc_type, quality, rng))
    return samples
