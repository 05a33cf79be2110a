"""Load time, throughput and per-message latency of the classifier on one core.

    python -m bench.classifier_speed                 # the shipped model
    python -m bench.classifier_speed --model DIR     # another trained model folder
    python -m bench.classifier_speed --rules         # the rule scorer, for comparison
    python -m bench.classifier_speed --json          # one JSON line instead of the text

The process pins itself to one CPU (os.sched_setaffinity) and caps the BLAS and onnxruntime threads at
one before numpy loads, so the figures are those of one core. Messages: two fixed samples of the held-out
rows (the same every run): the whole mix (59% of it GoEmotions' Reddit comments, rated for frustration
only) and the support messages alone (the rows with intent labels: HINT3, NLU++, Banking77, CLINC150
and the team's). Throughput scores them in batches of 256 (`score_many`); latency scores them one at a
time (`score`), after a warm-up. With a second stage, the share of messages it read is printed too: the
cost per message depends on it (docs/classifier.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

SAMPLE = 2000
LATENCY_SAMPLE = 1000
BATCH = 256


def pin_one_core() -> int | None:
    if not hasattr(os, "sched_setaffinity"):
        return None
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return core


def sample_texts(n: int = SAMPLE, support_only: bool = False) -> list[str]:
    """Every k-th held-out text, so the sample spans all sources; a fixed list."""
    from baton.apps.model.evaluate import held_out_rows

    rows = [r for r in held_out_rows() if r.topic is not None or not support_only]
    step = max(1, len(rows) // n)
    return [r.text for r in rows[::step]][:n]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def measure(score_many, score_one, texts: list[str]) -> dict[str, float]:  # type: ignore[no-untyped-def]
    score_many(texts[:BATCH])  # warm-up
    start = time.perf_counter()
    for i in range(0, len(texts), BATCH):
        score_many(texts[i : i + BATCH])
    throughput = len(texts) / (time.perf_counter() - start)
    latencies = []
    for text in texts[:LATENCY_SAMPLE]:
        t = time.perf_counter()
        score_one(text)
        latencies.append((time.perf_counter() - t) * 1000)
    return {
        "messages_per_second": round(throughput, 1),
        "p50_ms": round(percentile(latencies, 50), 3),
        "p99_ms": round(percentile(latencies, 99), 3),
    }


def run(model: Path | None, onnx: Path | None, rules: bool) -> dict[str, object]:
    """Load first (nothing of Baton's imported yet, so the load time includes its imports), then score."""
    core = pin_one_core()
    if rules:
        start = time.perf_counter()
        from baton.domain.scoring import score

        score("warm up")
        load = time.perf_counter() - start
        figures = measure(lambda ts: [score(t) for t in ts], score, sample_texts())
        return {"model": "rule scorer", "core": core, "load_seconds": round(load, 3), **figures}
    start = time.perf_counter()
    from baton.classifier.model import WEIGHTS_DIR, Classifier

    embedding = None
    if onnx is not None:
        from baton.apps.model.export_encoder import OnnxEncoder

        embedding = OnnxEncoder(onnx, threads=1)
    imported = time.perf_counter()
    classifier = Classifier.load(model or WEIGHTS_DIR, embedding=embedding)
    classifier.score("warm up")  # the lexicon and tokenizer load on first use
    loaded = time.perf_counter()
    samples = {}
    for name, texts in (("mix", sample_texts()), ("support", sample_texts(support_only=True))):
        figures = measure(classifier.score_many, classifier.score, texts)
        if classifier.second is not None:
            unsure = sum(1 for s in classifier._score_stage(texts) if classifier.unsure(s))
            figures["second_stage_share"] = round(unsure / len(texts), 3)
        samples[name] = figures
    return {
        "model": classifier.version,
        "core": core,
        "load_seconds": round(loaded - start, 3),
        "load_seconds_without_imports": round(loaded - imported, 3),
        **samples["mix"],
        "support": samples["support"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.classifier_speed", description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="a trained model folder (default: the shipped one)")
    parser.add_argument("--onnx", type=Path, default=None, help="the encoder ONNX file a model was trained with")
    parser.add_argument("--rules", action="store_true", help="measure the rule scorer instead")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    result = run(args.model, args.onnx, args.rules)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"model:        {result['model']} (one core: cpu {result['core']})")
        print(f"load:         {result['load_seconds']:.2f} s (imports, files, hash checks, first message)")
        # Support messages first: they are the traffic Baton scores; the mix is mostly Reddit comments.
        for name, figures in (
            ("support messages", result.get("support")),
            ("held-out mix (59% Reddit comments)", result),
        ):
            if not isinstance(figures, dict):
                continue
            print(f"{name}:")
            print(f"  throughput:   {figures['messages_per_second']:.0f} messages/s (batches of {BATCH})")
            p50, p99 = figures["p50_ms"], figures["p99_ms"]
            print(f"  latency:      p50 {p50:.2f} ms, p99 {p99:.2f} ms (one message a call)")
            if "second_stage_share" in figures:
                print(f"  second stage: read {figures['second_stage_share']:.1%} of the messages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
