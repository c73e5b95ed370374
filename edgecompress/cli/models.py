"""The model commands: inspect, init-encoder, eval and bench."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from edgecompress.cli.common import (LABEL_COL, LABEL_MAP_HELP, SPLIT_COL, TEXT_COL, console, guarded,
                                     print_json)


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
