"""Document names: one canonical name per document, so that a list cannot ask for
the same document twice under two names (户口本 and 居民户口簿).

``canonical("户口本") == "居民户口簿"``. A name joining alternatives with 或
("房屋租赁合同或其他居住证明") stands for each of them: ``alternatives`` splits it.
Add a synonym here when a catalog file uses a new name for a known document.
"""

from __future__ import annotations

from typing import Dict, FrozenSet, Tuple

# canonical name → other names people and guides use for the same document
DOCUMENT_SYNONYMS: Dict[str, Tuple[str, ...]] = {
    "居民户口簿": ("户口簿", "户口本", "户口薄", "居民户口本"),
    "房屋租赁合同": ("租房合同", "租赁合同", "住房租赁合同", "房屋租赁协议"),
    "居民身份证": ("身份证", "二代身份证", "第二代居民身份证"),
    "死者居民身份证": ("死者的居民身份证", "逝者居民身份证", "逝者的居民身份证", "死者身份证", "逝者身份证"),
    "近期免冠证件照片": ("证件照", "证件照片", "免冠照片", "免冠证件照片"),
    "不动产权证书": ("房产证", "房屋所有权证", "不动产证", "不动产权证"),
    "社会保障卡": ("社保卡",),
    "结婚证": ("结婚证书",),
    "离婚证": ("离婚证书",),
    "出生医学证明": ("出生证", "出生证明"),
    "居民死亡医学证明（推断）书": ("居民死亡医学证明", "死亡医学证明", "死亡证明"),
    "营业执照": ("电子营业执照", "营业执照副本"),
    "银行卡": ("银行账户", "银行账户信息", "银行卡号"),
    "授权委托书": ("委托书",),
    "申请表": ("申请书",),
}

ALTERNATIVE_SEPARATOR = "或"
_CANONICAL: Dict[str, str] = {
    variant: canonical for canonical, variants in DOCUMENT_SYNONYMS.items() for variant in variants
}


def canonical(name: str) -> str:
    """The canonical name of a document: 户口本 → 居民户口簿."""
    name = name.strip()
    return _CANONICAL.get(name, name)


def alternatives(name: str) -> FrozenSet[str]:
    """The canonical documents a material name stands for: A或B → {A, B}."""
    return frozenset(canonical(part) for part in name.split(ALTERNATIVE_SEPARATOR) if part.strip())


def same_document(first: str, second: str) -> bool:
    """Whether two material names can name the same document."""
    return bool(alternatives(first) & alternatives(second))
