"""`edgecompress llm ...`: decoder-only language models — list, inspect, eval, prune.

MODEL is a registry name (`smollm2-135m`), a .gguf file (converted once into a cached
safetensors checkpoint) or a checkpoint directory. Every check that needs no weights (family,
GGUF architecture, tokenizer match, prompt length, text length, cut sizes, output directory)
runs before any weight loads.
"""

from __future__ import annotations

from pathlib import Path

import typer

from edgecompress.cli.common import console, err_console, guarded, print_json

llm_app = typer.Typer(help="Decoder-only language models: inspect, eval (perplexity, KL, "
                           "top-1), prune (layers, GQA heads, FFN).", no_args_is_help=True)

MODEL = typer.Argument(..., help="Registry name (see `llm list`), .gguf file or checkpoint dir.")
JSON = typer.Option(False, "--json", help="Print one JSON object.")


def _texts(dataset: str, split: str) -> tuple[str, ...]:
    from edgecompress.compress.data.datasets import load_dataset
    from edgecompress.errors import UserError

    data = load_dataset(dataset)
    if data.modality != "text":
        raise UserError(f"dataset {data.name} holds images, not text")
    return data.split(split).texts


def _config(cls, **values):
    from edgecompress.compress.config import build, flag

    return build(cls, values, flag)


def _note(message: str) -> None:
    err_console.print(message, markup=False)


@llm_app.command("list")
@guarded
def list_command(as_json: bool = JSON) -> None:
    """The registry models (fetched with pip from pinned wheels, sha256-checked)."""
    from edgecompress.compress.llm.sources import MODEL_SOURCES

    rows = [{"name": s.name, "source": f"{s.requirement} wheel: {s.member}",
             "license": s.license, "description": s.description}
            for s in MODEL_SOURCES.values()]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        console.print(f"{row['name']}: {row['description']} ({row['source']}, {row['license']})",
                      markup=False)


@llm_app.command("inspect")
@guarded
def inspect_command(model: str = MODEL, as_json: bool = JSON) -> None:
    """Family, layers, query / KV heads, head dim, hidden, FFN, vocabulary, context,
    parameters, tied embeddings."""
    from edgecompress.compress.llm.load import inspect_lm, load_lm

    info = inspect_lm(load_lm(model))
    if as_json:
        print_json(info)
        return
    for key, value in info.items():
        console.print(f"{key}: {value}", markup=False)


def _print_eval(result: dict) -> None:
    def ci(key):
        low, high = result[f"{key}_ci"]
        return f"[{low:.4g}, {high:.4g}]"

    console.print(f"{result['windows']} windows, {result['tokens']} tokens scored "
                  f"({result['interval']})", markup=False)
    console.print(f"perplexity {result['perplexity']:.3f} {ci('perplexity')}", markup=False)
    if "kl" in result:
        console.print(f"reference perplexity {result['reference_perplexity']:.3f} "
                      f"{ci('reference_perplexity')}; ratio {result['perplexity_ratio']:.4f} "
                      f"{ci('perplexity_ratio')}", markup=False)
        console.print(f"KL(reference || model) {result['kl']:.5f} {ci('kl')}; top-1 agreement "
                      f"{result['top1_agreement']:.4f} {ci('top1_agreement')}", markup=False)
    for row in result.get("continuations", ()):
        line = f"> {row['prompt']}|{row['text']}"
        if "reference_text" in row:
            line += (f"\n  reference: |{row['reference_text']} (same first "
                     f"{row['same_prefix']} of {row['new_tokens']} tokens)")
        console.print(line, markup=False)


@llm_app.command("eval")
@guarded
def eval_command(
    model: str = MODEL,
    reference: str | None = typer.Option(None, help="Model to compare with (KL, top-1, "
                                                       "perplexity ratio); same tokenizer."),
    dataset: str = typer.Option("bbc-news", help="Text: registry dataset or .csv/.jsonl."),
    split: str = typer.Option("test", help="Split of the dataset (bbc-news: test is held out)."),
    context: int = typer.Option(512, help="Tokens per window, BOS included."),
    stride: int = typer.Option(256, help="New tokens scored per window after the first."),
    windows: int = typer.Option(32, help="Windows scored (fixed, so runs compare)."),
    max_new_tokens: int = typer.Option(24, help="Greedy tokens per prompt (0: none)."),
    prompt: list[str] | None = typer.Option(None, help="Prompt to continue (repeatable; "
                                                          "default: three fixed prompts)."),
    resamples: int = typer.Option(1000, help="Bootstrap resamples for the intervals."),
    seed: int = typer.Option(0, help="Bootstrap seed."),
    as_json: bool = JSON,
) -> None:
    """Perplexity on held-out text at a fixed context and stride; with --reference, mean KL
    divergence and top-1 agreement of next-token distributions on the same tokens; greedy
    continuations. Intervals: percentile bootstrap over windows."""
    from edgecompress.compress.llm.families import shape_of
    from edgecompress.compress.llm.load import (
        LoadedLM,
        load_tokenizer,
        load_weights,
        read_lm_config,
        resolve_lm,
    )
    from edgecompress.compress.llm.metrics import (
        PROMPTS,
        EvalConfig,
        check_prompts,
        check_same_tokenizer,
        evaluate_lm,
        token_windows,
    )

    config = _config(EvalConfig, context=context, stride=stride, windows=windows,
                     max_new_tokens=max_new_tokens, resamples=resamples, seed=seed)
    prompts = tuple(prompt) if prompt else PROMPTS
    path = resolve_lm(model)
    tokenizer = load_tokenizer(path)
    shape = shape_of(read_lm_config(path))
    if config.context > shape.context:
        raise _context_error(config.context, shape.context)
    ref_path = resolve_lm(reference) if reference else None
    if ref_path is not None:
        check_same_tokenizer(tokenizer, load_tokenizer(ref_path), (model, reference))
    check_prompts(tokenizer, prompts if config.max_new_tokens else (), shape.context,
                  config.max_new_tokens)
    token_win = token_windows(tokenizer, _texts(dataset, split), config)
    _note(f"scoring {config.windows} windows of {config.context} tokens of {dataset} {split}")
    loaded = LoadedLM(load_weights(path), tokenizer, path, model)
    ref_model = load_weights(ref_path) if ref_path is not None else None
    result = {"model": model, "reference": reference, "dataset": dataset, "split": split,
              **evaluate_lm(loaded.model, tokenizer, token_win, config, reference=ref_model,
                            prompts=prompts)}
    if as_json:
        print_json(result)
    else:
        _print_eval(result)


def _context_error(asked: int, context: int):
    from edgecompress.errors import UserError

    return UserError(f"--context {asked} exceeds the model's context of {context} tokens")


def _parse_layers(text: str | None) -> tuple[int, ...] | None:
    from edgecompress.errors import UserError

    if text is None:
        return None
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UserError(f"--keep-layers expects comma-separated layer numbers, got {text!r}") \
            from None


@llm_app.command("prune")
@guarded
def prune_command(
    model: str = MODEL,
    out: Path = typer.Option(..., help="Directory for the pruned checkpoint."),
    layers: int = typer.Option(0, help="Decoder layers to drop, chosen by angular distance."),
    keep_layers: str | None = typer.Option(None, help="Keep exactly these layers, e.g. "
                                                         "0,1,2,5 (instead of --layers)."),
    layer_method: str = typer.Option("each", help="each: the layers whose output is closest to "
                                                  "their input (ShortGPT); block: the closest "
                                                  "contiguous block (Gromov et al.)."),
    kv_heads: int = typer.Option(0, help="KV heads removed per layer, with their query heads."),
    query_heads: int = typer.Option(0, help="Query heads removed from every KV group."),
    ffn: int = typer.Option(0, help="FFN neurons removed per layer."),
    dataset: str = typer.Option("bbc-news", help="Calibration text: dataset name or file."),
    split: str = typer.Option("train", help="Split of the calibration dataset."),
    samples: int = typer.Option(32, help="Calibration texts."),
    max_length: int = typer.Option(256, help="Tokens per calibration text."),
    seed: int = typer.Option(0),
    force: bool = typer.Option(False, "--force", help="Replace --out if edgecompress made it."),
    as_json: bool = JSON,
) -> None:
    """Remove decoder layers, attention heads (GQA-aware) and FFN neurons, scored on
    calibration text; writes a checkpoint the plain transformers class reloads, plus
    prune_report.json."""
    from edgecompress.compress.llm.families import shape_of
    from edgecompress.compress.llm.load import (
        LoadedLM,
        load_tokenizer,
        load_weights,
        read_lm_config,
        resolve_lm,
        save_lm,
    )
    from edgecompress.compress.llm.prune import LMPruneConfig, prune_lm
    from edgecompress.fsutil import atomic_directory, atomic_write_json, check_replaceable

    config = _config(LMPruneConfig, layers=layers, keep_layers=_parse_layers(keep_layers),
                     layer_method=layer_method, kv_heads=kv_heads, query_heads=query_heads,
                     ffn=ffn, samples=samples, max_length=max_length, seed=seed)
    check_replaceable(out, force)
    path = resolve_lm(model)
    _check_cuts(config, shape_of(read_lm_config(path)))
    texts = _texts(dataset, split) if config.needs_scores else ()
    tokenizer = load_tokenizer(path)
    loaded = LoadedLM(load_weights(path), tokenizer, path, model)
    report = {"model": model, "dataset": dataset, "split": split,
              **prune_lm(loaded.model, tokenizer, texts, config)}
    with atomic_directory(out) as tmp:
        save_lm(loaded, tmp)
        atomic_write_json(tmp / "prune_report.json", report)
    if as_json:
        print_json(report)
        return
    before, after = report["before"], report["after"]
    console.print(f"{model}: layers {before['layers']} -> {after['layers']} (kept "
                  f"{report['layers_kept']}), heads {before['heads']}/{before['kv_heads']} -> "
                  f"{after['heads']}/{after['kv_heads']}, FFN {before['ffn']} -> {after['ffn']}, "
                  f"params {report['params_before']:,} -> {report['params_after']:,}; written to "
                  f"{out}", markup=False)


def _check_cuts(config, shape) -> None:
    from edgecompress.compress.config import FieldError, flag
    from edgecompress.errors import UserError

    try:
        config.check_model(shape)
    except FieldError as err:
        raise UserError(f"{flag(err.field)}: {err.message}") from None
