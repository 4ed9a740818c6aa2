"""The embedding model: bundled weights checked by hash, any other model through one setting."""

import pytest

import qa.embeddings as embeddings
from qa.errors import ModelError

pytestmark = pytest.mark.slow


def test_bundled_model_is_verified_and_offline(encoder, monkeypatch):
    assert encoder.weights_sha256 == embeddings.DEFAULT_MODEL_SHA256
    assert encoder.dimension == 384 and encoder.max_tokens == 256
    v = encoder.encode_queries(["How many complaints?"])
    assert v.shape == (1, 384) and abs(float((v**2).sum()) - 1.0) < 1e-4


def test_a_tampered_model_is_refused(monkeypatch):
    monkeypatch.setattr(embeddings, "DEFAULT_MODEL_SHA256", "0" * 64)
    with pytest.raises(ModelError, match="not the official all-MiniLM-L6-v2"):
        embeddings.Encoder.load()


def test_another_model_loads_through_the_normal_path(encoder):
    folder = embeddings.bundled_model_dir()
    other = embeddings.Encoder.load(str(folder))  # a local folder, as QA_MODEL would give
    assert other.name == str(folder) and other.weights_sha256 == encoder.weights_sha256
    assert (other.encode_queries(["care"]) @ encoder.encode_queries(["care"]).T)[0, 0] > 0.999


def test_an_unknown_model_gives_a_clear_error():
    with pytest.raises(ModelError, match="Cannot load the embedding model 'no-such/model-anywhere'"):
        embeddings.Encoder.load("no-such/model-anywhere")
