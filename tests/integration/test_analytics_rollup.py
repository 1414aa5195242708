"""The analytics rollup in the background (assistant/services/analytics/background.py):
a pass brings the recent days up to date, newest first and a bounded number per pass;
a dashboard request afterwards reads them as they are (only today and days never
computed are refreshed in the request) and says how fresh they are; of two replicas
racing, the lease lets one do the pass. Real SQLite or PostgreSQL (BANSHI_TEST_BACKEND),
the seeded week of tests/analytics_seed.py written by banshi's own tracker store."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Dict, List, Optional, Tuple

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from assistant.api.app import create_app
from assistant.services.analytics import background
from assistant.services.analytics.config import TUNABLES
from assistant.services.analytics.report import Filters, build_report
from assistant.services.analytics.rollup import RefreshResult
from assistant.storage import leases
from assistant.storage.analytics_tables import AnalyticsDay
from assistant.storage.database import session_factory
from tests.analytics_seed import DAYS, FIRST_DAY, LAST_DAY, seed_week
from tests.conftest import isolated_settings
from tests.integration.test_analytics import check_report, expected

NOON_LAST_DAY = dt.datetime(2026, 11, 8, 4, 0)  # 12:00 in Beijing, UTC naive
NEXT_NIGHT = dt.datetime(2026, 11, 8, 17, 0)  # 01:00 on 11-09 in Beijing: the week has ended and settled
WEEK = Filters(FIRST_DAY, LAST_DAY)


def bookkeeping(url: str) -> Dict[dt.date, Tuple[dt.datetime, bool, int]]:
    with session_factory(url)() as db:
        return {r.day: (r.computed_at, r.complete, r.turns) for r in db.execute(select(AnalyticsDay)).scalars()}


def iso(moment: dt.datetime) -> str:
    return moment.replace(tzinfo=dt.timezone.utc).isoformat()


@pytest.fixture
def seeded(settings, tmp_path):
    config = isolated_settings(settings, tmp_path, timezone="Asia/Shanghai", analytics_rollup_minutes=5)
    return config, seed_week(config)


def test_a_pass_leaves_the_dashboard_request_nothing_but_today(seeded):
    config, week = seeded
    assert background.runs_in_background(config)
    done = background.rollup_pass(config, "replica-a", now=NOON_LAST_DAY)
    # Newest first, at most days_per_pass (7): the seeded week; the rest of the window later.
    assert done is not None and done.days == sorted(DAYS, reverse=True)
    assert done.remaining == TUNABLES.window_days - TUNABLES.days_per_pass
    before = bookkeeping(config.db_url)
    assert [before[d][1] for d in DAYS] == [True] * 6 + [False]

    # Half a minute later: today is fresh, nothing is reduced again in the request.
    body = build_report(config, None, WEEK, now=NOON_LAST_DAY + dt.timedelta(seconds=30))
    assert body["range"]["refreshed_days"] == 0
    assert bookkeeping(config.db_url) == before
    assert body["range"]["rolled_up_at"] == iso(NOON_LAST_DAY)  # today's computation, the oldest open one
    check_report(body, expected(week))

    # Past midnight the last day is stale, but no longer today: the request reads it as
    # the pass left it (and says how old that is); the next pass completes it.
    body = build_report(config, None, WEEK, now=NEXT_NIGHT)
    assert body["range"]["refreshed_days"] == 0
    assert bookkeeping(config.db_url)[LAST_DAY] == before[LAST_DAY]
    assert body["range"]["rolled_up_at"] == iso(NOON_LAST_DAY)
    following = background.rollup_pass(config, "replica-a", now=NEXT_NIGHT)
    assert following is not None and following.days[:2] == [LAST_DAY + dt.timedelta(days=1), LAST_DAY]
    assert len(following.days) == TUNABLES.days_per_pass
    after = bookkeeping(config.db_url)
    assert after[LAST_DAY] == (NEXT_NIGHT, True, sum(1 for t in week.turns if t.day == LAST_DAY))
    assert all(after[d] == before[d] for d in DAYS[:-1])  # complete days were not read again
    body = build_report(config, None, WEEK, now=NEXT_NIGHT + dt.timedelta(seconds=30))
    assert body["range"]["refreshed_days"] == 0
    assert body["range"]["rolled_up_at"] == iso(NEXT_NIGHT)  # every day complete: the last one finished
    check_report(body, expected(week))


def test_a_day_never_computed_is_still_counted_in_the_request(seeded):
    config, week = seeded
    # A range older than the pass' window (or before the first pass): computed in the request.
    body = build_report(config, None, WEEK, now=NOON_LAST_DAY + dt.timedelta(days=60))
    assert body["range"]["refreshed_days"] == len(DAYS)
    check_report(body, expected(week))


def test_of_two_replicas_racing_one_does_the_pass(seeded):
    config, _ = seeded
    start = threading.Barrier(2)
    results: Dict[str, Optional[RefreshResult]] = {}

    def replica(holder: str) -> None:
        start.wait()
        results[holder] = background.rollup_pass(config, holder, now=NOON_LAST_DAY)

    threads = [threading.Thread(target=replica, args=(holder,)) for holder in ("replica-a", "replica-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [holder for holder, done in results.items() if done is not None]
    assert len(winners) == 1, results
    winner, loser = winners[0], ({"replica-a", "replica-b"} - set(winners)).pop()
    assert results[winner].days == sorted(DAYS, reverse=True)
    assert leases.holder_of(config.db_url, background.LEASE_NAME) == winner
    # The lease stays with the winner (renewed each pass) until it gives it up.
    assert background.rollup_pass(config, loser, now=NOON_LAST_DAY) is None
    assert background.rollup_pass(config, winner, now=NOON_LAST_DAY + dt.timedelta(minutes=5)) is not None
    leases.release(config.db_url, background.LEASE_NAME, winner)
    assert background.rollup_pass(config, loser, now=NOON_LAST_DAY + dt.timedelta(minutes=10)) is not None


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_two_gateways_one_rollup(settings, tmp_path):
    """Two app instances on one database: each starts the background task with its
    lifespan, one of them holds the lease and computes the recent days."""
    config = isolated_settings(settings, tmp_path, timezone="Asia/Shanghai", analytics_rollup_minutes=5)
    apps = [create_app(config, load_model=False) for _ in range(2)]
    with TestClient(apps[0]), TestClient(apps[1]):
        loops: List[background.RollupLoop] = [app.state.analytics_rollup for app in apps]
        wait_for(lambda: all(loop.attempts >= 1 for loop in loops))
        leaders = [loop for loop in loops if loop.passes]
        assert len(leaders) == 1 and leaders[0].leader
        follower = next(loop for loop in loops if loop is not leaders[0])
        assert follower.passes == 0 and not follower.leader
        assert leases.holder_of(config.db_url, background.LEASE_NAME) == leaders[0].holder
        # The leader catches up in passes of days_per_pass until the window is done.
        wait_for(lambda: len(bookkeeping(config.db_url)) >= TUNABLES.window_days)
        assert leaders[0].passes >= -(-TUNABLES.window_days // TUNABLES.days_per_pass)
    # Stopped: the lease is given up at once for another replica.
    assert leases.holder_of(config.db_url, background.LEASE_NAME) is None
