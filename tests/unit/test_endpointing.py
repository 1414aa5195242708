"""A view of a Vosk model with longer end-of-utterance rules (voice/endpointing.py)."""

from __future__ import annotations

import os
from pathlib import Path

from voice.endpointing import endpoint_conf, with_trailing_silence

CONF = """--beam=12.0
--endpoint.silence-phones=1:2:3
--endpoint.rule2.min-trailing-silence=0.5
--endpoint.rule3.min-trailing-silence=1.0
--endpoint.rule4.min-trailing-silence=2.0
"""


def fake_model(root: Path) -> Path:
    model = root / "model"
    (model / "am").mkdir(parents=True)
    (model / "am" / "final.mdl").write_bytes(b"x")
    (model / "conf").mkdir()
    (model / "conf" / "model.conf").write_text(CONF)
    (model / "conf" / "mfcc.conf").write_text("--use-energy=false\n")
    return model


def test_the_rules_wait_longer_and_the_rest_is_kept():
    conf = endpoint_conf(CONF, 1.5)
    assert "--beam=12.0" in conf and "--endpoint.silence-phones=1:2:3" in conf
    assert "--endpoint.rule2.min-trailing-silence=1.5" in conf
    assert "--endpoint.rule3.min-trailing-silence=2" in conf
    assert "--endpoint.rule4.min-trailing-silence=3" in conf
    assert "=0.5" not in conf and conf.count("rule2") == 1
    # A conf without endpoint rules gets them.
    assert "--endpoint.rule2.min-trailing-silence=1.5" in endpoint_conf("--beam=10\n", 1.5)


def test_the_view_links_the_model_and_has_its_own_conf(tmp_path):
    model = fake_model(tmp_path)
    view = with_trailing_silence(model, tmp_path / "views", 1.5)
    assert (view / "am" / "final.mdl").read_bytes() == b"x" and (view / "am").is_symlink()
    assert (view / "conf" / "mfcc.conf").is_symlink()
    assert "rule2.min-trailing-silence=1.5" in (view / "conf" / "model.conf").read_text()
    assert (model / "conf" / "model.conf").read_text() == CONF  # the model itself untouched
    # Built once: the second call finds it; a changed model conf rebuilds it.
    stamp = os.stat(view / "conf" / "model.conf").st_mtime_ns
    assert with_trailing_silence(model, tmp_path / "views", 1.5) == view
    assert os.stat(view / "conf" / "model.conf").st_mtime_ns == stamp
    (model / "conf" / "model.conf").write_text(CONF.replace("12.0", "13.0"))
    assert "--beam=13.0" in (with_trailing_silence(model, tmp_path / "views", 1.5) / "conf" / "model.conf").read_text()
    assert [p.name for p in (tmp_path / "views").iterdir()] == [view.name]  # nothing left aside
