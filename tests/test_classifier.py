"""The shipped message classifier: loads, checks its files, reads clear messages right, is deterministic."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from baton.classifier.embedding import MINILM_TABLE, MINILM_TOKENIZER, PARALLEL_MIN, EmbeddingError, encode_all
from baton.classifier.model import (
    META_FILE,
    MODEL_FILE,
    WEIGHTS_DIR,
    Classifier,
    ModelError,
    content_digest,
    default_classifier,
)
from baton.contract.messages import Intent, Topic


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return default_classifier()


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "weights"
    shutil.copytree(WEIGHTS_DIR, folder)
    return folder


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def test_the_shipped_model_loads(classifier: Classifier) -> None:
    manifest = json.loads((WEIGHTS_DIR / META_FILE).read_text(encoding="utf-8"))
    assert classifier.version == manifest["version"]
    assert manifest["embedding"]["kind"] == "minilm-static"
    assert set(classifier.intents) == set(Intent)
    assert set(classifier.topics) == set(Topic)
    assert classifier.embedding is not None and classifier.embedding.dimension == 256


def test_an_untouched_copy_loads(tmp_path: Path) -> None:
    assert Classifier.load(_copy(tmp_path)).score("agent please").intents


def test_tampered_weights_do_not_load(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    _flip_last_byte(folder / MODEL_FILE)
    with pytest.raises(ModelError, match="sha256"):
        Classifier.load(folder)


@pytest.mark.parametrize("name", [MINILM_TABLE, MINILM_TOKENIZER])
def test_a_tampered_embedding_file_does_not_load(tmp_path: Path, name: str) -> None:
    folder = _copy(tmp_path)
    _flip_last_byte(folder / name)
    with pytest.raises(EmbeddingError, match="sha256"):
        Classifier.load(folder)


def test_an_edited_manifest_does_not_load(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    manifest = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    manifest["calibration"][Intent.HUMAN_REQUEST.value]["threshold"] = 0.01
    (folder / META_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    with pytest.raises(ModelError, match="content_sha256"):
        Classifier.load(folder)


def test_a_manifest_that_miscounts_the_outputs_does_not_load(tmp_path: Path) -> None:
    """A manifest without the frustration levels its weights carry (signed again, so only the count is wrong)."""
    folder = _copy(tmp_path)
    manifest = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    assert manifest["frustration_levels"]
    manifest["frustration_levels"] = []
    manifest["content_sha256"] = content_digest(manifest)
    (folder / META_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    with pytest.raises(ModelError, match="outputs"):
        Classifier.load(folder)


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + float(np.exp(-z)))


def test_frustration_mixes_the_head_and_the_levels_by_the_gate(classifier: Classifier) -> None:
    """Frustration from the raw outputs, as documented: a support message keeps the head's value on the team's
    scale, a text unlike one moves halfway to the GoEmotions levels' reading."""
    texts = [
        "This is the third time I ask about my invoice, fix it now",
        "lol that ref is blind, worst call of the season",
        "Thanks, all sorted",
    ]
    n = len(classifier.intents) + len(classifier.topics)
    levels = classifier.frustration_levels
    assert levels == (1.0, 0.75, 0.5, 0.25)
    scale, shift = classifier.frustration_calibration
    gates = []
    for text, row in zip(texts, classifier.logits(texts), strict=True):
        head = _sigmoid(scale * float(row[n]) + shift)
        reading = min(1.0, sum(v * _sigmoid(float(z)) for v, z in zip(levels, row[n + 1 : n + 5], strict=True)))
        gate = _sigmoid(float(row[n + 5]))
        gates.append(gate)
        expected = gate * head + (1 - gate) * (head + reading) / 2
        assert classifier._score_whole([text])[0].frustration == pytest.approx(expected, abs=1e-4)
    support, comment, thanks = gates
    assert support > 0.5 > comment and thanks > 0.5


def test_a_missing_model_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no model"):
        Classifier.load(tmp_path)


CLEAR = [
    ("I want to talk to a human agent right now.", Intent.HUMAN_REQUEST),
    ("Please connect me with a real person.", Intent.HUMAN_REQUEST),
    ("Can someone call me back on my mobile this afternoon?", Intent.CONTACT_REQUEST),
    ("My lawyer will be filing a lawsuit against your company.", Intent.LEGAL_THREAT),
    ("Please delete all the personal data you hold about me.", Intent.DATA_DELETION),
    ("You charged my card twice for the same order, I want a refund.", Intent.BILLING_DISPUTE),
    ("I want to cancel my subscription.", Intent.CANCELLATION),
    ("Thanks, that fixed it!", Intent.RESOLVED),
    ("This bot is useless, you are not helping at all.", Intent.NOT_HELPING),
    ("I can't go on anymore, I want to end my life.", Intent.SAFETY_OR_DISTRESS),
]


@pytest.mark.parametrize(("text", "intent"), CLEAR)
def test_clear_messages_get_their_intent(classifier: Classifier, text: str, intent: Intent) -> None:
    assert intent in classifier.score(text).intents


NOT = [
    ("I don't need a human, the answer above was fine.", Intent.HUMAN_REQUEST),
    ("Is the agent dashboard available on mobile?", Intent.HUMAN_REQUEST),
    ("How do I change the email address on my account?", Intent.HUMAN_REQUEST),
    ("I would never sue you over this, I just want it fixed.", Intent.LEGAL_THREAT),
    ("How do I delete a row from my spreadsheet?", Intent.DATA_DELETION),
    ("What time is it in Tokyo?", Intent.CANCELLATION),
]


@pytest.mark.parametrize(("text", "intent"), NOT)
def test_negations_and_mentions_do_not_trigger(classifier: Classifier, text: str, intent: Intent) -> None:
    assert intent not in classifier.score(text).intents


def test_scores_are_deterministic(classifier: Classifier) -> None:
    texts = [text for text, _ in CLEAR + NOT]
    first = [s.model_dump() for s in classifier.score_many(texts)]
    again = [s.model_dump() for s in Classifier.load().score_many(texts)]
    one_by_one = [classifier.score(t).model_dump() for t in texts]
    assert first == again == one_by_one


def test_scores_are_in_range(classifier: Classifier) -> None:
    scores = classifier.score("WHERE IS MY REFUND?!?! third time asking")
    assert 0.0 <= scores.frustration <= 1.0
    assert all(0.0 <= p <= 1.0 for p in scores.probabilities.values())
    assert abs(sum(scores.topic_probabilities.values()) - 1.0) < 1e-3
    assert scores.topic == max(scores.topic_probabilities, key=lambda t: scores.topic_probabilities[t])
    assert scores.frustration > classifier.score("Thanks, have a nice day.").frustration


def test_empty_and_odd_messages_score(classifier: Classifier) -> None:
    for text in ["", "   ", "🙂", "?" * 50, "a" * 5000]:
        scores = classifier.score(text)
        assert np.isfinite(scores.frustration)


def test_few_texts_are_tokenized_in_the_calling_thread_with_the_same_encodings_as_a_batch() -> None:
    tokenizer = default_classifier().embedding.tokenizer  # type: ignore[union-attr]
    texts = [f"{k} refunds plz, agnet!! {'very ' * k}urgent" for k in range(PARALLEL_MIN * 2)]
    for count in (1, PARALLEL_MIN - 1, PARALLEL_MIN, len(texts)):
        for special in (True, False):
            ours = [e.ids for e in encode_all(tokenizer, texts[:count], add_special_tokens=special)]
            batch = [e.ids for e in tokenizer.encode_batch(texts[:count], add_special_tokens=special)]
            assert ours == batch, (count, special)
