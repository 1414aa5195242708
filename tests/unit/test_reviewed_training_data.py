"""Accepted intent assignments as training data (``assistant.dialogue.reviewed``): what
``banshi train`` writes into ``nlu_data/reviewed`` from the accepted reviews of a real
SQLite database, and the data fingerprint, which changes when the accepted examples
change and only then. Runs on a copy of the training inputs' layout in a temporary
directory: the real ``nlu_data`` is never written, nothing is trained."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pytest
import yaml

from assistant.dialogue import reviewed
from assistant.dialogue.training import data_fingerprint, model_path_for, rasa_command
from assistant.security.pii import strip_pii
from assistant.storage.database import session_factory
from assistant.storage.review_tables import ReviewItem

HAND_WRITTEN = "办护照要带什么材料"


@pytest.fixture()
def root(tmp_path) -> Path:
    """A project root with the training inputs the fingerprint reads."""
    (tmp_path / "config.yml").write_text("language: zh\n", encoding="utf-8")
    (tmp_path / "domain.yml").write_text('version: "3.1"\n', encoding="utf-8")
    nlu = tmp_path / "nlu_data" / "nlu"
    nlu.mkdir(parents=True)
    (nlu / "materials.yml").write_text(
        f'version: "3.1"\nnlu:\n- intent: ask_materials\n  examples: |\n    - {HAND_WRITTEN}\n', encoding="utf-8"
    )
    return tmp_path


@pytest.fixture()
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'db' / 'banshi.db'}"


def add_review(db_url: str, text: str, intent: str | None, outcome: str = "accepted", status: str = "done") -> None:
    now = dt.datetime(2030, 1, 1)
    with session_factory(db_url)() as db, db.begin():
        db.add(ReviewItem(reason="handoff", status=status, outcome=outcome if status == "done" else None, text=text,
                          text_key=f"{text}{intent}{outcome}", seen=1, not_covered=False, assigned_intent=intent,
                          created_at=now, last_seen_at=now, done_at=now))


def write(db_url: str, root: Path):
    path = root / "nlu_data" / "reviewed" / "accepted.yml"
    return reviewed.write(db_url, path, root / "nlu_data"), path


def test_examples_have_no_personal_data_nor_rasa_syntax():
    pairs = [
        ("ask_service", "我叫张*，电话138****5678，想问游艇驾驶证怎么考"),
        ("ask_service", "身份证号110101199003071234，[医保](卡) 丢了咋弄"),
        ("ask_materials", HAND_WRITTEN),
        ("ask_service", "我叫李*，电话139****1111"),  # nothing left
        ("ask_fee", "想问游艇驾驶证怎么考"),  # the same words under a second intent: left out
        (None, "没有意图的审核"),
    ]
    assert reviewed.examples_by_intent(pairs, {HAND_WRITTEN}) == {
        "ask_service": ["想问游艇驾驶证怎么考", "［医保］（卡） 丢了咋弄"],
    }
    assert strip_pii("电话13812345678，身份证110101199003071234") == ""


def test_control_characters_never_reach_the_training_file():
    by_intent = reviewed.examples_by_intent([("ask_time_limit", "办护照\x07要多久\x1b")], set())
    assert by_intent == {"ask_time_limit": ["办护照 要多久"]}
    loaded = yaml.safe_load(reviewed.render(by_intent))  # PyYAML refuses most control characters
    assert "办护照 要多久" in loaded["nlu"][0]["examples"]


def test_an_unwritable_place_leaves_the_file_and_training_goes_on(root, db_url):
    add_review(db_url, "游艇驾驶证怎么考", "ask_process")
    blocked = root / "nlu_data" / "reviewed"
    blocked.write_text("not a directory", encoding="utf-8")  # as unwritable as a read-only checkout (even for root)
    assert reviewed.write(db_url, blocked / "accepted.yml", root / "nlu_data") is None
    assert blocked.read_text(encoding="utf-8") == "not a directory"


def test_the_file_follows_the_accepted_reviews_and_so_does_the_fingerprint(root, db_url):
    before = data_fingerprint(root)
    # No database yet (a fresh checkout): nothing written, none created.
    assert write(db_url, root)[0] == 0 and not Path(db_url[len("sqlite:///"):]).exists()
    add_review(db_url, "孩子出生了上户口要去哪里", "ask_location", outcome="dismissed")
    add_review(db_url, "还没审核完的问题", "ask_service", status="assigned")
    add_review(db_url, HAND_WRITTEN, "ask_materials")  # the data has it already
    count, path = write(db_url, root)
    assert count == 0 and not path.exists()
    assert data_fingerprint(root) == before  # nothing accepted to learn: the same model

    add_review(db_url, "我叫张*，电话138****5678，老人走了丧葬费去哪领", "ask_location")
    count, path = write(db_url, root)
    assert count == 1
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert data["nlu"] == [{"intent": "ask_location", "examples": "- 老人走了丧葬费去哪领\n"}]
    changed = data_fingerprint(root)
    assert changed != before  # the accepted example is an input: the model is retrained

    stamp = path.stat().st_mtime_ns
    assert write(db_url, root)[0] == 1 and path.stat().st_mtime_ns == stamp  # unchanged: not rewritten
    assert data_fingerprint(root) == changed  # and the fingerprint stays

    add_review(db_url, "想在网上申请，流程是什么样的", "ask_process")
    assert write(db_url, root)[0] == 2 and data_fingerprint(root) not in (before, changed)
    # Its own previous version does not count as "the data has it already".
    assert write(db_url, root)[0] == 2


def test_an_unreadable_database_keeps_the_file(root, db_url):
    add_review(db_url, "老人走了丧葬费去哪领", "ask_location")
    count, path = write(db_url, root)
    assert count == 1
    kept = path.read_text(encoding="utf-8")
    assert write("postgresql+psycopg2://nobody@127.0.0.1:1/none", root)[0] is None
    assert path.read_text(encoding="utf-8") == kept


def test_rasa_is_given_the_data_directory_that_holds_the_reviewed_file(settings):
    target = model_path_for(settings, "abc123def456")
    command = rasa_command(settings, target)
    assert command[:4] == [sys.executable, "-m", "rasa", "train"]
    data = command[command.index("--data") + 1]
    assert data == "nlu_data" and reviewed.REVIEWED_FILE.parent.parent.name == data
    assert reviewed.REVIEWED_FILE.is_relative_to(reviewed.NLU_DATA_DIR)
    assert command[command.index("--fixed-model-name") + 1] == "banshi-abc123def456"
    assert "/nlu_data/reviewed/" in Path(reviewed.NLU_DATA_DIR.parent / ".gitignore").read_text(encoding="utf-8")


def test_banshi_train_writes_the_reviewed_examples_before_it_fingerprints(settings, root, db_url, tmp_path, monkeypatch):
    """``train`` on a database with an accepted example, the model for the current inputs
    already there (so nothing is trained): the reviewed file is written first. It is
    written into a copy of the layout here (the real nlu_data is not touched)."""
    from assistant.dialogue import training

    add_review(db_url, "我叫张*，老人走了丧葬费去哪领", "ask_location")
    target = root / "nlu_data" / "reviewed" / "accepted.yml"
    monkeypatch.setattr(reviewed, "REVIEWED_FILE", target)
    monkeypatch.setattr(reviewed, "NLU_DATA_DIR", root / "nlu_data")
    own = settings.copy(update={"database_url": db_url, "models_dir": tmp_path / "models"})
    own.models_dir.mkdir()
    existing = model_path_for(own, data_fingerprint(embedding=own.embedding_model))
    existing.write_bytes(b"")  # the model of the project's inputs: train() skips
    assert training.train(own) == existing
    assert yaml.safe_load(target.read_text(encoding="utf-8"))["nlu"] == [
        {"intent": "ask_location", "examples": "- 老人走了丧葬费去哪领\n"}
    ]
