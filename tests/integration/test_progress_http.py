"""HttpProvider against a real HTTP server: a tiny fake case-management system
(FastAPI served by uvicorn in a thread on a free port)."""

import asyncio
import datetime as dt
import logging
import time
from collections import Counter

import pytest
from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse, Response

from assistant.services.progress.providers import HttpProvider, ProgressUnavailable
from assistant.storage.tables import STATUS_ACCEPTED, STATUS_SUPPLEMENT
from tests.conftest import free_port, serve_in_thread

TOKEN = "cms-test-token"
SLOW_S = 1.5
FOUND = {
    "number": "ZW20250318007",
    "item_id": "passport",
    "applicant_masked": "张*",
    "phone_last4": "5678",
    "status": "supplement",
    "steps": [  # newest first on purpose: the provider sorts them
        {"status": "需补正", "at": "2025-03-19T07:00:00Z", "note": "请补交照片，可致电13812345678咨询",
         "missing_materials": ["近期免冠证件照片"]},
        {"status": "accepted", "at": "2025-03-18T09:30:00+08:00", "note": "窗口受理"},
    ],
    "promised_date": "2026-12-28",
    "pickup_method": "邮寄",
    "extra_field": "ignored",
}


def make_cms(calls: Counter) -> FastAPI:
    app = FastAPI()

    @app.get("/cms/applications/{number}")
    async def application(number: str, authorization: str = Header(default="")):
        calls[number] += 1
        if authorization != f"Bearer {TOKEN}":
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        if number == "ZW20250318007":
            return FOUND
        if number == "ZW20250318011":  # fails twice, then answers
            if calls[number] <= 2:
                return JSONResponse({"error": "busy"}, status_code=503)
            return {**FOUND, "number": number}
        if number == "ZW20250318012":  # always down
            return JSONResponse({"error": "down"}, status_code=503)
        if number == "ZW20250318013":  # slower than the client's timeout
            await asyncio.sleep(SLOW_S)
            return {**FOUND, "number": number}
        if number == "ZW20250318014":
            return Response("<html>oops</html>", media_type="text/html")
        if number == "ZW20250318015":  # wrong shape, with a raw phone number in it
            return {**FOUND, "number": number, "phone_last4": "13812345678"}
        if number == "ZW20250318016":
            return {**FOUND, "applicant_masked": "张三丰", "number": number}
        return JSONResponse({"error": "not found"}, status_code=404)

    return app


@pytest.fixture(scope="module")
def cms():
    calls: Counter = Counter()
    with serve_in_thread(make_cms(calls)) as url:
        yield f"{url}/cms/", calls


def provider(url, token=TOKEN, timeout_s=2.0, retries=2):
    return HttpProvider(url, token, timeout_s=timeout_s, retries=retries, backoff_s=0.01)


async def test_found_application_is_validated_sorted_and_local_time(cms):
    url, calls = cms
    client = provider(url)
    try:
        view = await client.lookup("zw 2025-0318-007")
    finally:
        await client.aclose()
    assert view.number == "ZW20250318007" and view.status == STATUS_SUPPLEMENT
    assert (view.item_id, view.applicant_masked, view.phone_last4) == ("passport", "张*", "5678")
    assert [s.status for s in view.steps] == [STATUS_ACCEPTED, STATUS_SUPPLEMENT]
    assert view.steps[0].at == dt.datetime(2025, 3, 18, 9, 30)
    assert view.steps[1].at == dt.datetime(2025, 3, 19, 15, 0)  # 07:00 UTC = 15:00 in China
    assert view.missing_materials == ["近期免冠证件照片"]
    assert "13812345678" not in view.steps[1].note
    assert view.promised_date == dt.date(2026, 12, 28) and view.pickup_method == "邮寄"


async def test_unknown_number_is_none_and_nonsense_is_not_sent(cms):
    url, calls = cms
    client = provider(url)
    try:
        assert await client.lookup("ZW20990101001") is None
        assert calls["ZW20990101001"] == 1  # a 404 is an answer, not retried
        before = sum(calls.values())
        assert await client.lookup("../admin") is None
        assert sum(calls.values()) == before
    finally:
        await client.aclose()


async def test_bad_token_is_unavailable_without_retries(cms):
    url, calls = cms
    calls.clear()
    client = provider(url, token="wrong")
    try:
        with pytest.raises(ProgressUnavailable):
            await client.lookup("ZW20250318007")
    finally:
        await client.aclose()
    assert calls["ZW20250318007"] == 1


async def test_503_twice_then_success_is_retried(cms):
    url, calls = cms
    calls.clear()
    client = provider(url, retries=2)
    try:
        view = await client.lookup("ZW20250318011")
    finally:
        await client.aclose()
    assert view is not None and view.number == "ZW20250318011"
    assert calls["ZW20250318011"] == 3


async def test_server_errors_give_up_after_the_retries(cms):
    url, calls = cms
    calls.clear()
    client = provider(url, retries=1)
    try:
        with pytest.raises(ProgressUnavailable):
            await client.lookup("ZW20250318012")
    finally:
        await client.aclose()
    assert calls["ZW20250318012"] == 2


async def test_slow_server_times_out(cms):
    url, calls = cms
    calls.clear()
    client = provider(url, timeout_s=0.3, retries=1)
    started = time.monotonic()
    try:
        with pytest.raises(ProgressUnavailable):
            await client.lookup("ZW20250318013")
    finally:
        await client.aclose()
    assert time.monotonic() - started < SLOW_S * 2
    assert calls["ZW20250318013"] == 2


async def test_invalid_bodies_are_unavailable_and_logged_without_pii(cms, caplog):
    url, calls = cms
    client = provider(url)
    caplog.set_level(logging.INFO, logger="banshi.progress")
    try:
        with pytest.raises(ProgressUnavailable):
            await client.lookup("ZW20250318014")
        with pytest.raises(ProgressUnavailable):
            await client.lookup("ZW20250318015")
        # a full name coming back is masked before anyone sees it
        assert (await client.lookup("ZW20250318016")).applicant_masked == "张**"
    finally:
        await client.aclose()
    assert calls["ZW20250318015"] == 1
    assert "progress.http.invalid" in caplog.text and "phone_last4" in caplog.text
    assert "13812345678" not in caplog.text


async def test_connection_refused_is_unavailable():
    client = provider(f"http://127.0.0.1:{free_port()}", retries=1)
    try:
        with pytest.raises(ProgressUnavailable):
            await client.lookup("ZW20250318007")
    finally:
        await client.aclose()
