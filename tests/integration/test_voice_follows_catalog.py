"""A catalog version published on the admin page reaches speech too: the gateway's
catalog watcher hands it to the voice in use, whose transcript-correction terms and
biased recogniser's domain grammar (real Vosk Chinese model) then hold the new alias,
without a restart; a gateway whose speech was never used builds nothing.
SQLite or PostgreSQL (BANSHI_TEST_BACKEND)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from assistant.services.catalog_live import CatalogWatcher
from assistant.services.speech import Voice
from knowledge import db, revisions
from tests.conftest import isolated_settings
from voice.biased import DualAsr
from voice.grammar import model_vocabulary, segment

ITEM = "passport"
ALIAS = "出国用的本本"  # words of the model's vocabulary, in no grammar phrase of the files
FOLLOWED_WITHIN_S = 60.0


def grammar_words(text: str, model_dir: Path) -> str:
    return " ".join(segment(text, model_vocabulary(model_dir)))


@pytest.fixture
def local(settings, tmp_path):
    local = isolated_settings(settings, tmp_path)
    if not Path(local.vosk_model_dir).exists():
        pytest.fail(f"the Vosk Chinese model is missing at {local.vosk_model_dir} (make bootstrap installs it)")
    return local


async def publish_alias(local) -> None:
    document = revisions.current_document(local.db_url, local.catalog_dir, local.region_override, ITEM)
    document["aliases"].append(ALIAS)
    await asyncio.to_thread(
        revisions.publish, local.db_url, local.catalog_dir, local.region_override, ITEM, document,
        "admin-test", "新增别名（测试）",
    )


async def test_a_published_alias_reaches_the_biased_grammar_and_the_terms(local):
    catalog = await asyncio.to_thread(db.load_files_into, local.db_url, local.catalog_dir, local.region_override)
    app = SimpleNamespace(state=SimpleNamespace(catalog=catalog, settings=local))
    voice = app.state.voice = Voice(app)
    before = await voice.ready_asr()
    assert isinstance(before, DualAsr) and before.biased is not before.free
    words = grammar_words(ALIAS, before.free.model_dir)
    assert f'"{words}"' not in before.biased.grammar
    assert ALIAS not in voice.terms()

    watcher = CatalogWatcher(app, local)
    await watcher.start(catalog)
    try:
        await publish_alias(local)
        assert await watcher.refresh()
        deadline = time.monotonic() + FOLLOWED_WITHIN_S
        # (the watcher's own poll may swap in a version first: wait for the alias itself)
        while f'"{words}"' not in voice.recognizer.biased.grammar:
            assert time.monotonic() < deadline, "the voice did not follow the published catalog"
            await asyncio.sleep(0.1)
    finally:
        await watcher.stop()
    after = voice.recognizer
    assert isinstance(after, DualAsr) and after.free is before.free  # one model, loaded once
    assert f'"{words}"' in after.biased.grammar
    assert ALIAS in voice.terms()
    stream = await after.open_stream()  # the new grammar's recogniser decodes
    await stream.feed(b"\0\0" * 1600)
    await stream.finish()


async def test_a_gateway_without_speech_in_use_builds_no_grammar(local):
    catalog = await asyncio.to_thread(db.load_files_into, local.db_url, local.catalog_dir, local.region_override)
    app = SimpleNamespace(state=SimpleNamespace(catalog=catalog, settings=local))
    watcher = CatalogWatcher(app, local)
    await watcher.start(catalog)
    try:
        await publish_alias(local)
        assert await watcher.refresh()
    finally:
        await watcher.stop()
    assert not hasattr(app.state, "voice")  # speech stays unloaded until someone speaks
    assert ALIAS in app.state.catalog.records[ITEM].aliases
