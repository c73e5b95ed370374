"""The stage commands: finetune, prune, distill, quantize and export. Each parses its options,
calls the library's stage and prints the manifest's summary (or JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgecompress.cli.common import (LABEL_COL, LABEL_MAP_HELP, SPLIT_COL, TEXT_COL, console, emit,
                                     guarded)
from edgecompress.errors import UserError


@guarded
def finetune(
    model: str = typer.Argument(..., help="Checkpoint directory or built-in name (minilm-l6)."),
    dataset: str = typer.Option(..., help="Dataset name or CSV/JSONL path."),
    out: Path = typer.Option(..., help="Output checkpoint directory."),
    epochs: int = typer.Option(1), batch_size: int = typer.Option(32),
    lr: Optional[float] = typer.Option(None, help="Default 5e-5 (HF), 5e-4 (plain encoder)."),
    max_length: int = typer.Option(64), max_steps: Optional[int] = typer.Option(None),
    seed: int = typer.Option(0), text_col: Optional[str] = TEXT_COL,
    label_col: Optional[str] = LABEL_COL, split_col: Optional[str] = SPLIT_COL,
    force: bool = typer.Option(False, help="Replace an existing, different checkpoint at --out."),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML with this stage's recipe "
                                                                 "keys; flags given override it."),
) -> None:
    """Fine-tune an encoder with a classification head; resumes after interruption."""
    from edgecompress.compress.finetune.stage import FinetuneRequest, run_finetune

    overrides = None
    if config is not None:
        from edgecompress.cli.config import explicit_options, stage_config_from

        flags = explicit_options(finetune, dict(epochs=epochs, batch_size=batch_size, lr=lr,
                                                max_length=max_length, max_steps=max_steps,
                                                seed=seed))
        overrides = stage_config_from(config, "finetune", flags).train
    request = FinetuneRequest(model=model, dataset=dataset, out=out, epochs=epochs,
                              batch_size=batch_size, lr=lr, max_length=max_length,
                              max_steps=max_steps, seed=seed, text_col=text_col,
                              label_col=label_col, split_col=split_col, force=force,
                              overrides=overrides)
    manifest = run_finetune(request, console)
    dev = manifest["dev"]
    console.print(f"fine-tuned in {manifest['seconds']:.0f} s of training — dev accuracy "
                  f"{dev['accuracy']:.2%} [{dev['ci95'][0]:.2%}, {dev['ci95'][1]:.2%}] "
                  f"(n={dev['n']}) — written to {out}")


@guarded
def prune(
    model: str = typer.Argument(..., help="Checkpoint directory or built-in name."),
    out: Path = typer.Option(..., help="Output checkpoint directory (gets prune.json)."),
    heads: float = typer.Option(0.0, help="Fraction of attention heads to remove, in [0, 1)."),
    ffn: float = typer.Option(0.0, help="Fraction of FFN neurons to remove, in [0, 1)."),
    layers: float = typer.Option(0.0, help="Fraction of encoder layers to drop, in [0, 1)."),
    keep_layers: Optional[str] = typer.Option(None, help="Layers to keep, e.g. 1,3,5."),
    drop_heads: Optional[str] = typer.Option(None, help="Heads to remove, e.g. '0:1,2;3:0'."),
    scope: str = typer.Option("global", help="Allocate removals 'global'ly or per 'layer'."),
    importance: str = typer.Option("gradient", help="'gradient' (on data) or 'magnitude'."),
    layer_method: str = typer.Option("importance", help="'importance' or 'alternate'."),
    target_params: Optional[int] = typer.Option(None, help="Prune heads+FFN to this many params."),
    target_mb: Optional[float] = typer.Option(None, help="Prune heads+FFN to this fp32 MB."),
    vocab_corpus: Optional[str] = typer.Option(None, help="Keep tokens of this dataset/file."),
    sparsity: float = typer.Option(0.0, help="Unstructured magnitude sparsity (size-only)."),
    nm: Optional[str] = typer.Option(None, help="N:M magnitude sparsity, e.g. 2:4 (size-only)."),
    dataset: str = typer.Option("rt-polarity", help="Importance samples (train), accuracy (test)."),
    text_col: Optional[str] = TEXT_COL, label_col: Optional[str] = LABEL_COL,
    split_col: Optional[str] = SPLIT_COL,
    samples: int = typer.Option(256, help="Sentences to measure importance on."),
    evaluate: bool = typer.Option(True, "--eval/--no-eval", help="Accuracy before/after."),
    gate: Optional[str] = typer.Option(None, help="Target to bench pruned vs unpruned on."),
    gate_runs: int = typer.Option(50, help="Timed runs per artifact for --gate."),
    force: bool = typer.Option(False, help="Replace an existing output directory."),
    label_map: Optional[str] = typer.Option(None, help=LABEL_MAP_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON."),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML with this stage's recipe "
                                                                 "keys; flags given override it."),
) -> None:
    """Remove heads, FFN neurons, layers, vocabulary; report what it gained (prune.json)."""
    from edgecompress.compress.data.labels import parse_label_map

    from edgecompress.compress.prune import PruneRequest, run_prune
    from edgecompress.compress.prune.config import config_from_options

    options = dict(heads=heads, ffn=ffn, layers=layers, keep_layers=keep_layers,
                   drop_heads=drop_heads, scope=scope, importance=importance,
                   layer_method=layer_method, target_params=target_params, target_mb=target_mb,
                   vocab_corpus=vocab_corpus, sparsity=sparsity, nm=nm, samples=samples)
    if config is None:
        prune_config = config_from_options(**options)
    else:
        from edgecompress.cli.config import explicit_options, stage_config_from
        from edgecompress.compress.prune.config import parse_cli_values

        flags = parse_cli_values(explicit_options(prune, options))
        prune_config = stage_config_from(config, "prune", flags)
    manifest = run_prune(PruneRequest(model=model, out=out, config=prune_config, dataset=dataset,
                                      evaluate=evaluate, gate=gate, gate_runs=gate_runs,
                                      force=force, label_map=parse_label_map(label_map)
                                      if label_map else (), text_col=text_col,
                                      label_col=label_col, split_col=split_col))
    from edgecompress.compress.prune.stage import summary_lines

    emit(manifest, as_json, summary_lines)


@guarded
def distill(
    teacher: str = typer.Option(..., help="Teacher: a classifier or a sentence encoder."),
    student: str = typer.Option(..., help="Checkpoint dir (e.g. from prune), 'layers:1,3,5' "
                                          "(a teacher copy) or 'fresh:layers=3,hidden=192,...'."),
    dataset: str = typer.Option(..., help="Dataset name, CSV/JSONL (or, encoders, .txt) path."),
    text_col: Optional[str] = TEXT_COL, label_col: Optional[str] = LABEL_COL,
    split_col: Optional[str] = SPLIT_COL,
    out: Path = typer.Option(..., help="Output student checkpoint directory (gets distill.json)."),
    epochs: int = typer.Option(3), batch_size: int = typer.Option(32),
    lr: float = typer.Option(5e-5), max_length: int = typer.Option(64),
    temperature: float = typer.Option(2.0), kd_weight: float = typer.Option(1.0),
    ce_weight: float = typer.Option(0.5, help="Hard-label cross-entropy weight."),
    hidden_weight: float = typer.Option(0.0, help="Hidden-state MSE weight (via --layer-map)."),
    attention_weight: float = typer.Option(0.0, help="Attention-distribution KL weight."),
    attention_layers: str = typer.Option("last", help="'last' layer or the 'mapped' layers."),
    embedding_cosine_weight: float = typer.Option(0.0, help="Sentence encoders: 1 - cosine."),
    embedding_mse_weight: float = typer.Option(0.0, help="Sentence encoders: embedding MSE."),
    layer_map: Optional[str] = typer.Option(None, help="STUDENT:TEACHER pairs, e.g. 0:1,1:3,2:5."),
    eval_every: int = typer.Option(0, help="Dev evaluation every N steps (0: once per epoch)."),
    patience: int = typer.Option(0, help="Stop after N dev evaluations without gain (0: never)."),
    max_steps: Optional[int] = typer.Option(None), max_minutes: Optional[float] = typer.Option(None),
    seed: int = typer.Option(0), train_size: Optional[int] = typer.Option(None),
    unlabeled: Optional[Path] = typer.Option(None, help="Extra training text (.txt/.csv/.jsonl)."),
    qat_target: Optional[str] = typer.Option(None, help="Fake-quantize like this target's int8."),
    force: bool = typer.Option(False, help="Replace an existing, different output directory."),
    label_map: Optional[str] = typer.Option(None, help=LABEL_MAP_HELP),
    dev_similarity: Optional[str] = typer.Option(None, help="Sentence encoders: dev Spearman set."),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON."),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML recipe keys; flags win."),
) -> None:
    """Distill a teacher into a smaller student; resumes after interruption (distill.json)."""
    options = {k: v for k, v in locals().items()
               if k not in ("as_json", "config", "label_map", "text_col", "label_col", "split_col")}
    import dataclasses

    from edgecompress.compress.data.labels import parse_label_map

    from edgecompress.compress.distill.cli import distill_request, summary_lines
    from edgecompress.compress.distill.stage import run_distill

    if config is None:
        request = distill_request(**options)
    else:
        from edgecompress.cli.config import distill_request_from, explicit_options

        request = distill_request_from(config, explicit_options(distill, options), **options)
    request = dataclasses.replace(request, text_col=text_col, label_col=label_col,
                                  split_col=split_col,
                                  label_map=parse_label_map(label_map) if label_map else ())
    from edgecompress.compress.distill.distributed import World

    manifest = run_distill(request, None if as_json else console)
    if World.launched_main():  # under torchrun, rank 0 speaks for all
        emit(manifest, as_json, summary_lines)


@guarded
def quantize(
    model: str = typer.Argument(..., help="Checkpoint directory or built-in name."),
    target: str = typer.Option(..., help="Target name or profile .toml path."),
    out: Path = typer.Option(..., help="Output directory for the artifact."),
    scheme: Optional[str] = typer.Option(None, help="Scheme; default: the target's own."),
    dataset: str = typer.Option("rt-polarity", help="Calibration (train) and dev data."),
    text_col: Optional[str] = TEXT_COL, label_col: Optional[str] = LABEL_COL,
    split_col: Optional[str] = SPLIT_COL,
    label_map: Optional[str] = typer.Option(None, help=LABEL_MAP_HELP),
    calib_samples: Optional[int] = typer.Option(None, help="Calibration sentences (default: "
                                                           "the target's)."),
    calib_method: Optional[str] = typer.Option(None, help="minmax | entropy | percentile."),
    max_drop: Optional[str] = typer.Option(None, help="Max dev accuracy drop: points (1.0) or "
                                                      "relative ('2%'); keeps layers in float."),
    dev_samples: Optional[int] = typer.Option(None, help="Cap on dev sentences for --max-drop."),
    seed: int = typer.Option(0),
    force: bool = typer.Option(False, help="Replace an existing, different artifact at --out."),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON."),
) -> None:
    """Quantize for a target (calibrated, verified), with fallback, blame and preflight."""
    from edgecompress.compress.config import build, flag
    from edgecompress.compress.quantize.stage import (QuantizeConfig, QuantizeRequest,
                                                      run_quantize, summary_lines)

    relative = bool(max_drop and max_drop.strip().endswith("%"))
    try:
        drop = None if max_drop is None else float(max_drop.strip().rstrip("%"))
    except ValueError:
        raise UserError(f"--max-drop: expected points (1.0) or a percentage ('2%'), got "
                        f"{max_drop!r}") from None
    flags = {"calibration_samples": "--calib-samples", "calibration_method": "--calib-method"}
    values = dict(target=target, scheme=scheme, calibration_samples=calib_samples,
                  calibration_method=calib_method, seed=seed, relative=relative,
                  max_drop=None if drop is None else drop / (100 if relative else 1),
                  dev_samples=dev_samples)
    config = build(QuantizeConfig, values, lambda f: flags.get(f, flag(f)))
    from edgecompress.compress.data.labels import parse_label_map

    manifest = run_quantize(QuantizeRequest(
        model=model, out=out, config=config, dataset=dataset, force=force, text_col=text_col,
        label_col=label_col, split_col=split_col,
        label_map=parse_label_map(label_map) if label_map else ()))
    emit(manifest, as_json, summary_lines)


@guarded
def export(
    model: str = typer.Argument(..., help="Checkpoint directory or built-in name."),
    target: str = typer.Option(..., help="Target name or profile .toml path."),
    out: Path = typer.Option(..., help="Output directory for the artifact."),
    scheme: Optional[str] = typer.Option(None, help="Scheme; default: the target's own."),
    dataset: str = typer.Option("rt-polarity", help="Calibration and gate sentences (int8)."),
    text_col: Optional[str] = TEXT_COL, label_col: Optional[str] = LABEL_COL,
    split_col: Optional[str] = SPLIT_COL,
    force: bool = typer.Option(False, help="Replace an existing, different export at --out."),
) -> None:
    """Export to the target's format, verify parity against torch, keep only if it passes."""
    from edgecompress.compress.evaluation.artifacts import difference_words, parity_words
    from edgecompress.compress.pipeline.commands import export_model

    manifest = export_model(model, target, out, scheme=scheme, dataset=dataset, force=force,
                            text_col=text_col, label_col=label_col, split_col=split_col)
    parity = manifest["parity"]
    console.print(f"{manifest['target']}: {out / manifest['artifact']} "
                  f"({manifest['size_bytes'] / 1e6:.1f} MB), parity {difference_words(parity)}, "
                  f"{parity_words(parity)}")
