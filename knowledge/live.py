"""The item linker of this process on the catalog in effect, swapped without retraining.

The Rasa model's ``ServiceItemLinker`` registers the linker it loaded (the base, trained
on the catalog files); when a new catalog version is published, the gateway's watcher
(``assistant.services.catalog_live``) calls :func:`install`, which derives from every
base a linker on the new catalog (``ItemLinker.with_catalog``: alias rules, names,
bundles, and the situations and sample questions added since training) and swaps them
in at once. :func:`current` gives the linker to use for a base: the derived one, or the
base itself while nothing is installed.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Dict, List, Optional, Tuple

from knowledge.catalog import Catalog
from knowledge.linker import ItemLinker

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_bases: "weakref.WeakSet[ItemLinker]" = weakref.WeakSet()
# id(base) → (a weak reference to the base, derived); replaced as a whole (one assignment)
# on every install.
_derived: Dict[int, Tuple["weakref.ref[ItemLinker]", ItemLinker]] = {}
_installed: Optional[Tuple[Catalog, Catalog]] = None  # (effective, files)


def added_texts(catalog: Catalog, files: Catalog) -> List[Tuple[str, str]]:
    """``(text, item_id)``: situations and sample questions that the catalog in effect
    has and the files (what the model was trained on) do not."""
    added: List[Tuple[str, str]] = []
    for record in catalog.items():
        original = files.get(record.id)
        known = set(original.situations) | set(original.examples) if original is not None else set()
        added += [(text, record.id) for text in (*record.situations, *record.examples) if text not in known]
    return added


def _derive(base: ItemLinker, catalog: Catalog, added: List[Tuple[str, str]]) -> ItemLinker:
    return base.with_catalog(catalog, added)


def install(catalog: Catalog, files: Catalog) -> int:
    """Derive every registered base's linker on ``catalog`` and swap them in; how many."""
    global _derived, _installed
    added = added_texts(catalog, files)
    with _lock:
        bases = list(_bases)
        derived = {id(base): (weakref.ref(base), _derive(base, catalog, added)) for base in bases}
        _derived = derived
        _installed = (catalog, files)
    logger.info("knowledge.live.installed version=%s linkers=%d added=%d", catalog.fingerprint, len(derived), len(added))
    return len(derived)


def register(base: ItemLinker) -> None:
    """A linker loaded with a model: derived at once when a catalog is installed."""
    global _derived
    with _lock:
        _bases.add(base)
        if _installed is not None:
            catalog, files = _installed
            _derived = {**_derived, id(base): (weakref.ref(base), _derive(base, catalog, added_texts(catalog, files)))}


def current(base: Optional[ItemLinker]) -> Optional[ItemLinker]:
    if base is None:
        return None
    pair = _derived.get(id(base))
    return pair[1] if pair is not None and pair[0]() is base else base


def installed_version() -> Optional[str]:
    return _installed[0].fingerprint if _installed is not None else None
