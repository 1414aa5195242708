"""A catalog version published on the admin page reaches speech too: the gateway's
catalog watcher hands it to the voice in use, whose transcript-correction terms and
biased recogniser's domain grammar (real Vosk Chinese model) then hold the new alias,
without a restart; a gateway whose speech was never used builds nothing.
SQLite or PostgreSQL (BANSHI_TEST_BACKEND)."""

from __future__ import annotations

import asyncio
import logging
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


async def test_many_versions_in_a_row_build_the_newest_grammar_not_each(local, caplog):
    catalog = await asyncio.to_thread(db.load_files_into, local.db_url, local.catalog_dir, local.region_override)
    app = SimpleNamespace(state=SimpleNamespace(catalog=catalog, settings=local))
    voice = app.state.voice = Voice(app)
    await voice.ready_asr()
    aliases = ["出国用的本本", "出国的小本子", "去外国的证件", "出境用的本子", "出国证件本"]
    versions = []
    for alias in aliases:  # five versions published one right after the other
        document = revisions.current_document(local.db_url, local.catalog_dir, local.region_override, ITEM)
        document["aliases"].append(alias)
        _, _, checked = await asyncio.to_thread(revisions.publish, local.db_url, local.catalog_dir,
                                                local.region_override, ITEM, document, "admin-test", "新增别名（测试）")
        versions.append(checked.catalog)
    caplog.set_level(logging.INFO, logger="banshi.voice.grammar")
    # The watcher hands each version over as it swaps it in (here all while the first builds).
    first = asyncio.get_running_loop().create_task(voice.follow_catalog(versions[0]))
    await asyncio.sleep(0)  # the first build has started
    for version in versions[1:]:
        app.state.catalog = version
        await voice.follow_catalog(version)
    await asyncio.wait_for(first, FOLLOWED_WITHIN_S)
    built = [r for r in caplog.records if r.getMessage().startswith("voice.grammar.built")]
    assert len(built) == 2, [r.getMessage() for r in built]  # the first and the newest, not five
    model_dir = voice.recognizer.free.model_dir
    assert all(f'"{grammar_words(a, model_dir)}"' in voice.recognizer.biased.grammar for a in aliases)
