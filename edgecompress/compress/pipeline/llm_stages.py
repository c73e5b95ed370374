"""The stages of an LLM recipe's plan (llm_plan.py), registered in the same stage table as the
encoder stages and run by the same loop: prune and distill write a checkpoint into their step
folder; export, eval and bench write artifacts/<target>/ (the artifact under model/, its
manifest.json and llm_export.json, eval.json, bench.json). Each calls the library function its
`edgecompress llm` command calls, so a recipe step and the command measure the same thing.
"""

from __future__ import annotations

from pathlib import Path

from edgecompress.compress.pipeline.llm_plan import EVAL_SPLIT, TRAIN_SPLIT
from edgecompress.compress.pipeline.stages import Context, StageOutput, stage
from edgecompress.rundir import BENCH_FILE, CHECKPOINT_DIR, EVAL_FILE, MANIFEST_FILE

ARTIFACT_DIR = "model"  # artifacts/<target>/model/: the artifact alone, so its digest is its own


def _profile_digest(config) -> dict[str, str]:
    from edgecompress.compress.identity import profile_digest
    from edgecompress.targets.llm.profile import load_llm_profile

    profile = load_llm_profile(config.target)
    if getattr(config, "scheme", profile.scheme) != profile.scheme:
        profile = profile.with_scheme(config.scheme)
    return {"profile": profile_digest(profile)}


@stage("llm-prune", reads_data=True)
def llm_prune_stage(inputs, config, ctx: Context) -> StageOutput:
    """`llm prune`: layers / heads / FFN neurons cut, scored on the dataset's train split."""
    from edgecompress.compress.llm.prune import prune_checkpoint
    from edgecompress.compress.llm.sources import dataset_texts

    texts = dataset_texts(ctx.data.spec, TRAIN_SPLIT) if config.needs_scores else ()
    out = ctx.stage_dir / CHECKPOINT_DIR
    report = prune_checkpoint(str(inputs["model"]), texts, config, out,
                              dataset=ctx.data.spec if config.needs_scores else None,
                              split=TRAIN_SPLIT)
    keep = ("params_before", "params_after", "layers_kept", "before", "after")
    return StageOutput(out, {k: report[k] for k in keep if k in report})


@stage("llm-distill", reads_data=True)
def llm_distill_stage(inputs, config, ctx: Context) -> StageOutput:
    """`llm distill`: the student learns the teacher's next-token distributions on the train
    split (which must share no text with the held-out splits); a killed run resumes from its
    progress folder beside the checkpoint."""
    import time

    from edgecompress.compress.llm.distill import distill_checkpoint, distill_pair, distill_text
    from edgecompress.compress.llm.load import LoadedLM, load_weights, parameter_count
    from edgecompress.compress.llm.sources import source_model

    student, teacher = str(inputs["student"]), str(inputs["teacher"])
    pair = distill_pair(student, teacher, config)
    sequences, held_out = distill_text(ctx.data.spec, TRAIN_SPLIT, pair["tokenizer"], config)
    loaded = LoadedLM(load_weights(pair["path"]), pair["tokenizer"], pair["path"], student)
    began, every = time.perf_counter(), max(1, config.steps // 8)

    def on_step(step: int, steps: int, row: dict) -> None:
        if ctx.console is not None and (step % every == 0 or step == steps):
            ctx.console.print(f"  step {step}/{steps}: loss {row.get('loss', float('nan')):.4f} "
                              f"({time.perf_counter() - began:.0f} s)", markup=False,
                              highlight=False)

    record = {"stage": "llm-distill", "student": student, "teacher": teacher,
              "source": source_model(student), "dataset": ctx.data.spec, "split": TRAIN_SPLIT,
              "held_out_splits": held_out, "layers_kept": pair["kept"],
              "params": parameter_count(loaded.model)}
    out = ctx.stage_dir / CHECKPOINT_DIR
    report = distill_checkpoint(loaded, load_weights(pair["teacher_path"]), sequences, config,
                                out, identity=ctx.ident, pairs=pair["pairs"], record=record,
                                on_step=on_step)
    keep = ("steps_done", "steps", "tokens_seen", "first_loss", "final_loss", "seconds",
            "stopped")
    return StageOutput(out, {k: report[k] for k in keep if k in report})


@stage("llm-export", reads_data=True, reads=_profile_digest)
def llm_export_stage(inputs, config, ctx: Context) -> StageOutput:
    """`llm export`: convert for the target and gate the artifact against its own torch
    checkpoint on the held-out split; a failed gate raises ParityError (the run refuses the
    target). The output is the artifact (a folder or a .gguf file under model/)."""
    import shutil

    from edgecompress.compress.llm.export import RECORD, export_lm
    from edgecompress.compress.llm.gate import gate_window_config, require_pass
    from edgecompress.compress.llm.load import load_tokenizer, resolve_lm
    from edgecompress.compress.llm.metrics import PROMPTS, check_prompts, token_windows
    from edgecompress.compress.llm.sources import dataset_texts, source_model
    from edgecompress.fsutil import atomic_directory, atomic_write_json, mark_output
    from edgecompress.targets.extras import require
    from edgecompress.targets.llm.profile import load_llm_profile

    folder = ctx.stage_dir
    if folder.exists():
        shutil.rmtree(folder)  # the run loop found it not done: made from another input or config
    profile = load_llm_profile(config.target).with_scheme(config.scheme)
    model = str(inputs["model"])
    path = resolve_lm(model)
    tokenizer = load_tokenizer(path)
    require(profile.format, f"target {profile.name}")
    check_prompts(tokenizer, PROMPTS if profile.gate_new_tokens else (), profile.gate_context,
                  profile.gate_new_tokens)
    prompts = {p: tokenizer(p)["input_ids"] for p in PROMPTS} if profile.gate_new_tokens else {}
    windows = token_windows(tokenizer, dataset_texts(ctx.data.spec, EVAL_SPLIT),
                            gate_window_config(profile.gate))
    vocab_from = inputs.get("vocab_from")  # the plan names it for GGUF targets
    with atomic_directory(folder / ARTIFACT_DIR) as tmp:
        record = {"model": model, "source": source_model(model), "dataset": ctx.data.spec,
                  "split": EVAL_SPLIT, **export_lm(path, tokenizer, profile, tmp,
                                                   windows=windows, prompts=prompts,
                                                   vocab_from=vocab_from)}
        require_pass(record["gate"], f"{profile.name} artifact")  # a failed gate keeps nothing
    artifact = folder / ARTIFACT_DIR / ("" if record["artifact"] == "." else record["artifact"])
    atomic_write_json(folder / RECORD, record)
    gate = record["gate"]
    manifest = {"kind": "llm", "target": profile.name, "format": profile.format,
                "scheme": profile.scheme, "runtime": profile.runtime,
                "threads": profile.threads, "artifact": str(artifact.relative_to(folder)),
                "size_bytes": record["size_bytes"], "size_mb": record["size_mb"],
                "within_size_budget": record["within_size_budget"],
                "gate": {k: gate[k] for k in ("passed", "kl", "kl_max", "top1_agreement",
                                             "top1_min", "tokens")}}
    atomic_write_json(folder / MANIFEST_FILE, manifest)
    mark_output(folder / ARTIFACT_DIR, "llm-artifact")
    return StageOutput(artifact, {"size_mb": record["size_mb"], "gate": manifest["gate"]})


@stage("llm-eval", reads_data=True)
def llm_eval_stage(inputs, config, ctx: Context) -> StageOutput:
    """`llm eval`'s numbers for an artifact: perplexity, KL(reference || artifact) and top-1
    agreement on the held-out split with bootstrap intervals over windows (metrics.py's
    definitions), and greedy continuations of the fixed prompts beside the reference's. The
    artifact runs in its own runtime (its LMSession); the reference is the recipe's model in
    fp32 torch."""
    from edgecompress.compress.llm.gate import compare_greedy, score_sessions
    from edgecompress.compress.llm.load import load_tokenizer, load_weights, resolve_lm
    from edgecompress.compress.llm.metrics import PROMPTS, summarize, token_windows
    from edgecompress.compress.llm.reference import TorchSession
    from edgecompress.compress.llm.sources import dataset_texts
    from edgecompress.fsutil import atomic_write_json
    from edgecompress.targets.llm.session import open_session

    artifact, reference = Path(inputs["model"]), str(inputs["reference"])
    ref_path = resolve_lm(reference)
    tokenizer = load_tokenizer(ref_path)
    windows = token_windows(tokenizer, dataset_texts(ctx.data.spec, config.split), config.eval)
    ref = TorchSession(load_weights(ref_path))
    session = open_session(artifact, threads=1)
    try:
        result = summarize(score_sessions(session, ref, windows), config.eval)
        if config.eval.max_new_tokens:
            prompts = {p: tokenizer(p)["input_ids"] for p in PROMPTS}
            result["continuations"] = compare_greedy(
                session, ref, prompts, config.eval.max_new_tokens,
                lambda ids: tokenizer.decode(ids, skip_special_tokens=True))
    finally:
        session.close()
    result = {"reference": reference, "dataset": ctx.data.spec, "split": config.split,
              "config": config.eval.to_json(), **result}
    path = ctx.stage_dir / EVAL_FILE
    atomic_write_json(path, result)
    keep = ("perplexity", "kl", "top1_agreement", "reference_perplexity", "tokens")
    return StageOutput(path, {k: result[k] for k in keep})


@stage("llm-bench", reads_data=False, reads=_profile_digest)
def llm_bench_stage(inputs, config, ctx: Context) -> StageOutput:
    """`llm bench` of one artifact at 1 thread and the target's: TTFT per prompt length, decode
    tokens/s, peak RSS and size, one child process per run, medians, the host recorded."""
    import os

    from edgecompress.fsutil import atomic_write_json
    from edgecompress.targets.llm.bench import bench_llm

    start = os.getloadavg()  # a shared host's load says how far its timings can be trusted
    result = bench_llm([Path(inputs["model"])], threads=config.threads,
                       repeats=config.bench.repeats, prompt_lengths=config.bench.prompt_lengths,
                       new_tokens=config.bench.new_tokens)
    result["load_average"] = {"start": list(start), "end": list(os.getloadavg())}
    path = ctx.stage_dir / BENCH_FILE
    atomic_write_json(path, result)
    return StageOutput(path, {str(row["threads"]): round(row["decode_tok_s"], 2)
                              for row in result["rows"]})
