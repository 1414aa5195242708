"""``banshi kb ...``: the service catalog (validate, import, dict, load, propose-bundle, stale)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import List, Optional

from assistant.config.settings import Settings


def cmd_kb(args: argparse.Namespace, settings: Settings) -> int:
    from knowledge import jieba_dict
    from knowledge.catalog import CatalogError, load_catalog

    if args.kb_command == "import":
        from knowledge.importer import ImportError_, import_file

        try:
            written = import_file(Path(args.file), Path(args.out) if args.out else settings.catalog_dir)
        except ImportError_ as exc:
            print(f"导入失败 / import failed:\n{exc}", file=sys.stderr)
            return 1
        print(f"imported {len(written)} records into {args.out or settings.catalog_dir}")
        catalog_dir = Path(args.out) if args.out else settings.catalog_dir
    else:
        catalog_dir = Path(args.catalog) if getattr(args, "catalog", None) else settings.catalog_dir
    try:
        catalog = load_catalog(catalog_dir, settings.region_override)
    except CatalogError as exc:
        print(f"catalog invalid: {len(exc.problems)} problem(s)", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    if args.kb_command == "propose-bundle":
        return _propose_bundle(catalog, args.id)
    if args.kb_command == "stale":
        return _stale(catalog, args.months)
    if args.kb_command == "validate":
        problems = _check_facts(catalog_dir, settings, Path(args.facts) if args.facts else None)
        if problems:
            print(f"facts do not hold: {len(problems)} problem(s)", file=sys.stderr)
            for problem in problems:
                print(f"  {problem}", file=sys.stderr)
            return 1
        problems = _check_prefill(catalog_dir, settings, catalog)
        if problems:
            print(f"pre-application forms invalid: {len(problems)} problem(s)", file=sys.stderr)
            for problem in problems:
                print(f"  {problem}", file=sys.stderr)
            return 1
    if args.kb_command == "dict":
        from knowledge import nlu_examples

        for path, changed in ((jieba_dict.USER_DICT, jieba_dict.write(catalog)),
                              (nlu_examples.GENERATED_FILE, nlu_examples.write(catalog))):
            print(f"{path} {'updated' if changed else 'unchanged'}")
        return 0
    if args.kb_command == "load" or args.kb_command == "import":
        from knowledge import db
        from knowledge.revisions import effective_catalog

        # With the edits published on the admin page (knowledge/revisions.py) applied.
        effective, _ = effective_catalog(settings.db_url, catalog_dir, settings.region_override)
        db.sync_catalog(settings.db_url, effective, force=True)
    items = sum(1 for r in catalog.items() if r.kind == "item")
    bundles = len(catalog.records) - items
    print(f"catalog ok: {items} items, {bundles} bundles, fingerprint {catalog.fingerprint}")
    return 0


def _check_prefill(catalog_dir: Path, settings: Settings, catalog) -> List[str]:
    """The kiosk's pre-application forms (knowledge/prefill.yml) against the catalog."""
    from knowledge.prefill import PrefillError, load_forms

    if catalog_dir.resolve() != settings.catalog_dir.resolve():
        return []  # a catalog elsewhere (a copy under test): the forms file is not its own
    try:
        load_forms(catalog)
    except PrefillError as exc:
        return exc.problems
    return []


def _check_facts(catalog_dir: Path, settings: Settings, facts_path: Optional[Path]) -> List[str]:
    """The facts under test, checked against the catalog files (without the regional
    override: a region may change a fact on purpose)."""
    from knowledge.catalog import load_catalog
    from knowledge.facts import FACTS_FILE, check_facts, load_facts

    path = facts_path or FACTS_FILE
    if facts_path is None and catalog_dir.resolve() != settings.catalog_dir.resolve():
        return []  # a catalog elsewhere (a copy under test) has no facts file of its own
    try:
        facts = load_facts(path)
    except (OSError, ValueError) as exc:
        return [str(exc)]
    return check_facts(load_catalog(catalog_dir), facts, path)


def _propose_bundle(catalog, bundle_id: str) -> int:
    """Print a draft materials list for a bundle: its members' lists merged (to review)."""
    import yaml

    from knowledge.bundles import draft_materials, produced_by

    record = catalog.get(bundle_id)
    if record is None or record.kind != "bundle":
        print(f"{bundle_id}: not a bundle of the catalog", file=sys.stderr)
        return 1
    materials = draft_materials(catalog.records, record)
    produced = sorted(produced_by(catalog.records, record))
    print(f"# Draft materials for {bundle_id}, merged from its members: {', '.join(record.members) or 'none'}.")
    print("# Review every entry against the official guide: what not everyone needs becomes")
    print("# required: false with a condition (\"非婚生育的无需提供\"); then set reviewed: <date>.")
    print(f"# Left out as outputs (the bundle or a member produces them): {'、'.join(produced) or 'none'}")
    drafted = [json.loads(m.json(exclude_none=True)) for m in materials]
    print(yaml.safe_dump({"materials": drafted}, allow_unicode=True, sort_keys=False, width=1000), end="")
    return 0


def _stale(catalog, months: int) -> int:
    from knowledge.catalog import stale_records

    found = stale_records(catalog, months)
    for line in found:
        print(line)
    print(f"{len(found)} record date(s) or source(s) not checked within {months} months")
    return 1 if found else 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    kb = sub.add_parser("kb", help="service catalog tools")
    kb_sub = kb.add_subparsers(dest="kb_command", required=True)
    validate = kb_sub.add_parser("validate", help="validate the catalog files and the facts under test")
    validate.add_argument("--catalog", type=os.path.abspath, help="catalog directory (default: knowledge/catalog)")
    validate.add_argument("--facts", type=os.path.abspath, help="facts table (default: knowledge/facts.tsv)")
    propose = kb_sub.add_parser("propose-bundle", help="draft a bundle's materials from its members")
    propose.add_argument("id", help="the bundle id, e.g. bundle_newborn")
    propose.add_argument("--catalog", type=os.path.abspath, help="catalog directory (default: knowledge/catalog)")
    stale = kb_sub.add_parser("stale", help="records and sources not checked within N months")
    stale.add_argument("--months", type=int, default=12, help="how old a check may be (default 12)")
    stale.add_argument("--catalog", type=os.path.abspath, help="catalog directory (default: knowledge/catalog)")
    kb_sub.add_parser("dict", help="regenerate the jieba user dictionary and the intent examples of the situations")
    kb_sub.add_parser("load", help="load the catalog files into the database")
    imp = kb_sub.add_parser("import", help="import a catalog from .csv or .xlsx")
    imp.add_argument("file")
    imp.add_argument("--out", help="catalog directory to write (default: knowledge/catalog)")
    kb.set_defaults(func=cmd_kb)
