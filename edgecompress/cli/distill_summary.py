"""What `edgecompress distill` prints: a distill.json manifest as a few human lines."""

from __future__ import annotations


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
