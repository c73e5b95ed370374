"""The door: a thin typer app. Commands parse, load, call the library and print.

Heavy imports (torch, transformers, onnxruntime, litert) happen inside commands so that
`edgecompress --help` answers at once. A user mistake prints one line and exits 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgecompress.cli_common import (LABEL_COL, SPLIT_COL, TEXT_COL, console, emit, guarded,
                                     print_json)
from edgecompress.cli_catalog import data_app, targets_app
from edgecompress.cli_deliver import bundle_app, report_app
from edgecompress.cli_search import search_command
from edgecompress.cli_vision import init_vit_command
from edgecompress.errors import UserError

LABEL_MAP_HELP = ("Dataset label -> model label, matched by name, e.g. "
                  "fresh=positive,rotten=negative.")

app = typer.Typer(help="Prune, quantize, distill and export trained Transformers for edge "
                       "devices — verified, benchmarked, reported.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(data_app, name="data")
app.add_typer(targets_app, name="targets")
app.add_typer(report_app, name="report")
app.add_typer(bundle_app, name="bundle")
app.command("search")(search_command)
app.command("init-vit")(init_vit_command)


# --- model commands ---------------------------------------------------------------------------

@app.command()
@guarded
def inspect(model: str = typer.Argument(..., help="Checkpoint directory or built-in name."),
            as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Architecture and family, per-layer heads / FFN width, parameters, file size, and which
    stages and targets apply."""
    from edgecompress.compress.models.inspection import inspect_model
    from edgecompress.compress.models.loading import load_model
    from edgecompress.compress.quantize.integer import target_applicability

    loaded = load_model(model)
    info = {**inspect_model(loaded).to_json(), "targets": target_applicability(loaded)}
    if as_json:
        print_json(info)
        return
    from edgecompress.reports.render import print_model_info

    print_model_info(console, info)


@app.command("init-encoder")
@guarded
def init_encoder(
    out: Path = typer.Argument(..., help="Directory to create."),
    tokenizer: str = typer.Option("minilm-l6", help="Checkpoint whose tokenizer it pairs with."),
    d_model: int = typer.Option(256), heads: int = typer.Option(8), ffn: int = typer.Option(1024),
    layers: int = typer.Option(4), max_len: int = typer.Option(256),
    num_labels: int = typer.Option(2), seed: int = typer.Option(0),
) -> None:
    """Create a randomly initialised plain-PyTorch encoder classifier (train it with finetune)."""
    from edgecompress.compress.models.loading import create_plain_encoder

    create_plain_encoder(out, tokenizer_from=tokenizer, d_model=d_model, n_heads=heads, ffn=ffn,
                         n_layers=layers, max_len=max_len, num_labels=num_labels, seed=seed)
    console.print(f"plain encoder written to {out}")


@app.command()
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
        from edgecompress.cli_config import explicit_options, stage_config_from

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


@app.command()
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
        from edgecompress.cli_config import explicit_options, stage_config_from
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


@app.command()
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
        from edgecompress.cli_config import distill_request_from, explicit_options

        request = distill_request_from(config, explicit_options(distill, options), **options)
    request = dataclasses.replace(request, text_col=text_col, label_col=label_col,
                                  split_col=split_col,
                                  label_map=parse_label_map(label_map) if label_map else ())
    from edgecompress.compress.distill.distributed import World

    manifest = run_distill(request, None if as_json else console)
    if World.launched_main():  # under torchrun, rank 0 speaks for all
        emit(manifest, as_json, summary_lines)


@app.command("eval")
@guarded
def eval_command(
    model: str = typer.Argument(..., help="Checkpoint dir, built-in name, or artifact file."),
    dataset: str = typer.Option(..., help="Dataset name or CSV/JSONL path."),
    split: Optional[str] = typer.Option(None, help="Default: test; a file without a 'split' "
                                                   "column is evaluated whole."),
    reference: Optional[str] = typer.Option(None, help="Model whose predictions to agree with."),
    tokenizer: Optional[Path] = typer.Option(None, help="Tokenizer dir for a bare artifact."),
    threads: int = typer.Option(1), max_length: int = typer.Option(128),
    text_col: Optional[str] = TEXT_COL, label_col: Optional[str] = LABEL_COL,
    split_col: Optional[str] = SPLIT_COL,
    label_map: Optional[str] = typer.Option(None, help=LABEL_MAP_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Accuracy with a 95 % Wilson CI, macro-F1, agreement; Spearman/Pearson for similarity."""
    from edgecompress.compress.data.labels import parse_label_map
    from edgecompress.compress.pipeline.commands import evaluate_spec

    result = evaluate_spec(model, dataset, split=split, reference=reference, tokenizer=tokenizer,
                           threads=threads, max_length=max_length, text_col=text_col,
                           label_col=label_col, split_col=split_col,
                           label_map=parse_label_map(label_map) if label_map else ())
    if as_json:
        print_json(result)
        return
    from edgecompress.reports.render import print_eval

    print_eval(console, result)


# --- export / bench / report / demo -----------------------------------------------------------

@app.command()
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


@app.command()
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


@app.command()
@guarded
def bench(
    artifact: Path = typer.Argument(..., help=".onnx, .tflite or .pte artifact."),
    target: str = typer.Option(..., help="Target whose runtime, threads and shape to use."),
    runs: int = typer.Option(100), warmup: int = typer.Option(10),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Latency p50/p90/p99, throughput, size, gzip size, peak RSS — in a separate process."""
    from edgecompress.compress.pipeline.commands import bench_artifact

    result = bench_artifact(artifact, target, runs=runs, warmup=warmup)
    if as_json:
        print_json(result)
        return
    from edgecompress.reports.render import print_bench

    print_bench(console, result)


@app.command("run")
@guarded
def run_command(
    recipe: Path = typer.Argument(..., help="Recipe TOML (see recipes/)."),
    out: Optional[Path] = typer.Option(None, help="Run directory (default runs/<recipe>-<time>)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and what is cached."),
    force: bool = typer.Option(False, help="Replace a different run at --out."),
) -> None:
    """Run a recipe: stages (finetune, prune, distill), export per target, eval, bench, report."""
    import time

    from edgecompress.compress.pipeline.checks import validate_inputs
    from edgecompress.compress.pipeline.recipe import load_recipe
    from edgecompress.compress.pipeline.runs import plan_lines, run_recipe

    plan = load_recipe(recipe)
    out = out or Path("runs") / f"{plan.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    from edgecompress.compress.models.modules import check_out_location

    check_out_location(out)
    checked = validate_inputs(plan, fetch=not dry_run)  # before run.json is written
    if dry_run:
        for line in checked + plan_lines(plan, out):
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        return
    report_md = run_recipe(plan, out, console, force=force)
    console.print(f"\nreport: {report_md} (and .html, .csv, .json beside it)")


@app.command()
@guarded
def demo(
    out: Path = typer.Option(Path("demo-run"), help="Run directory."),
    force: bool = typer.Option(False, help="Replace a different run at --out."),
    runs: Optional[int] = typer.Option(None, min=1, help="Timed runs per benchmark."),
) -> None:
    """`edgecompress run recipes/demo.toml`: minilm-l6 + rt-polarity on every target."""
    from edgecompress.compress.models.modules import check_out_location
    from edgecompress.compress.pipeline.demo import run_demo

    check_out_location(out)
    report_md = run_demo(out, console, force=force, bench_runs=runs)
    console.print(f"\nreport: {report_md} (and .html, .csv, .json beside it)")


if __name__ == "__main__":
    app()
