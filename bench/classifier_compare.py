"""Compare classifier candidates in one run: held-out figures, load time, throughput and latency on one core.

    python -m bench.classifier_compare                  # every candidate; writes bench/classifier_compare.json
    python -m bench.classifier_compare --only a,b,e     # some of them

Candidates (each trained by `baton.apps.model.train.train`, the same training rows, solver and selection;
only the embedding differs):

    a  the rule scorer (baton.domain.scoring), no training
    b  hashed n-grams + rules + sentiment, no embedding
    c  b + WordLlama 256-d static token embeddings (the previous model's features)
    d  b + the all-MiniLM-L6-v2 transformer itself, exported to ONNX with int8 dynamic quantisation and run
       by onnxruntime (needs torch and the encoder package at build time; skipped without them)
    e  b + the MiniLM static distillation in classifier/weights (the shipped model's features)

Held-out figures come from `apps/model/evaluate.py`'s `measure` on its held-out rows (the sources' held-out
split and the team's evaluation messages): the same rows for every candidate. Speed comes from
`bench.classifier_speed` in a fresh process pinned to one core, one candidate at a time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from baton.apps.model.evaluate import Scores, held_out_rows, measure, model_reader, rule_reading, targets_met
from baton.contract.messages import Intent

OUT = Path(__file__).resolve().parent / "classifier_compare.json"
CANDIDATES = {
    "a": "rule scorer",
    "b": "n-grams + rules",
    "c": "n-grams + WordLlama + rules",
    "d": "n-grams + MiniLM (ONNX int8) + rules",
    "e": "n-grams + MiniLM static + rules",
}
EMBEDDING = {"b": "none", "c": "wordllama-256", "e": "minilm-static"}


def speed(model: Path | None, onnx: Path | None = None, rules: bool = False) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.classifier_speed", "--json"]
    if rules:
        command.append("--rules")
    if model is not None:
        command += ["--model", str(model)]
    if onnx is not None:
        command += ["--onnx", str(onnx)]
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[1])
    return json.loads(done.stdout.strip().splitlines()[-1])


def folder_mb(folder: Path, names: tuple[str, ...]) -> float:
    return round(sum((folder / n).stat().st_size for n in names if (folder / n).is_file()) / 1e6, 2)


def summary(scores: Scores) -> dict[str, Any]:
    return {
        "per_intent": scores.per_intent,
        "topic_accuracy": scores.topic_accuracy,
        "frustration_spearman": scores.frustration_spearman,
        "targets": targets_met(scores) if scores.topic_accuracy is not None else None,
    }


def run(only: list[str], work: Path, log: Any) -> dict[str, Any]:
    from baton.apps.model.train import train
    from baton.classifier.embedding import MINILM_TABLE, MINILM_TOKENIZER
    from baton.classifier.model import MODEL_FILE, Classifier

    rows = held_out_rows()
    texts = [r.text for r in rows]
    results: dict[str, Any] = {}
    for key in only:
        name = CANDIDATES[key]
        print(f"== {key}: {name}", file=log, flush=True)
        if key == "a":
            scores = measure(name, rows, [rule_reading(t) for t in texts])
            results[key] = {"name": name, **summary(scores), "speed": speed(None, rules=True), "files_mb": 0.0}
            continue
        onnx = None
        embedding: Any = EMBEDDING.get(key)
        if key == "d":
            try:
                from baton.apps.model.export_encoder import OnnxEncoder, export_onnx

                onnx = export_onnx(work / "minilm-int8.onnx", int8=True)
            except Exception as error:  # no torch / no encoder package here: say so and go on
                results[key] = {"name": name, "skipped": f"{type(error).__name__}: {error}"}
                print(f"   skipped: {error}", file=log, flush=True)
                continue
            embedding = OnnxEncoder(onnx, threads=2)
        folder = work / key
        start = time.perf_counter()
        manifest = train(folder, log=log, embedding=embedding)
        trained = time.perf_counter() - start
        classifier = Classifier.load(folder, embedding=None if key != "d" else embedding)
        scores = measure(name, rows, model_reader(classifier)(texts))
        files = (MODEL_FILE, MINILM_TABLE, MINILM_TOKENIZER) if key == "e" else (MODEL_FILE,)
        results[key] = {
            "name": name,
            "version": manifest["version"],
            **summary(scores),
            "training_seconds": round(trained, 1),
            "files_mb": folder_mb(folder, files) + (round(onnx.stat().st_size / 1e6, 2) if onnx else 0.0),
            "speed": speed(folder, onnx=onnx),
        }
    return results


def render(results: dict[str, Any]) -> str:
    intents = [i.value for i in Intent]
    short = {
        "human_request": "human",
        "contact_request": "contact",
        "legal_threat": "legal",
        "safety_or_distress": "safety",
        "data_deletion": "deletion",
        "billing_dispute": "billing",
        "cancellation": "cancel",
        "not_helping": "nothelp",
        "resolved": "resolved",
    }
    head = f"{'':3s}{'candidate':38s} {'hrP':>5s} {'hrR':>5s} " + " ".join(f"{short[i]:>8s}" for i in intents)
    head += f" {'topic':>6s} {'frustr':>6s} {'load s':>7s} {'msg/s':>7s} {'p50 ms':>7s} {'MB':>6s}"
    lines = ["held-out F1 per intent (human_request also P and R), topic accuracy, frustration Spearman;", head]
    for key, r in results.items():
        if "skipped" in r:
            lines.append(f"{key:3s}{r['name']:38s} skipped: {r['skipped']}")
            continue
        per = r["per_intent"]
        s = r["speed"]
        topic = f"{r['topic_accuracy']:.3f}" if r["topic_accuracy"] is not None else "n/a"
        lines.append(
            f"{key:3s}{r['name']:38s} {per['human_request']['precision']:5.3f} {per['human_request']['recall']:5.3f} "
            + " ".join(f"{per[i]['f1']:8.3f}" for i in intents)
            + f" {topic:>6s} {r['frustration_spearman']:6.3f} {s['load_seconds']:7.2f}"
            + f" {s['messages_per_second']:7.0f} {s['p50_ms']:7.2f} {r['files_mb']:6.1f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.classifier_compare", description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(CANDIDATES), help="comma-separated candidate keys (a-e)")
    parser.add_argument("--out", type=Path, default=OUT, help="the JSON file to write")
    args = parser.parse_args(argv)
    only = [k.strip() for k in args.only.split(",") if k.strip()]
    unknown = [k for k in only if k not in CANDIDATES]
    if unknown:
        parser.error(f"unknown candidates: {', '.join(unknown)}")
    with tempfile.TemporaryDirectory(prefix="baton-compare-") as work:
        results = run(only, Path(work), sys.stderr)
    print(render(results))
    args.out.write_text(json.dumps({"candidates": results}, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
