"""A deployment's own model, end to end: real conversations through the workflow, labelled both ways (a false
positive and a planted missed escalation) in the store, a model adapted from those labels that fixes the
missed escalation without changing the other decisions, `baton replay --compare-model` reporting it, then
promote and rollback changing what new conversations use while a running one keeps its version.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from baton.apps.client import get_state, handle, send_message
from baton.apps.model.adapt import adapt
from baton.apps.model.deployment import LabelledInputError, rows_from_jsonl, rows_from_store
from baton.classifier.model import META_FILE, MODEL_FILE, WEIGHTS_DIR, Classifier, default_classifier
from baton.classifier.registry import RegistryError, promote, read_registry, rollback, selector_for
from baton.classifier.scorer import Scorer
from baton.contract import search_attributes as sa
from baton.contract.messages import ConversationStart, Decision, Intent, MessageIn
from baton.contract.records import ReviewLabelRecord, escalation_id
from baton.contract.scoring import MessageScores
from baton.policies import load_policy
from baton.settings import Settings
from baton.store.database import create_engine, migrate_async, session_factory
from baton.store.models import Conversation, Escalation
from baton.store.records import MissedLabelRecord, record_missed_label, record_review_label
from baton.worker.wiring import WORKFLOWS, build_worker

# Requests for a person in Hinglish ("call a real person") the shipped model misses, and messages it reads as a
# request though they are not one (a mention of a company's representative; a number given, not a callback
# asked for): the first of each that the shipped model gets wrong is planted (the list outlives a retrain).
# The missed one must be read by the first stage alone: a deployment's correction is to the first stage, and
# where the encoder stage reads a message and is sure the other way, the mean of the two cannot be moved across
# the threshold (docs/classifier.md, "How it adapts"; the training reports such a row as not corrected).
MISSED_CANDIDATES = ("kisi asli aadmi ko bulao", "koi banda bhejo jo samjhe", "insaan bhejo")
FALSE_POSITIVE_CANDIDATES = (
    "representative of our company will sign the contract",
    "you can reach me on 555 0100 later",
)
REQUESTS = (Intent.HUMAN_REQUEST, Intent.CONTACT_REQUEST)


@cache
def planted() -> tuple[str, str, Intent]:
    """(missed message, false-positive message, the intent wrongly read in it), for the shipped model."""
    shipped = default_classifier()
    missed = next(
        (
            t
            for t in MISSED_CANDIDATES
            if Intent.HUMAN_REQUEST not in shipped.score(t).intents and isinstance(shipped.staged(t), MessageScores)
        ),
        None,
    )
    wrong = [(t, i) for t in FALSE_POSITIVE_CANDIDATES for i in shipped.score(t).intents if i in REQUESTS]
    assert missed is not None and wrong, "no candidate the shipped model gets wrong: add one"
    return missed, wrong[0][0], wrong[0][1]


def conversations() -> dict[str, list[str]]:
    missed, false_positive, _ = planted()
    return {
        "fp": [false_positive],
        "missed": ["my payment failed again", missed],
        "human": ["I want to talk to a human"],
        "legal": ["my lawyer will contact you"],
        "password": ["how do I reset my password", "thanks that worked"],
        "invoice": ["where is my invoice"],
    }


EXPECTED = {"fp": False, "missed": True, "human": True, "legal": True, "password": False, "invoice": False}


def start(name: str) -> ConversationStart:
    return ConversationStart(
        conversation_id=f"lifecycle-{name}-{uuid.uuid4().hex[:6]}",
        customer_id=f"c-{name}",
        channel="chat",
        customer={"tier": "smb"},
    )


async def converse(
    client: Client, queue: str, conversation: ConversationStart, texts: list[str], scorer: Scorer, first: int = 1
) -> list[Decision]:
    """The customer's messages, scored on the way in by `scorer` as the gateway does; ids m<first>, ..."""
    decisions = []
    for n, text in enumerate(texts, start=first):
        message = MessageIn(message_id=f"m{n}", role="customer", text=text)
        decisions.append(await send_message(client, queue, conversation, message, scorer))
    return decisions


async def wait_for_rows(url: str, conversation_ids: list[str], escalation_ids: list[str]) -> None:
    """The workflow records its rows in activities of their own: wait until the store has them."""
    engine = create_engine(url)
    try:
        for _ in range(200):
            async with session_factory(engine)() as session:
                have = all([await session.get(Conversation, c) for c in conversation_ids])
                have = have and all([await session.get(Escalation, e) for e in escalation_ids])
            if have:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the store never got the conversations' rows")
    finally:
        await engine.dispose()


async def label(url: str, fp: ConversationStart, missed: ConversationStart, human: ConversationStart) -> None:
    """A reviewer's verdicts: the escalation of `fp` was not necessary, `human`'s was, and `missed` should have
    been handed off from its second message."""
    now = datetime.now(UTC)
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session, session.begin():
            for conversation, necessary in ((fp, False), (human, True)):
                record = ReviewLabelRecord(
                    escalation_id=escalation_id(conversation.conversation_id, "m1"),
                    reviewer="lead",
                    necessary=necessary,
                    labelled_at=now,
                )
                await record_review_label(session, record)
            missed_label = MissedLabelRecord(
                conversation_id=missed.conversation_id, message_id="m2", reviewer="lead", labelled_at=now
            )
            await record_missed_label(session, missed_label)
    finally:
        await engine.dispose()


def labelled_jsonl(path: Path) -> Path:
    """The same conversations as labelled replay transcripts (as `baton export` writes them)."""
    lines = []
    for name, texts in conversations().items():
        label: dict[str, object] = {"escalate": EXPECTED[name]}
        if name == "missed":  # as `baton export` labels a missed escalation
            label |= {"missed": True, "from_message": 1, "from_message_id": "m2"}
        messages = [{"role": "customer", "text": t} for t in texts]
        lines.append(json.dumps({"conversation_id": name, "customer": {"id": f"c-{name}", "tier": "smb"},
                                 "messages": messages, "label": label}))  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return path


def baton(*args: str, models_dir: Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "BATON_MODELS_DIR": str(models_dir)}
    return subprocess.run(
        [sys.executable, "-m", "baton.apps.cli", *args], capture_output=True, text=True, env=environment, timeout=300
    )


async def test_labels_train_compare_promote_rollback(env: WorkflowEnvironment, task_queue: str, tmp_path: Path) -> None:
    client = env.client
    models_dir = tmp_path / "models"
    # A store of its own: the labels read back are this test's only.
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    await migrate_async(database_url)
    settings = Settings(task_queue=task_queue, models_dir=models_dir, database_url=database_url)
    gateway = selector_for(models_dir)  # what the gateway scores with: the promoted version, re-read on change
    shipped = default_classifier()
    missed, false_positive, wrong = planted()
    transcripts_of = conversations()

    async with build_worker(client, settings):
        # 1. Real conversations, scored on the way in by the shipped model.
        starts = {name: start(name) for name in transcripts_of}
        decided = {name: await converse(client, task_queue, starts[name], texts, gateway)
                   for name, texts in transcripts_of.items()}  # fmt: skip
        escalated = {name: any(d.action == "escalate" for d in ds) for name, ds in decided.items()}
        assert escalated == EXPECTED | {"fp": True, "missed": False}  # one false positive, one missed
        assert {d.signals.model_version for ds in decided.values() for d in ds if d.signals} == {shipped.version}

        # 2. Labelled both ways in the store, then the deployment's rows read back through the store and Temporal.
        await wait_for_rows(
            settings.database_url,
            [s.conversation_id for s in starts.values()],
            [escalation_id(starts[n].conversation_id, "m1") for n in ("fp", "human")],
        )
        await label(settings.database_url, starts["fp"], starts["missed"], starts["human"])
        rows, skipped = await rows_from_store(settings.database_url, client, load_policy(settings.policy))
        assert skipped == []
        assert {(r.text, r.intent, r.present, r.origin) for r in rows} == {
            (false_positive, wrong, False, "false_positive"),
            (missed, Intent.HUMAN_REQUEST, True, "missed"),
        }

        # 3. A deployment model from those rows: the planted miss is fixed, the false positive gone, the rest kept.
        meta = adapt(rows, models_dir)
        version = str(meta["version"])
        assert version.startswith("baton-clf-") and version != shipped.version
        assert meta["parent_version"] == shipped.version and meta["deployment"]["rows"] == 2
        adapted = Classifier.load(models_dir / version)  # every file checked against the manifest
        # The correction is to the first stage; the encoder stage is the parent's, and the fix holds through it.
        assert adapted.second is not None and shipped.second is not None
        assert adapted.second.version == shipped.second.version and adapted.band == shipped.band
        assert Intent.HUMAN_REQUEST in adapted.score(missed).intents
        assert wrong not in adapted.score(false_positive).intents
        for name, texts in transcripts_of.items():
            if name not in ("fp", "missed"):
                assert [adapted.score(t).intents for t in texts] == [shipped.score(t).intents for t in texts], name
        assert (WEIGHTS_DIR / MODEL_FILE).read_bytes() != (models_dir / version / MODEL_FILE).read_bytes()
        # The command does the same from the store (texts from this worker's state queries): the same version.
        command = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "baton.apps.cli", "model", "train", "--from-store", "--database-url", database_url,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "BATON_MODELS_DIR": str(models_dir),
                 "BATON_TEMPORAL_ADDRESS": client.service_client.config.target_host},
        )  # fmt: skip
        out, err = await asyncio.wait_for(command.communicate(), 300)
        assert command.returncode == 0, err.decode()
        assert out.decode().strip() == version

        # 4. Promote: a conversation already running keeps the shipped model; new ones get the adapted one.
        running = start("running")
        await converse(client, task_queue, running, ["hello, a question about my plan"], gateway)
        assert promote(models_dir, version).current == version
        new = start("new")
        [first] = await converse(client, task_queue, new, [missed], gateway)
        assert first.action == "escalate" and first.signals is not None and first.signals.model_version == version
        # Scored by the worker itself (no scores on the way in): it too has picked up the promotion.
        by_worker = start("by-worker")
        own = await send_message(
            client, task_queue, by_worker, MessageIn(message_id="m1", role="customer", text=missed)
        )
        assert own.action == "escalate" and own.signals is not None and own.signals.model_version == version
        # The running conversation: the gateway scored with the new model, the worker scored again with its own.
        [kept] = await converse(client, task_queue, running, [missed], gateway, first=2)
        assert kept.action == "continue" and kept.signals is not None and kept.signals.model_version == shipped.version
        assert (await get_state(client, running.conversation_id)).model_version == shipped.version
        described = await handle(client, new.conversation_id).describe()
        assert described.typed_search_attributes.get(sa.MODEL_VERSION) == version
        described = await handle(client, running.conversation_id).describe()
        assert described.typed_search_attributes.get(sa.MODEL_VERSION) == shipped.version

        # 5. Rollback: new conversations are back on the shipped model; the promoted one's conversation keeps its.
        assert rollback(models_dir).current is None
        after = start("after-rollback")
        [back] = await converse(client, task_queue, after, [missed], gateway)
        assert back.action == "continue" and back.signals is not None and back.signals.model_version == shipped.version
        [still] = await converse(client, task_queue, new, ["hello? anyone there?"], gateway, first=2)
        assert still.signals is not None and still.signals.model_version == version
        with pytest.raises(RegistryError, match="nothing to roll back"):
            rollback(models_dir)
        history = await handle(client, running.conversation_id).fetch_history()
    # Replays with no worker and no model: every score came from the history.
    await Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter).replay_workflow(history)

    # 6. The same labels as JSONL, through the CLI.
    transcripts = labelled_jsonl(tmp_path / "labelled.jsonl")
    trained = baton("model", "train", "--from-jsonl", str(transcripts), models_dir=models_dir)
    assert trained.returncode == 0, trained.stderr
    # The export's labels give the store's rows (the false positive's intent read by the parent model, not the
    # trigger), in the same order: the same model, byte for byte.
    assert trained.stdout.strip() == version
    manifest = json.loads((models_dir / version / META_FILE).read_text())
    assert manifest["deployment"]["by_origin"] == {"false_positive": 1, "missed": 1}
    assert manifest["sha256"] == meta["sha256"]

    # 7. --compare-model reports the fixed conversations and the F1 before and after; the reverse is a drop.
    summary = tmp_path / "summary.json"
    compared = baton("replay", str(transcripts), "--compare-model", shipped.version, version,
                     "--summary-json", str(summary), models_dir=models_dir)  # fmt: skip
    assert compared.returncode == 0, compared.stderr
    changed = {json.loads(line)["conversation_id"]: json.loads(line) for line in compared.stdout.splitlines()}
    assert set(changed) == {"fp", "missed"}
    assert changed["missed"]["change"] == ["started_escalating"] and changed["missed"]["outcome"] == "improved"
    assert changed["fp"]["change"] == ["stopped_escalating"] and changed["fp"]["outcome"] == "improved"
    figures = json.loads(summary.read_text())
    assert figures["model_a"] == shipped.version and figures["model_b"] == version
    assert figures["a"]["f1"] < figures["b"]["f1"] == 1.0
    assert f"A: model {shipped.version}" in compared.stderr and "F1 rose by" in compared.stderr
    reverse = baton("replay", str(transcripts), "--compare-model", version, shipped.version, models_dir=models_dir)
    assert reverse.returncode == 1, reverse.stderr
    assert "F1 dropped by" in reverse.stderr and "FAIL" in reverse.stderr


def test_the_shipped_weights_are_never_written(tmp_path: Path) -> None:
    before = (WEIGHTS_DIR / MODEL_FILE).read_bytes()
    with pytest.raises(ValueError, match="shipped"):
        adapt(_jsonl_rows(tmp_path), WEIGHTS_DIR)
    assert (WEIGHTS_DIR / MODEL_FILE).read_bytes() == before


def _jsonl_rows(tmp_path: Path):
    path = labelled_jsonl(tmp_path / "labelled.jsonl")
    with path.open() as f:
        return rows_from_jsonl(f, str(path), default_classifier(), load_policy(os.environ["BATON_POLICY"]))


def test_labelled_jsonl_errors_name_the_field(tmp_path: Path) -> None:
    line = {
        "conversation_id": "x",
        "customer": {"id": "c"},
        "label": {"escalate": True, "missed": True, "from_message": 1},
        "messages": [{"role": "customer", "text": "hi"}, {"role": "bot", "text": "hello"}],
    }
    with pytest.raises(LabelledInputError, match=r"x: label.from_message: 1 is not a customer message"):
        rows_from_jsonl([json.dumps(line)], "f.jsonl", default_classifier(), load_policy(os.environ["BATON_POLICY"]))
    line["label"] = {"escalate": True, "missed": True, "from_message": 0, "intent": "world_peace"}
    with pytest.raises(LabelledInputError, match=r"x: label.intent"):
        rows_from_jsonl([json.dumps(line)], "f.jsonl", default_classifier(), load_policy(os.environ["BATON_POLICY"]))


def test_promote_refuses_what_it_cannot_load(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="no model 'baton-clf-0000000000'"):
        promote(tmp_path, "baton-clf-0000000000")
    with pytest.raises(RegistryError, match="not a model version"):
        promote(tmp_path, "../weights")
    with pytest.raises(RegistryError, match="nothing to roll back"):
        rollback(tmp_path)
    assert read_registry(tmp_path).current is None  # nothing written
    assert promote(tmp_path, default_classifier().version).current is None  # the shipped one: nothing to record


def test_a_broken_registry_falls_back_to_the_shipped_model(tmp_path: Path) -> None:
    selector = selector_for(tmp_path)
    assert selector.version == default_classifier().version
    (tmp_path / "registry.json").write_text('{"current": "baton-clf-gone", "previous": [null]}')
    assert selector.version == default_classifier().version  # the folder is gone: the shipped model scores
    assert selector.for_version("baton-clf-gone") is None


def test_the_commands(tmp_path: Path) -> None:
    shipped = default_classifier().version
    unknown = baton("model", "promote", "baton-clf-0000000000", models_dir=tmp_path)
    assert unknown.returncode == 2 and "no model 'baton-clf-0000000000'" in unknown.stderr
    nothing = baton("model", "rollback", models_dir=tmp_path)
    assert nothing.returncode == 2 and "nothing to roll back to" in nothing.stderr
    listed = baton("model", "list", models_dir=tmp_path)
    assert listed.returncode == 0 and listed.stdout.strip() == f"* {shipped}  shipped"
    misplaced = baton("model", "train", "--models-dir", str(tmp_path), models_dir=tmp_path)
    assert (
        misplaced.returncode == 2 and "--models-dir applies only with --from-store or --from-jsonl" in misplaced.stderr
    )
