"""Dependency vulnerability audit of requirements.lock: a table of package, version,
advisory id (and its CVE/GHSA aliases), fix versions and where the finding came from.

1. pip-audit (pinned in bench/requirements-audit.lock, installed into its own
   environment build/audit-venv: it needs packaging >= 23 and CacheControl >= 0.13,
   which Rasa 3.6's pins exclude from .venv) checks every locked package against
   PyPI's per-release JSON API (``/pypi/<name>/<version>/json``).
2. Packages pip-audit could not audit (that API unreachable, as on networks that
   only mirror the package index) are checked against a snapshot of the PyPA
   advisory database (the data behind PyPI's answers, OSV format), filtered to the
   locked packages: bench/data/advisories/pypa-snapshot.json by default, or a
   checkout given with ``--advisories DIR``; ``--refresh-snapshot DIR`` rewrites the
   stored snapshot from such a checkout. The table says which source each row has.

    .venv/bin/python bench/audit.py [--lock requirements.lock] [--no-pip-audit] [--json]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import venv
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import yaml
from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parents[1]
TOOL_LOCK = ROOT / "bench" / "requirements-audit.lock"
TOOL_VENV = ROOT / "build" / "audit-venv"
SNAPSHOT = ROOT / "bench" / "data" / "advisories" / "pypa-snapshot.json"


@dataclass
class Finding:
    package: str
    version: str
    id: str
    aliases: List[str] = field(default_factory=list)
    fix_versions: List[str] = field(default_factory=list)
    summary: str = ""
    source: str = "pip-audit"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> Dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[canonical(name.split("[")[0])] = version.strip()
    return pins


# ------------------------------------------------------------------ pip-audit
def tool_python() -> Path:
    """build/audit-venv with the pinned pip-audit (created on first use)."""
    python = TOOL_VENV / "bin" / "python"
    stamp = TOOL_VENV / ".lock"
    if not python.exists() or not stamp.exists() or stamp.read_text() != TOOL_LOCK.read_text():
        venv.create(TOOL_VENV, with_pip=True, clear=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(TOOL_LOCK)], check=True,
                       stderr=subprocess.DEVNULL)
        stamp.write_text(TOOL_LOCK.read_text())
    return python


def run_pip_audit(lock: Path) -> Tuple[List[Finding], Dict[str, str]]:
    """(findings, {package: why it was not audited})."""
    command = [str(tool_python()), "-m", "pip_audit", "-r", str(lock), "--no-deps", "--disable-pip",
               "-f", "json", "--progress-spinner", "off"]
    done = subprocess.run(command, capture_output=True, text=True)
    if not done.stdout.strip():
        raise SystemExit(f"pip-audit failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    report = json.loads(done.stdout)
    findings, skipped = [], {}
    for dependency in report.get("dependencies", []):
        name = canonical(dependency["name"])
        if "skip_reason" in dependency:
            skipped[name] = dependency["skip_reason"]
            continue
        for vuln in dependency.get("vulns", []):
            findings.append(Finding(name, dependency["version"], vuln["id"], vuln.get("aliases", []),
                                    vuln.get("fix_versions", []), (vuln.get("description") or "")[:160]))
    return findings, skipped


# ------------------------------------------------------- advisory snapshot
def _version(text: str) -> Optional[Version]:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def affects(affected: Dict, version: str) -> bool:
    """OSV semantics: listed in ``versions``, or inside an ECOSYSTEM range."""
    if version in affected.get("versions", []):
        return True
    current = _version(version)
    if current is None:
        return False
    for ranges in affected.get("ranges", []):
        if ranges.get("type") != "ECOSYSTEM":
            continue
        start: Optional[Version] = None  # the open interval's lower bound
        for event in ranges.get("events", []):
            if "introduced" in event:
                start = Version("0") if event["introduced"] == "0" else _version(event["introduced"])
                continue
            bound = _version(event.get("fixed") or event.get("last_affected") or "")
            if start is not None and bound is not None and current >= start:
                if current < bound or ("last_affected" in event and current == bound):
                    return True
            if "fixed" in event or "last_affected" in event:
                start = None
        if start is not None and current >= start:
            return True
    return False


def fixed_versions(affected: Dict) -> List[str]:
    return [e["fixed"] for r in affected.get("ranges", []) if r.get("type") == "ECOSYSTEM"
            for e in r.get("events", []) if "fixed" in e]


def load_snapshot(path: Path) -> Dict:
    return json.loads(path.read_text())


def _compact(affected: Dict) -> Dict:
    """The version ranges (ECOSYSTEM); the explicit version list only where there are none."""
    ranges = [r for r in affected.get("ranges", []) if r.get("type") == "ECOSYSTEM"]
    return {"ranges": ranges} if ranges else {"ranges": [], "versions": affected.get("versions", [])}


def snapshot_from_checkout(checkout: Path, packages: Iterable[str]) -> Dict:
    """The advisories of ``packages`` from a PyPA advisory-database checkout (vulns/<name>/*.yaml)."""
    wanted = set(packages)
    advisories: Dict[str, List[Dict]] = {}
    for folder in sorted((checkout / "vulns").iterdir()):
        name = canonical(folder.name)
        if name not in wanted:
            continue
        for file in sorted(folder.glob("*.yaml")):
            record = yaml.load(file.read_text(), Loader=yaml.BaseLoader)  # every scalar as text
            affected = [a for a in record.get("affected", []) if canonical(a["package"]["name"]) == name]
            if record.get("withdrawn") or not affected:
                continue
            summary = (record.get("summary") or record.get("details") or "").strip().splitlines()[0][:160]
            advisories.setdefault(name, []).append({
                "id": record["id"], "aliases": record.get("aliases", []), "summary": summary,
                "modified": str(record.get("modified") or ""),
                "affected": [_compact(a) for a in affected],
            })
    head = subprocess.run(["git", "-C", str(checkout), "log", "-1", "--format=%H %cI"], capture_output=True, text=True)
    commit, _, date = head.stdout.strip().partition(" ")
    return {"source": "PyPA advisory database (CC-BY-4.0)", "commit": commit or None, "date": date or None,
            "advisories": advisories}


def check_snapshot(snapshot: Dict, pins: Dict[str, str], only: Optional[Iterable[str]] = None) -> List[Finding]:
    names = set(only) if only is not None else set(pins)
    findings = []
    for name in sorted(names):
        version = pins.get(name)
        for advisory in snapshot["advisories"].get(name, []):
            hits = [a for a in advisory["affected"] if affects(a, version)] if version else []
            if hits:
                fixes = sorted({v for a in hits for v in fixed_versions(a)}, key=lambda v: _version(v) or Version("0"))
                findings.append(Finding(name, version, advisory["id"], advisory.get("aliases", []), fixes,
                                        advisory.get("summary", ""), source=f"PyPA snapshot {snapshot.get('date', '')[:10]}"))
    return findings


# ---------------------------------------------------------------------- main
def table(findings: List[Finding]) -> str:
    rows = ["| package | version | vulnerability | aliases | fix versions | source |", "| --- | --- | --- | --- | --- | --- |"]
    for f in sorted(findings, key=lambda f: (f.package, f.id)):
        aliases = ", ".join(a for a in f.aliases if a.startswith(("CVE-", "GHSA-")))
        rows.append(f"| {f.package} | {f.version} | {f.id} | {aliases} | {', '.join(f.fix_versions) or '—'} | {f.source} |")
    return "\n".join(rows)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lock", type=Path, default=ROOT / "requirements.lock")
    parser.add_argument("--no-pip-audit", action="store_true", help="only the advisory snapshot")
    parser.add_argument("--advisories", type=Path, help="a PyPA advisory-database checkout instead of the snapshot")
    parser.add_argument("--refresh-snapshot", type=Path, metavar="DIR", help="rewrite the stored snapshot from DIR")
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    args = parser.parse_args(argv)
    pins = read_lock(args.lock)

    if args.refresh_snapshot:
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        data = snapshot_from_checkout(args.refresh_snapshot, pins)
        SNAPSHOT.write_text(json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True) + "\n")
        print(f"{SNAPSHOT.relative_to(ROOT)}: {sum(map(len, data['advisories'].values()))} advisories, "
              f"{len(data['advisories'])} packages, database of {data['date']}")
        return 0

    findings: List[Finding] = []
    skipped: Dict[str, str] = dict.fromkeys(pins, "pip-audit not run")
    if not args.no_pip_audit:
        findings, skipped = run_pip_audit(args.lock)
    snapshot = snapshot_from_checkout(args.advisories, pins) if args.advisories else load_snapshot(SNAPSHOT)
    if skipped:
        findings += check_snapshot(snapshot, pins, only=skipped)

    if args.json:
        print(json.dumps([asdict(f) for f in findings], ensure_ascii=False, indent=1))
        return 1 if findings else 0
    audited = len(pins) - len(skipped)
    print(f"{len(pins)} locked packages: {audited} audited by pip-audit against PyPI, {len(skipped)} against the "
          f"PyPA advisory snapshot of {(snapshot.get('date') or '?')[:10]} (commit {(snapshot.get('commit') or '?')[:12]})")
    if skipped and not args.no_pip_audit:
        reasons = sorted(set(re.sub(r":.*", "", r) for r in skipped.values()))
        print("pip-audit could not audit them: " + "; ".join(reasons))
    print()
    print(table(findings) if findings else "no known vulnerabilities")
    print(f"\n{len(findings)} findings in {len({f.package for f in findings})} packages")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
