"""A catalog edit published on the admin API reaches the chat of the real gateway with
the real Rasa model and the real action server, without retraining: the new fee in
the answer within 5 s, a new alias and a new situation linked to the item; a revert
brings the file's version back. SQLite or PostgreSQL (BANSHI_TEST_BACKEND)."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from knowledge.catalog import load_catalog

from tests.integration.test_metrics import scrape, value
from tests.staff import live_staff

pytestmark = pytest.mark.model

API = "/api/v1/admin/catalog"
ITEM = "passport"
NEW_FEE = "普通护照每本138元（在线发布测试）"
ALIAS = "阿嘎嘎证"
SITUATION = "下个月公司派我去德国出差，要先弄啥"
FEE_QUESTION = "办护照要多少钱"
VISIBLE_WITHIN_S = 5.0
TODAY = time.strftime("%Y-%m-%d")
PASSWORD = "catalog-live-password-1"


@pytest.fixture(scope="module")
def admin(settings, live_server):
    with live_staff(live_server, settings.db_url, "admin", PASSWORD, prefix="catlive") as client:
        yield client
        reverted = client.post(f"{API}/records/{ITEM}/revert", json={"revision": 0, "reason": "测试结束，恢复原版"})
        assert reverted.status_code == 201, reverted.text


def chat_text(client: httpx.Client, text: str) -> str:
    reply = client.post("/api/v1/chat", json={"sender_id": f"catalog-{uuid.uuid4().hex[:10]}", "text": text})
    assert reply.status_code == 200, reply.text
    return "\n".join(m.get("text") or "" for m in reply.json()["messages"])


def linked(client: httpx.Client, text: str) -> list:
    reply = client.post("/api/v1/parse", json={"text": text})
    assert reply.status_code == 200, reply.text
    return [item["id"] for item in reply.json()["items"]]


def test_publish_reaches_the_chat_without_retraining(admin):
    file_fee = load_catalog().records[ITEM].fees
    assert file_fee.split("；")[0] in chat_text(admin, FEE_QUESTION)
    assert ITEM not in linked(admin, f"{ALIAS}怎么办")
    assert ITEM not in linked(admin, SITUATION)

    doc = admin.get(f"{API}/records/{ITEM}").json()["document"]
    doc["fees"] = NEW_FEE
    doc["verified"] = TODAY
    doc["aliases"].append(ALIAS)
    doc["situations"].append(SITUATION)
    for source in doc["sources"]:
        if source["id"] in doc["fees_source"]:
            source["checked"] = TODAY
    preview = admin.post(f"{API}/records/{ITEM}/preview", json={"document": doc}).json()
    fee_preview = next(a["text"] for a in preview["answers"] if a["question"] == "fee")

    swaps = value(scrape(admin), "banshi_catalog_swaps_total")
    started = time.monotonic()
    published = admin.post(f"{API}/records/{ITEM}/publish", json={"document": doc, "reason": "收费调整（测试）"})
    assert published.status_code == 201, published.text
    answer = ""
    while time.monotonic() - started < VISIBLE_WITHIN_S + 5:
        answer = chat_text(admin, FEE_QUESTION)
        if NEW_FEE in answer:
            break
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    assert NEW_FEE in answer and elapsed <= VISIBLE_WITHIN_S, (elapsed, answer)
    # The preview is the chat's own text.
    assert fee_preview in answer
    assert value(scrape(admin), "banshi_catalog_swaps_total") >= swaps + 1  # /metrics

    # The new alias and situation are linked by the model's item linker, not retrained.
    assert linked(admin, f"{ALIAS}怎么办")[0] == ITEM
    assert linked(admin, SITUATION)[0] == ITEM
    assert "普通护照" in chat_text(admin, f"{ALIAS}要带什么材料")

    reverted = admin.post(f"{API}/records/{ITEM}/revert", json={"revision": 0, "reason": "恢复原版"})
    assert reverted.status_code == 201
    assert NEW_FEE not in chat_text(admin, FEE_QUESTION) or _eventually_old_fee(admin)
    assert ITEM not in linked(admin, f"{ALIAS}怎么办")


def _eventually_old_fee(client: httpx.Client) -> bool:
    """The action server re-reads the catalog within its refresh interval."""
    deadline = time.monotonic() + VISIBLE_WITHIN_S
    while time.monotonic() < deadline:
        if NEW_FEE not in chat_text(client, FEE_QUESTION):
            return True
        time.sleep(0.2)
    return False
