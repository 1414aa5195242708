"""How fast the analytics are on a busy tracker store: synthetic conversations written
straight into Rasa's ``events`` table in the shape banshi's tracker store writes them
(each turn: the citizen's message with its parse, the action, the reply, the dialogue's
custom message, action_listen), then

1. the rollup of every day (tracker events → ``analytics_turns``), per day and per turn;
2. reports over 7 and 30 days once the days are complete, all channels and filtered;
3. the same report while today is recomputed (the dashboard's worst case);
4. the next morning: the report before and after the background pass, and the pass;

printed as a table. SQLite files in a temporary folder by default; ``--database-url``
puts our tables and the tracker store in that database instead (PostgreSQL: use an
empty database).

    .venv/bin/python bench/analytics.py [--days 30] [--per-day 500] [--database-url URL]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select  # noqa: E402

from assistant.config.settings import Settings  # noqa: E402
from assistant.dialogue.runtime import build_tracker_store  # noqa: E402
from assistant.services.analytics import background, rollup  # noqa: E402
from assistant.services.analytics.report import Filters, build_report  # noqa: E402
from assistant.storage.database import get_engine, utcnow  # noqa: E402
from knowledge.catalog import load_catalog  # noqa: E402

ITEMS = ["passport", "id_card_reissue", "social_security_card", "residence_permit", "public_rental_housing",
         "housing_fund_withdrawal", "marriage_registration", "no_criminal_record"]
QUESTIONS = [("ask_materials", "materials"), ("ask_fee", "fee"), ("ask_process", "process"),
             ("ask_location", "location"), ("ask_service", "overview"), ("out_of_scope", "out_of_scope"),
             ("ask_service", "not_covered"), ("nlu_fallback", None)]
CHANNELS = ["web", "wechat", "kiosk"]


def turn_events(sender: str, channel: str, at: float, rng: random.Random) -> List[Dict]:
    intent, answer = rng.choice(QUESTIONS)
    item = rng.choice(ITEMS) if answer in ("materials", "fee", "process", "location", "overview") else None
    text = f"请问{item or '这个'}要怎么办理，需要带什么材料{rng.randint(0, 999)}"
    parse = {"text": text, "intent": {"name": intent, "confidence": 0.9}, "entities": [],
             "intent_ranking": [{"name": n, "confidence": 0.1} for n, _ in QUESTIONS],
             "service_items": [{"id": i, "name": i, "score": 0.2} for i in ITEMS[:5]],
             "service_scope": "none", "response_selector": {}}
    reply_at = at + rng.uniform(0.02, 0.4)
    user = {"event": "user", "timestamp": at, "metadata": {}, "text": text, "parse_data": parse,
            "input_channel": channel, "message_id": f"{sender}-{at}"}
    bot = {"event": "bot", "timestamp": reply_at, "metadata": {"utter_action": "action_answer"},
           "text": "办理" + "。" * 200, "data": {"elements": None, "quick_replies": None, "buttons": None,
                                               "attachment": None, "image": None, "custom": None}}
    custom = dict(bot, text=None, timestamp=reply_at + 0.001,
                  data=dict(bot["data"], custom={"reply": {"item": item, "answer": answer}}))
    rows = [("user", at, intent, None, user),
            ("action", at + 0.005, None, "action_answer", {"event": "action", "name": "action_answer", "timestamp": at})]
    rows.append(("bot", reply_at, None, None, bot))
    if answer:
        rows.append(("bot", reply_at + 0.001, None, None, custom))
    rows.append(("action", reply_at + 0.01, None, "action_listen",
                 {"event": "action", "name": "action_listen", "timestamp": reply_at}))
    return [{"sender_id": sender, "type_name": t, "timestamp": ts, "intent_name": i, "action_name": a,
             "data": json.dumps(d, ensure_ascii=False)} for t, ts, i, a, d in rows]


def write_events(settings: Settings, days: List[dt.date], per_day: int, seed: int = 7) -> Tuple[int, int]:
    """Conversations of 1-5 turns over the local days; returns (events, turns)."""
    store = build_tracker_store(settings)  # creates Rasa's table
    table = store.SQLEvent.__table__
    rng = random.Random(seed)
    zone = rollup.ZoneInfo(settings.timezone)
    events = turns = 0
    with store.engine.begin() as conn:
        for day in days:
            start = rollup.day_bounds(day, zone)[0].replace(tzinfo=dt.timezone.utc).timestamp()
            batch: List[Dict] = []
            for n in range(per_day):
                sender = f"{rng.choice(['web-', 'wx-', 'kiosk-'])}bench{day.isoformat()}{n}"
                channel = {"web-": "web", "wx-": "wechat", "kiosk-": "kiosk"}[sender.split("bench")[0]]
                at = start + rng.uniform(8 * 3600, 20 * 3600)
                for k in range(rng.randint(1, 5)):
                    batch += turn_events(sender, channel, at + 40 * k, rng)
                    turns += 1
            conn.execute(insert(table), batch)
            events += len(batch)
    return events, turns


def timed(fn, repeat: int = 1) -> Tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-day", type=int, default=500, help="conversations per day (1-5 turns each)")
    parser.add_argument("--database-url", help="our tables and the tracker store (default: SQLite files)")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="banshi-bench-analytics-"))
    overrides = {"data_dir": folder, "timezone": "Asia/Shanghai", "secret_key": "b" * 64}
    if args.database_url:
        overrides.update(database_url=args.database_url, tracker_db_url=args.database_url)
    settings = Settings(**overrides)
    get_engine(settings.db_url)  # migrated
    now = utcnow()
    today = rollup.local_day(now, rollup.ZoneInfo(settings.timezone))
    days = [today - dt.timedelta(days=n) for n in range(args.days - 1, -1, -1)]
    catalog = load_catalog()

    seconds, (events, turns) = timed(lambda: write_events(settings, days, args.per_day))
    print(f"wrote {events} events ({turns} turns, {args.per_day} conversations/day, {args.days} days) in {seconds:.1f} s",
          file=sys.stderr)
    engine = rollup.tracker_engine(settings.trackers_url)
    rows: List[Tuple[str, str]] = []
    backend = engine.dialect.name
    rows.append(("tracker events / turns", f"{events} / {turns}"))

    roll_seconds, done = timed(lambda: rollup.refresh(settings, days[0], days[-1], now=now))
    rows.append((f"rollup of {len(done.days)} days (first read, index built)",
                 f"{roll_seconds:.2f} s ({roll_seconds / len(done.days) * 1000:.0f} ms/day, "
                 f"{done.turns / roll_seconds:.0f} turns/s)"))
    one_day, _ = timed(lambda: rollup.read_day(engine, days[-2], rollup.ZoneInfo(settings.timezone),
                                               settings.secret()), repeat=3)
    rows.append(("reading one day again (median of 3)", f"{one_day * 1000:.0f} ms"))
    week = Filters(days[-7], days[-1])
    month = Filters(days[max(0, len(days) - 30)], days[-1])
    later = now + dt.timedelta(seconds=1)  # today is fresh: nothing is recomputed
    for label, filters in (("report, 7 days", week), ("report, 30 days", month),
                           ("report, 30 days, channel wechat", Filters(month.start, month.end, channel="wechat")),
                           ("report, 30 days, item passport", Filters(month.start, month.end, item="passport"))):
        seconds, _ = timed(lambda: build_report(settings, catalog, filters, now=later), repeat=5)
        rows.append((f"{label} (median of 5)", f"{seconds * 1000:.0f} ms"))
    stale = now + dt.timedelta(minutes=5)  # today is read again from the tracker store
    seconds, _ = timed(lambda: build_report(settings, catalog, week, now=stale))
    rows.append(("report, 7 days, today recomputed", f"{seconds * 1000:.0f} ms"))
    # The next morning, with the background rollup on: the request reads yesterday as the
    # last pass left it (only the new day is computed), the pass completes yesterday.
    morning = now + dt.timedelta(days=1, minutes=15)
    next_week = Filters(days[-6], days[-1] + dt.timedelta(days=1))
    seconds, body = timed(lambda: build_report(settings, catalog, next_week, now=morning))
    rows.append((f"report, 7 days, next morning, before the pass (days read: {body['range']['refreshed_days']})",
                 f"{seconds * 1000:.0f} ms"))
    seconds, done = timed(lambda: background.rollup_pass(settings, "bench", now=morning))
    rows.append((f"background pass, next morning (days read: {len(done.days)}, {done.turns} turns)",
                 f"{seconds * 1000:.0f} ms"))
    later = morning + dt.timedelta(seconds=1)
    seconds, body = timed(lambda: build_report(settings, catalog, next_week, now=later), repeat=5)
    rows.append((f"report, 7 days, next morning, after the pass (days read: {body['range']['refreshed_days']})",
                 f"{seconds * 1000:.0f} ms"))
    with get_engine(settings.db_url).connect() as conn:
        stored = conn.execute(select(func.count()).select_from(rollup.AnalyticsTurn.__table__)).scalar_one()
    rows.append(("analytics_turns rows", str(stored)))

    width = max(len(r[0]) for r in rows)
    print(f"\nanalytics on {backend} ({folder if not args.database_url else 'given database'})\n")
    print(f"| {'measure'.ljust(width)} | result |")
    print(f"| {'-' * width} | --- |")
    for name, value in rows:
        print(f"| {name.ljust(width)} | {value} |")


if __name__ == "__main__":
    main()
