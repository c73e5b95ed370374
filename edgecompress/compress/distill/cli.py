"""CLI glue for `edgecompress distill`: options -> a validated request; manifest -> summary."""

from __future__ import annotations

from pathlib import Path

from edgecompress.compress.distill.config import DistillConfig, parse_layer_map
from edgecompress.compress.distill.stage import DistillRequest
from edgecompress.compress.config import FieldError
from edgecompress.compress.finetune.stage import cli_flag
from edgecompress.compress.training.train import FinetuneConfig
from edgecompress.errors import UserError


def distill_request(*, teacher: str, student: str, dataset: str, out: Path, epochs: int,
                    batch_size: int, lr: float, max_length: int, max_steps: int | None,
                    seed: int, layer_map: str | None, **options) -> DistillRequest:
    """Build the request from CLI options; raises UserError with the one-line reason."""
    request_keys = ("unlabeled", "qat_target", "train_size", "force", "dev_similarity")
    extra = {k: options.pop(k) for k in request_keys if k in options}
    try:
        train = FinetuneConfig(epochs=epochs, batch_size=batch_size, learning_rate=lr,
                               max_length=max_length, max_steps=max_steps, seed=seed)
        config = DistillConfig(train=train, layer_map=parse_layer_map(layer_map)
                               if layer_map else None, **options)
    except FieldError as err:  # worded as the flag the user typed: --temperature, --lr
        raise UserError(f"{cli_flag(err.field)}: {err.message}") from None
    except ValueError as err:
        raise UserError(str(err)) from None
    if extra.get("train_size") is not None and extra["train_size"] < 1:
        raise UserError(f"--train-size must be >= 1, got {extra['train_size']}")
    return DistillRequest(teacher=teacher, student=student, dataset=dataset, out=out,
                          config=config, **extra)


def _acc(metrics: dict) -> str:
    low, high = metrics["ci95"]
    return f"{metrics['accuracy']:.2%} [{low:.2%}, {high:.2%}]"


def summary_lines(manifest: dict) -> list[str]:
    """Human-readable lines: what was trained, how it ended, test accuracy vs the teacher."""
    student, teacher = manifest["student"], manifest["teacher_shape"]
    removed = 1 - student["non_embedding_params"] / teacher["non_embedding_params"]
    removed_layers = 1 - student["encoder_layer_params"] / teacher["encoder_layer_params"]
    lines = [f"student: {student['layers']} layers, {student['params']:,} params; removed "
             f"{removed_layers:.1%} of the teacher's encoder-layer params, {removed:.1%} of its "
             f"non-embedding params (incl. pooler + head); layer map {manifest['layer_map']}"]
    lines += [f"note: {note}" for note in manifest["plan"]["notes"]]
    lines.append(f"{manifest['steps_done']}/{manifest['steps']} steps in "
                 f"{manifest['seconds']:.0f} s (resumed from {manifest['resumed_from']}); "
                 f"stopped: {manifest['stopped'] or 'completed'}")
    if manifest.get("best_step"):
        restored = "" if manifest["stopped"] == "max-minutes" else " (restored)"
        metric = manifest.get("dev_metric", "accuracy")
        score = (f"{manifest['best_dev_accuracy']:.2%}" if metric == "accuracy"
                 else f"{manifest['best_dev_score']:.4f}")
        lines.append(f"best dev {metric.replace('_', ' ')} {score} at step "
                     f"{manifest['best_step']}{restored}")
    if manifest.get("task") == "embedding":
        lines += _embedding_test_lines(manifest.get("test"))
    elif "test" in manifest:
        test = manifest["test"]
        lines.append(f"test accuracy: student {_acc(test['student'])}, teacher "
                     f"{_acc(test['teacher'])}, agreement {test['student']['agreement']:.2%} "
                     f"(n={test['student']['n']})")
    if manifest["stopped"] == "max-minutes":
        lines.append("out of --max-minutes: rerun the same command to continue")
    return lines


def _embedding_test_lines(test: dict | None) -> list[str]:
    """A sentence encoder's held-out facts: cosine to the teacher, retrieval, Spearman."""
    if not test:
        return []
    lines = []
    if "retrieval" in test:
        r = test["retrieval"]
        lines.append(f"held-out ({test['n']} sentences): cosine to teacher "
                     f"{test['teacher_cosine']:.4f}, recall@{r['k']} {r['recall_at_k']:.3f}, "
                     f"MRR {r['mrr']:.3f} (teacher's neighbours as truth)")
    if "dev_similarity_spearman" in test:  # the selection set: not held out
        spearman = test["dev_similarity_spearman"]
        lines.append(f"Spearman on the dev similarity set: student {spearman['student']:.4f}, "
                     f"teacher {spearman['teacher']:.4f}")
    return lines
