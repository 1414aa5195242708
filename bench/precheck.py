"""Offline material pre-check (预审) on synthetic document photos: type accuracy, expiry read
correctly where visible, name match, and seconds per image.

    python bench/precheck.py                 # the dev set (seed 1): 8 types x 7 qualities = 56 images
    python bench/precheck.py --seed 3        # the held-out seed (see bench/README.md)
    python bench/precheck.py --show-errors   # what was read when the type or expiry was wrong

Images are generated at run time by tests/materials_images.py and written to bench/out/ (kept
out of git) so failures can be looked at. Every image goes through the same path as an upload:
inspect_upload, then the pre-check (OCR + rules) with the material that expects the rendered type
and the applicant's masked name.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import pickle
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant.services.materials import ocr  # noqa: E402
from assistant.services.materials.doctypes import mask_name  # noqa: E402
from assistant.services.materials.inspect import inspect_upload  # noqa: E402
from assistant.services.materials.precheck import evaluate  # noqa: E402
from tests.materials_images import (  # noqa: E402
    DISTRACTORS, DOC_TYPES, LONG_TERM, QUALITIES, STRESS_QUALITIES, TODAY, make_set,
)

# A catalogue material that asks for each type (what an operator would have listed as missing).
MATERIAL_FOR = {
    "id_card_front": "居民身份证",
    "id_card_back": "居民身份证背面",
    "household_register": "居民户口簿",
    "marriage_certificate": "结婚证",
    "birth_certificate": "出生医学证明",
    "business_license": "营业执照",
    "rental_contract": "房屋租赁合同",
    "acceptance_receipt": "离婚登记申请受理回执单",
    # distractors: photographed instead of the material they resemble
    "residence_permit": "居民身份证",
    "divorce_certificate": "结婚证",
    "social_security_card": "居民身份证",
    "supplement_notice": "居民户口簿",
}


SEED_STATUS = {1: "dev", 2: "dev (held-out until its first run)", 3: "held-out"}


def percentile(values, q):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def pct(hits, total):
    return f"{100.0 * hits / total:5.1f}% ({hits}/{total})" if total else "     -"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=1,
                        help="1 and 2 = dev (tuned on; 2 was held out until its first run), 3 = held-out")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "precheck")
    parser.add_argument("--types", nargs="*", default=list(DOC_TYPES) + list(DISTRACTORS))
    parser.add_argument("--qualities", nargs="*", default=list(QUALITIES) + list(STRESS_QUALITIES),
                        help="the target is measured on %s; %s are harder extras" % (",".join(QUALITIES), ",".join(STRESS_QUALITIES)))
    parser.add_argument("--show-errors", action="store_true")
    parser.add_argument("--reuse-ocr", action="store_true",
                        help="take the OCR results of the last run of this seed (to tune the rules; times are the old ones)")
    parser.add_argument("--max-side", type=int, default=ocr.MAX_SIDE, help="longer side given to the OCR")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    started = time.perf_counter()
    samples = make_set(args.seed, args.types, args.qualities)
    generated = time.perf_counter() - started
    out = args.out / f"seed{args.seed}"
    out.mkdir(parents=True, exist_ok=True)
    for sample in samples:
        (out / f"{sample.truth.doc_type}-{sample.truth.quality}.jpg").write_bytes(sample.data)

    ocr.MAX_SIDE = args.max_side
    started = time.perf_counter()
    ocr.engine()
    load = time.perf_counter() - started

    cache_path = out / "ocr-cache.pkl"
    cache = pickle.loads(cache_path.read_bytes()) if args.reuse_ocr and cache_path.exists() else {}
    reused = bool(cache)
    rows = []
    for sample in samples:
        truth = sample.truth
        inspected = inspect_upload(sample.data)
        name = hashlib.sha256(sample.data).hexdigest()  # a changed image is read again
        if name in cache:
            read = cache[name]
        else:
            read = ocr.ocr_upload_sync(sample.data, inspected)
            cache[name] = read
        t0 = time.perf_counter()
        result = evaluate(read, MATERIAL_FOR[truth.doc_type], mask_name(truth.name) if truth.name else None, TODAY)
        seconds = read.seconds + time.perf_counter() - t0  # OCR + rules (the same path as precheck_sync)
        if truth.doc_type in DOC_TYPES:
            type_ok = result.doc_type == truth.doc_type
        else:  # a distractor: right when not taken for one of the eight types (None, or itself)
            type_ok = result.doc_type not in DOC_TYPES
        expiry_ok = None
        if truth.expiry is not None and truth.expiry_visible:
            expiry_ok = result.long_term if truth.expiry == LONG_TERM else result.expiry == truth.expiry
        name_ok = None if not truth.name or "name" not in truth.visible or truth.doc_type not in DOC_TYPES else result.name_matches is True
        rows.append((truth, result, seconds, type_ok, expiry_ok, name_ok, read.cpu_seconds))
        if args.show_errors and (not type_ok or expiry_ok is False):
            print(f"--- {truth.doc_type}/{truth.quality}: got {result.doc_type} expiry {result.expiry} "
                  f"long_term {result.long_term} (truth {truth.expiry}) scores {result.scores}")
            print("    " + result.text_masked.replace("\n", " | ")[:600])

    cache_path.write_bytes(pickle.dumps(cache))

    def table(title, key, keys, subset, totals):
        print(f"\n{title:<22} {'images':>6}  {'type accuracy':>16}  {'expiry (visible)':>16}  {'name match':>16}  {'p50 s':>6} {'p95 s':>6}")
        print("-" * 96)
        groups = defaultdict(list)
        for row in subset:
            groups[key(row[0])].append(row)
        for name in list(keys) + list(totals):
            group = totals[name] if name in totals else groups.get(name, [])
            if not group:
                continue
            types = sum(1 for r in group if r[3])
            expiry = [r[4] for r in group if r[4] is not None]
            names = [r[5] for r in group if r[5] is not None]
            times = [r[2] for r in group]
            print(f"{name:<22} {len(group):>6}  {pct(types, len(group)):>16}  {pct(sum(expiry), len(expiry)):>16}  "
                  f"{pct(sum(names), len(names)):>16}  {percentile(times, 0.5):6.2f} {percentile(times, 0.95):6.2f}")

    print(f"material pre-check, seed {args.seed} ({SEED_STATUS.get(args.seed, 'unused seed')}), {len(rows)} synthetic images "
          f"(generated in {generated:.1f} s into {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}); "
          f"OCR engine load {load:.2f} s, longer side {args.max_side} px"
          + ("; OCR REUSED from the last run: times are that run's" if reused else ""))
    eight = [r for r in rows if r[0].doc_type in DOC_TYPES]
    target = [r for r in eight if r[0].quality in QUALITIES]
    stress = [r for r in eight if r[0].quality not in QUALITIES]
    others = [r for r in rows if r[0].doc_type not in DOC_TYPES]
    table("type (target qualities)", lambda t: t.doc_type, args.types, [r for r in rows if r[0].quality in QUALITIES],
          {"all 8 types (target)": target})
    table("quality (8 types)", lambda t: t.quality, args.qualities, eight,
          {"all (target)": target, "all (stress)": stress, "all": eight})
    reasons = Counter(reason for r in target for reason in r[1].reasons)
    print("\nreasons given on the 8 types (target qualities), images: "
          + (", ".join(f"{k} {v}" for k, v in reasons.most_common()) or "none")
          + f"; truly expired (visible) {sum(1 for r in target if r[4] is not None and r[0].expiry != LONG_TERM and r[0].expiry < TODAY)}")
    if others:
        passed = sum(1 for r in others if r[1].verdict == "ok")
        print(f"\ndistractors (other documents photographed instead of the requested one): {len(others)} images, "
              f"taken for one of the eight types {sum(1 for r in others if not r[3])}, answered \"ok\" {passed}")
    for label, subset in (("target qualities", [r for r in rows if r[0].quality in QUALITIES]), ("all", rows)):
        times = [r[2] for r in subset]
        cpu = [r[6] for r in subset]
        print(f"\nseconds per image, {label} ({len(subset)} images; OCR + pre-check): wall mean {statistics.mean(times):.2f}, "
              f"p50 {percentile(times, 0.5):.2f}, p95 {percentile(times, 0.95):.2f}, max {max(times):.2f}; "
              f"CPU (both cores together) p50 {percentile(cpu, 0.5):.2f}, p95 {percentile(cpu, 0.95):.2f}")
    loadavg = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average at the end {loadavg[0]:.1f} / {loadavg[1]:.1f} / {loadavg[2]:.1f} "
          "(other jobs share the cores: wall times are inflated when the load is above 2)")
    wrong = [(r[0].doc_type, r[0].quality, r[1].doc_type) for r in rows if not r[3]]
    if wrong:
        print("type errors (truth/quality -> read): " + ", ".join(f"{a}/{b}->{c}" for a, b, c in wrong))
    return 0


if __name__ == "__main__":
    sys.exit(main())
