"""Which levers made a run's artifacts: what each model-level stage did (layers kept, heads / FFN
cut, distillation, vocabulary), read from stages/<stage>/stage.json and, for the vocabulary, the
prune.json of the stage's checkpoint. The per-target levers (scheme, layers kept in float) are the
report's rows and its quantization section. Reads JSON only; an unreadable record stops the
report with one line naming it."""

from __future__ import annotations

from pathlib import Path

from edgecompress.rundir import RunDir, read_object


def run_levers(run_dir: Path) -> list[str]:
    """One line per model-level stage the run went through, in pipeline order; UserError naming
    a record that cannot be read or is not laid out as its stage writes it."""
    from edgecompress.reports.findings import read_layout

    run, lines = RunDir(run_dir), []
    for step, stage, label in _steps(run):
        path = run.stage_file(step)
        if not path.is_file():
            continue
        record = read_object(path)
        line = read_layout(lambda s=stage, r=record: DESCRIBE[s](r.get("config") or {}, r),
                           path, run_dir)
        if line:
            lines.append(line.replace(f"{stage}:", f"{stage} {label}:", 1) if label else line)
    return lines


def _steps(run: RunDir) -> list[tuple[str, str, str]]:
    """(step id, stage, round label) in pipeline order: [prune] rounds put their earlier prune
    and distill steps ("prune-round1", "distill-round1", ...) before the last round's."""
    ids = [*zip(run.round_steps("prune"), run.round_steps("distill")), ("prune", "distill")]
    out = [("finetune", "finetune", "")]
    for k, (prune, distill) in enumerate(ids, 1):
        label = f"(round {k} of {len(ids)})" if len(ids) > 1 else ""
        cut = f"(round {k} of {len(ids)}, fractions of what round {k - 1} left)" if k > 1 \
            else label
        out += [(prune, "prune", cut), (distill, "distill", label)]
    return out + [("vocab", "vocab", "")]


def _finetune(config: dict, record: dict) -> str:
    train = config.get("train") or {}
    return (f"teacher: fine-tuned {train.get('epochs')} epoch(s) from {record['input']['model']}"
            f" ({config.get('seeds', 1)} seed(s))")


def _cuts(config: dict) -> list[str]:
    cuts = []
    if config.get("keep_layers"):
        cuts.append("kept layers " + ", ".join(str(i) for i in config["keep_layers"]))
    for key, words in (("layers", "of the layers"), ("heads", "of the attention heads"),
                       ("ffn", "of the FFN neurons")):
        if config.get(key):
            cuts.append(f"cut {config[key]:.0%} {words} by {config.get('importance', 'score')}")
    if config.get("sparsity"):
        cuts.append(f"{config['sparsity']:.0%} unstructured sparsity (no speedup on CPUs)")
    return cuts


def _prune(config: dict, record: dict) -> str | None:
    cuts = _cuts(config)
    return "prune: " + "; ".join(cuts) if cuts else None


def _distill(config: dict, record: dict) -> str:
    settings = config.get("distill") or {}
    train = settings.get("train") or {}
    losses = [f"{name} {settings[key]:g}" for key, name in (
        ("kd_weight", f"logit KD (T = {settings.get('temperature', 1):g})"),
        ("ce_weight", "label CE"), ("hidden_weight", "hidden-state MSE"),
        ("attention_weight", "attention KL"), ("embedding_cosine_weight", "embedding cosine"),
        ("embedding_mse_weight", "embedding MSE")) if settings.get(key)]
    student = (record.get("metrics") or {}).get("student") or {}
    shape = f" ({student['layers']} layers, {student['params']:,} params)" if student else ""
    return (f"distill: student {config.get('student')}{shape} learnt from the teacher for "
            f"{train.get('epochs')} epoch(s): {', '.join(losses) or 'no loss recorded'}")


def _vocab(config: dict, record: dict) -> str:
    line = f"vocabulary: pruned to the tokens of {config.get('vocab_corpus')}"
    manifest = Path(record.get("output") or "") / "prune.json"
    vocab = read_object(manifest).get("vocabulary") if manifest.is_file() else None
    if vocab:
        line += (f" ({vocab.get('tokenizer', 'tokenizer')}: {vocab['vocab_before']:,} -> "
                 f"{vocab['vocab_after']:,} tokens)")
    return line


DESCRIBE = {"finetune": _finetune, "prune": _prune, "distill": _distill, "vocab": _vocab}
