"""CSV files of the report's tables: UTF-8 with a byte-order mark (Excel opens
Chinese text correctly), Chinese headers, and no formulas: a cell that a
spreadsheet would run as one (starting with = + - @, a tab or a carriage return:
the not-understood messages are citizens' words) is written with a leading ``'``."""

from __future__ import annotations

import csv
import io
from typing import Any, Dict, List, Tuple

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"


def cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(columns: List[Tuple[str, str]], rows: List[Dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([label for _, label in columns])
    for row in rows:
        writer.writerow([cell(row.get(key)) for key, _ in columns])
    return (BOM + buffer.getvalue()).encode("utf-8")
