"""The model commands: inspect, init-encoder, eval and bench."""

from __future__ import annotations

from pathlib import Path

import typer

from edgecompress.cli.common import LABEL_COL, LABEL_MAP_HELP, SPLIT_COL, TEXT_COL, console, guarded
from edgecompress.cli.flags import in_flags
from edgecompress.cli.output import emit_result, json_mode
from edgecompress.errors import UserError


@guarded
def inspect(model: str = typer.Argument(..., help="Checkpoint directory or built-in name."),
            as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """Architecture and family, per-layer heads / FFN width, parameters, file size, and which
    stages and targets apply."""
    from edgecompress.compress.models.inspection import inspect_model
    from edgecompress.compress.models.loading import load_model
    from edgecompress.compress.quantize.integer import target_applicability

    with json_mode(as_json):
        loaded = load_model(model)
        info = {**inspect_model(loaded).to_json(), "targets": target_applicability(loaded)}
    emit_result(info, as_json, _print_model_info)


def _print_model_info(info: dict) -> None:
    from edgecompress.reports.render import print_model_info

    print_model_info(console, info)


TOKENIZER_HELP = ("Checkpoint directory or built-in name (minilm-l6) whose tokenizer is used; "
                  "any directory holding a tokenizer works, e.g. an exported artifact's folder.")

# init-encoder's sizes are counts (prune's --heads / --ffn / --layers are fractions to remove)
INIT_ENCODER_RENAMES = {"--d-model": "--hidden-size", "--heads": "--num-heads",
                        "--ffn": "--ffn-size", "--layers": "--num-layers",
                        "--max-len": "--max-positions"}
_ENCODER_FLAGS = {"d_model": "--hidden-size", "heads": "--num-heads", "ffn": "--ffn-size",
                  "layers": "--num-layers", "max_len": "--max-positions",
                  "num_labels": "--num-labels"}


@guarded
def init_encoder(
    out: Path = typer.Argument(..., help="Directory to create."),
    tokenizer: str = typer.Option("minilm-l6", help=TOKENIZER_HELP),
    hidden_size: int = typer.Option(256, help="Hidden size (width of every layer)."),
    num_heads: int = typer.Option(8, help="Attention heads per layer; divides --hidden-size."),
    ffn_size: int = typer.Option(1024, help="FFN (intermediate) width per layer."),
    num_layers: int = typer.Option(4, help="Encoder layers."),
    max_positions: int = typer.Option(256, help="Longest input in tokens (position table)."),
    num_labels: int = typer.Option(2, help="Classes of the classification head."),
    seed: int = typer.Option(0, help="Initialisation seed."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object: the new "
                                 "model's path, tokenizer source and shape (inspect's fields, "
                                 "without targets)."),
) -> None:
    """Create a randomly initialised plain-PyTorch encoder classifier (train it with finetune).

    Old names still accepted: --d-model, --heads, --ffn, --layers, --max-len."""
    from edgecompress.compress.models.encoder import EncoderConfig
    from edgecompress.compress.models.inspection import inspect_model
    from edgecompress.compress.models.loading import create_plain_encoder
    from edgecompress.compress.models.modules import resolve_tokenizer_source

    shape = dict(d_model=hidden_size, n_heads=num_heads, ffn=ffn_size, n_layers=num_layers,
                 max_len=max_positions, num_labels=num_labels)
    try:
        EncoderConfig.uniform(1, **shape)  # the shape, in flags, before any file is read
    except ValueError as err:
        raise UserError(f"invalid encoder shape: {in_flags(str(err), _ENCODER_FLAGS)}") from None
    source = resolve_tokenizer_source(tokenizer)
    with json_mode(as_json):
        loaded = create_plain_encoder(out, tokenizer_from=str(source), **shape, seed=seed)
        info = {"out": str(out), "tokenizer": str(source), **inspect_model(loaded).to_json()}
    emit_result(info, as_json, lambda _: console.print(f"plain encoder written to {out}",
                                                       markup=False, highlight=False))


@guarded
def eval_command(
    model: str = typer.Argument(..., help="Checkpoint dir, built-in name, or artifact file."),
    dataset: str = typer.Option(..., help="Dataset name or CSV/JSONL path."),
    split: str | None = typer.Option(None, help="Default: test; a file without a 'split' "
                                     "column is evaluated whole."),
    reference: str | None = typer.Option(None, help="Model whose predictions to agree with."),
    tokenizer: str | None = typer.Option(None, help=TOKENIZER_HELP + " Default: the "
                                         "model's own (an artifact: its folder)."),
    threads: int = typer.Option(1, help="Runtime threads."),
    max_length: int = typer.Option(128, help="Tokens per input (longer ones are cut; the "
                                   "result says how many were)."),
    text_col: str | None = TEXT_COL, label_col: str | None = LABEL_COL,
    split_col: str | None = SPLIT_COL,
    label_map: str | None = typer.Option(None, help=LABEL_MAP_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Accuracy with a 95 % Wilson CI, macro-F1, per-class recall / precision / F1 and the
    confusion matrix, agreement; Spearman/Pearson for similarity. The model runs as deployed:
    one input at a time at its real length, a fixed-shape artifact at its signature."""
    from edgecompress.compress.data.labels import parse_label_map
    from edgecompress.compress.models.modules import resolve_tokenizer_source
    from edgecompress.compress.pipeline.commands import evaluate_spec
    from edgecompress.reports.render import print_eval

    source = resolve_tokenizer_source(tokenizer) if tokenizer is not None else None
    with json_mode(as_json):
        result = evaluate_spec(model, dataset, split=split, reference=reference,
                               tokenizer=source, threads=threads, max_length=max_length,
                               text_col=text_col, label_col=label_col, split_col=split_col,
                               label_map=parse_label_map(label_map) if label_map else ())
    emit_result(result, as_json, lambda r: print_eval(console, r))


@guarded
def bench(
    artifact: Path = typer.Argument(..., help=".onnx, .tflite or .pte artifact."),
    target: str = typer.Option(..., help="Target whose runtime, threads and shape to use."),
    runs: int = typer.Option(100, help="Timed runs."),
    warmup: int = typer.Option(10, help="Untimed runs first."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Latency p50/p90/p99, throughput, size, gzip size, peak RSS — in a separate process."""
    from edgecompress.compress.pipeline.commands import bench_artifact
    from edgecompress.reports.render import print_bench

    with json_mode(as_json):
        result = bench_artifact(artifact, target, runs=runs, warmup=warmup)
    emit_result(result, as_json, lambda r: print_bench(console, r))
