"""The int8 encoder against the float32 one, on the messages the shipped second stage reads.

    python -m bench.encoder_int8            # cosine to the float32 vectors, ms a message, one core

The process pins itself to one core. Messages: the speed bench's held-out mix (bench/classifier_speed.py),
those whose first-stage scores send them to the second stage. Both encoders embed every one of them, the
float32 one in a batch (its fastest) and one at a time, the int8 one one at a time (as it always runs).
"""

from __future__ import annotations

import argparse
import json
import os
import time

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.encoder_int8", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="one JSON line instead of the text")
    args = parser.parse_args(argv)

    from bench.classifier_speed import pin_one_core, sample_texts

    core = pin_one_core()
    import numpy as np

    from baton.classifier.encoder import shared_encoder
    from baton.classifier.encoder_int8 import shared_int8_encoder
    from baton.classifier.model import default_classifier

    classifier = default_classifier()
    texts = sample_texts()
    unsure = [t for t, s in zip(texts, classifier._score_stage(texts), strict=True) if classifier.unsure(s)]
    full, int8 = shared_encoder(), shared_int8_encoder()
    full.embed(unsure[:16])
    int8.embed(unsure[:16])

    def timed(run) -> tuple[np.ndarray, float]:  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        vectors = run()
        return vectors, (time.perf_counter() - start) / len(unsure) * 1e3

    reference, batch_ms = timed(lambda: full.embed(unsure))
    _, alone_ms = timed(lambda: np.vstack([full.embed([t]) for t in unsure]))
    vectors, int8_ms = timed(lambda: int8.embed(unsure))
    cosines = (vectors * reference).sum(axis=1)
    result = {
        "core": core,
        "messages": len(unsure),
        "float32_ms_batch": round(batch_ms, 2),
        "float32_ms_alone": round(alone_ms, 2),
        "int8_ms": round(int8_ms, 2),
        "cosine_mean": round(float(cosines.mean()), 4),
        "cosine_min": round(float(cosines.min()), 4),
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"messages:  {len(unsure)} of {len(texts)} (the second stage's share of the held-out mix), core {core}")
    print(f"float32:   {batch_ms:.2f} ms a message in a batch, {alone_ms:.2f} ms alone (numpy)")
    print(f"int8:      {int8_ms:.2f} ms a message, each alone (onnxruntime)")
    print(f"cosine:    mean {cosines.mean():.4f}, lowest {cosines.min():.4f} (int8 against float32)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
