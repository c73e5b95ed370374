"""Distillation ablation: one layer-dropped student, three ways, one run.

1. no recovery — the student as layer dropping left it;
2. logit KD — KL of softened logits (T) + weighted hard-label CE;
3. logit + hidden + attention KD — plus hidden-state MSE over the layer map and MiniLM-style
   attention KL.

Each trained variant starts from the same student and the same seeded batch order. Accuracy (95 %
Wilson CI) and agreement with the teacher are measured on the test split. Writes JSON and prints a
table. Budget it with --epochs / --max-steps / --train-size (defaults fit ~10-15 min on 2 cores).

    .venv/bin/python benchmarks/distill_ablation.py --max-steps 150 --out distill_ablation.json
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from edgecompress.compress.data.dataref import DataRef  # noqa: E402
from edgecompress.compress.data.datasets import load_dataset  # noqa: E402
from edgecompress.compress.distill import DistillConfig, DistillRequest, run_distill  # noqa: E402
from edgecompress.compress.distill.students import build_student, describe  # noqa: E402
from edgecompress.compress.evaluation.evaluate import classification_metrics, predict  # noqa: E402
from edgecompress.compress.models.loading import load_model  # noqa: E402
from edgecompress.compress.training.train import FinetuneConfig  # noqa: E402
from edgecompress.fsutil import atomic_write_json, cache_root  # noqa: E402
from edgecompress.targets import torch_runner  # noqa: E402

VARIANTS = {
    "logit KD": dict(kd_weight=1.0, ce_weight=0.5),
    "logit + hidden + attention KD": dict(kd_weight=1.0, ce_weight=0.5, hidden_weight=1.0,
                                          attention_weight=1.0),
}


def _args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--teacher", default=str(cache_root() / "teachers" /
                                                 "minilm-l6-rt-polarity"))
    parser.add_argument("--student", default="layers:1,3,5")
    parser.add_argument("--dataset", default="rt-polarity")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--train-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--attention-layers", default="last", choices=("last", "mapped"))
    parser.add_argument("--out", type=Path, default=Path("distill_ablation.json"))
    return parser.parse_args(argv)


def _metrics(loaded, texts, truth, classes, teacher_pred=None) -> tuple[dict, object]:
    """(metrics JSON, argmax predictions) of `loaded` on the test texts."""
    pred = predict(torch_runner(loaded.module), loaded.tokenizer, list(texts)).argmax(1)
    return classification_metrics(truth, pred, classes, teacher_pred).to_json(), pred


def _variant(args, name: str, weights: dict, workdir: Path) -> dict:
    train = FinetuneConfig(epochs=args.epochs, max_steps=args.max_steps, learning_rate=args.lr,
                           checkpoint_every=100)
    config = DistillConfig(train=train, attention_layers=args.attention_layers, **weights)
    request = DistillRequest(teacher=args.teacher, student=args.student,
                             data=DataRef(args.dataset),
                             out=workdir / name.replace(" ", "_").replace("+", ""),
                             config=config, train_size=args.train_size, evaluate_test=False)
    began = time.perf_counter()
    manifest = run_distill(request)
    return {"manifest": manifest, "seconds": round(time.perf_counter() - began, 1),
            "student": load_model(request.out)}


def main(argv=None) -> int:
    import numpy as np

    args = _args(argv)
    data = load_dataset(args.dataset)
    test, classes = data.split("test"), len(data.labels)
    texts, truth = test.texts, np.asarray(test.labels)
    teacher = load_model(args.teacher)
    teacher_json, teacher_pred = _metrics(teacher, texts, truth, classes)
    rows = {"teacher (fp32)": {**teacher_json, "seconds": 0.0, "shape": describe(teacher)}}
    began = time.perf_counter()
    student = build_student(args.student, teacher).loaded
    rows["no recovery"], _ = _metrics(student, texts, truth, classes, teacher_pred)
    rows["no recovery"].update(seconds=round(time.perf_counter() - began, 1),
                               shape=describe(student))
    with tempfile.TemporaryDirectory(prefix="distill-ablation-") as tmp:
        for name, weights in VARIANTS.items():
            result = _variant(args, name, weights, Path(tmp))
            rows[name], _ = _metrics(result["student"], texts, truth, classes, teacher_pred)
            m = result["manifest"]
            rows[name].update(seconds=result["seconds"], train_seconds=m["seconds"],
                              steps=m["steps_done"], weights=weights,
                              best_dev_accuracy=m["best_dev_accuracy"],
                              notes=m["plan"]["notes"])
    report = {"teacher": args.teacher, "student": args.student, "dataset": args.dataset,
              "split": "test", "epochs": args.epochs, "max_steps": args.max_steps,
              "train_size": args.train_size, "lr": args.lr, "results": rows}
    atomic_write_json(args.out, report)
    _print_table(rows)
    print(f"written: {args.out}")
    return 0


def _print_table(rows: dict) -> None:
    print(f"{'variant':34} {'accuracy':>9} {'95% CI':>17} {'agree':>7} {'wall s':>8}")
    for name, row in rows.items():
        low, high = row["ci95"]
        agree = f"{row['agreement']:.2%}" if "agreement" in row else "-"
        print(f"{name:34} {row['accuracy']:9.2%} [{low:6.2%}, {high:6.2%}] {agree:>7} "
              f"{row['seconds']:8.1f}")


if __name__ == "__main__":
    sys.exit(main())
