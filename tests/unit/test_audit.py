"""bench/audit.py's offline check against the PyPA advisory snapshot (OSV ranges)."""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("bench_audit", ROOT / "bench" / "audit.py")
audit = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = audit  # dataclasses look their module up
spec.loader.exec_module(audit)


def test_osv_ranges():
    fixed = {"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.2"}, {"fixed": "1.4.1"}]}]}
    assert not audit.affects(fixed, "1.1") and audit.affects(fixed, "1.2") and audit.affects(fixed, "1.4.0")
    assert not audit.affects(fixed, "1.4.1") and not audit.affects(fixed, "2.0")
    last = {"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"last_affected": "3.0"}]}]}
    assert audit.affects(last, "3.0") and not audit.affects(last, "3.0.1")
    listed = {"ranges": [], "versions": ["0.5b1"]}
    assert audit.affects(listed, "0.5b1") and not audit.affects(listed, "0.5")
    two = {"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0"}, {"introduced": "2.0"},
                                                         {"fixed": "2.1"}]}]}
    assert [audit.affects(two, v) for v in ("0.9", "1.5", "2.0.3", "2.1")] == [True, False, True, False]
    assert audit.fixed_versions(two) == ["1.0", "2.1"]


def test_the_stored_snapshot_finds_known_advisories():
    snapshot = audit.load_snapshot(audit.SNAPSHOT)
    old = audit.check_snapshot(snapshot, {"jinja2": "2.4.1", "fastapi": "0.99.1", "requests": "2.34.2"})
    ids = {(f.package, f.id) for f in old}
    assert ("jinja2", "PYSEC-2014-8") in ids and ("fastapi", "PYSEC-2024-38") in ids
    assert not any(f.package == "requests" for f in old)
    assert all(f.fix_versions for f in old if f.package == "fastapi")


def test_lock_names_are_canonical(tmp_path):
    lock = tmp_path / "r.lock"
    lock.write_text("# comment\nPyYAML==6.0.3\nruamel.yaml.clib==0.2.15\nrasa[spacy]==3.6.21\n")
    assert audit.read_lock(lock) == {"pyyaml": "6.0.3", "ruamel-yaml-clib": "0.2.15", "rasa": "3.6.21"}
