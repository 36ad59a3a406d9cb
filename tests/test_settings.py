"""Settings are checked at the edge: a bad value names the variable, the value and what is allowed."""

from __future__ import annotations

import dataclasses

import pytest

from assistant.errors import SettingsError
from assistant.settings import Settings, allowed

# At least one bad value for every setting; a new setting must add its own here.
BAD = {
    "corpus_dir": ["", "  "],
    "index_dir": [""],
    "model": [""],
    "chunk_tokens": ["abc", "0", "513", "12.5", "-5", " "],
    "chunk_overlap": ["-1", "11", "one"],
    "context_words": ["-1", "401", "sixty"],
    "batch_size": ["0", "big", "1e3"],
    "mode": ["typo", "HYBRID", ""],
    "fusion": ["typo", "RRF", ""],
    "rrf_k": ["0", "1001", "x"],
    "dense_weight": ["7", "-0.1", "1.5", "nan", "inf", "x"],
    "candidates": ["0", "10001", "x"],
    "no_answer_threshold": ["2", "-1.5", "high", "nan"],
    "max_question_chars": ["0", "x", "100001"],
    "feedback_file": [""],
    "feedback_max_bytes": ["0", "x", "-1"],
    "hnsw_threshold": ["0", "x"],
    "max_file_mb": ["-1", "x", "100001"],
    "max_upload_mb": ["0", "-1", "x", "1001"],
    "auth": ["admin", ":secret", "admin:", ":"],
    "store": ["mysql://u:secret@host/db", "var/index"],
    "ef_search": ["0", "1001", "x"],
    "embed_workers": ["0", "65", "two"],
}
FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def test_every_setting_has_bad_values_to_test():
    assert set(BAD) == set(FIELDS)


@pytest.mark.parametrize("name, value", [(name, value) for name, values in BAD.items() for value in values])
def test_a_bad_value_names_the_variable_the_value_and_what_is_allowed(name, value, monkeypatch):
    field = FIELDS[name]
    monkeypatch.setenv(field.metadata["env"], value)
    with pytest.raises(SettingsError) as caught:
        Settings.from_env()
    message = str(caught.value)
    assert field.metadata["env"] in message and allowed(field) in message
    assert "\n" not in message
    if name == "auth":
        assert value.strip(":") not in message or not value.strip(":")  # a password is never echoed
    elif name == "store":
        assert "secret" not in message  # a URL may carry a password: never echoed
    else:
        assert repr(value) in message


@pytest.mark.parametrize(
    "values",
    [{"chunk_tokens": True}, {"chunk_tokens": 40.5}, {"dense_weight": "0.5x"}, {"batch_size": None}],
)
def test_bad_values_in_code_are_refused_too(values):
    with pytest.raises(SettingsError):
        Settings(**values)


def test_good_values_are_converted(monkeypatch, tmp_path):
    monkeypatch.setenv("ASSISTANT_CHUNK_TOKENS", " 128 ")
    monkeypatch.setenv("ASSISTANT_DENSE_WEIGHT", "1")
    monkeypatch.setenv("ASSISTANT_FUSION", "rrf")
    monkeypatch.setenv("ASSISTANT_AUTH", "admin:pa:ss")
    monkeypatch.setenv("ASSISTANT_INDEX", str(tmp_path))
    settings = Settings.from_env(corpus_dir=tmp_path / "c")
    assert settings.chunk_tokens == 128 and settings.dense_weight == 1.0 and isinstance(settings.dense_weight, float)
    assert settings.fusion == "rrf" and settings.credentials == ("admin", "pa:ss")
    assert settings.index_dir == tmp_path and settings.corpus_dir == tmp_path / "c"
    assert "pa:ss" not in repr(settings)
    assert Settings().credentials is None


def test_an_index_folder_named_explicitly_beats_the_store_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ASSISTANT_STORE", "postgresql://team@db.example/archive")
    assert Settings.from_env().store == "postgresql://team@db.example/archive"
    explicit = Settings.from_env(index_dir=tmp_path / "own")  # e.g. `eval --corpus C --index DIR`
    assert explicit.store == "" and explicit.index_store().label == str(tmp_path / "own")
    with pytest.raises(SettingsError, match="--index and --store name two different indexes"):
        Settings.from_env(index_dir=tmp_path / "own", store="postgresql://me@localhost/mine")
