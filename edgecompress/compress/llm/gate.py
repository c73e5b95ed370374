"""The verification gate of an exported LLM artifact: its session against the torch reference's
(compress/llm/reference.py) on the same held-out windows — mean KL(reference || artifact) of the
next-token distributions and top-1 agreement, each with its bootstrap interval over windows
(metrics.py's math, one definition) — plus the greedy tokens of a few fixed prompts from both,
recorded side by side. It passes when the point estimates meet the target's thresholds
(kl <= kl_max and top1 >= top1_min); the intervals say how firm that is.
"""

from __future__ import annotations

from dataclasses import replace

from edgecompress.compress.llm.config import EvalConfig
from edgecompress.compress.llm.metrics import (
    WindowScores,
    log_softmax,
    score_log_probs,
    summarize,
)
from edgecompress.errors import ParityError


def score_sessions(session, reference, windows) -> WindowScores:
    """Per-window NLL / KL / top-1 sums of `session` against `reference` (two LMSessions) on
    `windows` (metrics.token_windows)."""
    def log_probs(lm):
        return lambda input_ids, scored: log_softmax(
            lm.logits(input_ids[0].tolist())[-scored - 1:-1])  # (scored, vocab)

    return score_log_probs(log_probs(session), windows, log_probs(reference))


def compare_greedy(session, reference, prompts: dict[str, list[int]], new_tokens: int,
                   decode) -> list[dict]:
    """Greedy tokens of both sessions per prompt ({text: ids}), with `same_prefix`: how many
    leading new tokens agree. `decode(ids) -> str` renders them."""
    rows = []
    for prompt, ids in prompts.items():
        got = session.generate(ids, new_tokens).tokens
        ref = reference.generate(ids, new_tokens).tokens
        same = next((i for i, (a, b) in enumerate(zip(got, ref)) if a != b), len(got))
        rows.append({"prompt": prompt, "tokens": got, "reference_tokens": ref,
                     "text": decode(got), "reference_text": decode(ref),
                     "same_prefix": same, "new_tokens": new_tokens})
    return rows


def gate_lm(session, reference, windows, gate, *, prompts: dict[str, list[int]],
            decode, resamples: int = 1000, seed: int = 0) -> dict:
    """Score `session` against `reference` on `windows` and judge it by `gate` (an LLMGate).

    Returns the record: passed, thresholds, summarize()'s keys (perplexity, kl, top1_agreement
    and their intervals...) and `greedy` (compare_greedy's rows). Never raises on a failure:
    `require_pass` does.
    """
    config = replace(gate_window_config(gate), resamples=resamples, seed=seed)
    summary = summarize(score_sessions(session, reference, windows), config)
    passed = summary["kl"] <= gate.kl_max and summary["top1_agreement"] >= gate.top1_min
    record = {"passed": bool(passed), "kl_max": gate.kl_max, "top1_min": gate.top1_min,
              "reference": reference.format, "runtime": session.format, **summary}
    if gate.new_tokens:
        record["greedy"] = compare_greedy(session, reference, prompts, gate.new_tokens, decode)
    return record


def evaluate_session(session, reference, windows, config: EvalConfig, *,
                     prompts: dict[str, list[int]], decode) -> dict:
    """`llm eval` of an exported artifact: summarize()'s keys for `session` against `reference`
    (two LMSessions) on `windows`, and `continuations` (compare_greedy's rows, config's
    max_new_tokens each) — the numbers the gate judges, at the eval's windows."""
    result = {"config": config.to_json(),
              **summarize(score_sessions(session, reference, windows), config)}
    if config.max_new_tokens and prompts:
        result["continuations"] = compare_greedy(session, reference, prompts,
                                                 config.max_new_tokens, decode)
    return result


def gate_window_config(gate) -> EvalConfig:
    """The windows the gate scores: `gate.windows` of `gate.context` tokens at half-context
    stride (metrics.token_windows takes it)."""
    return EvalConfig(context=gate.context, stride=max(1, gate.context // 2),
                      windows=gate.windows, max_new_tokens=gate.new_tokens)


def require_pass(record: dict, artifact: str) -> None:
    """ParityError naming the metric that failed when the gate record did not pass."""
    if record["passed"]:
        return
    detail = (f"mean KL {record['kl']:.4f} (max {record['kl_max']:g}), top-1 agreement "
              f"{record['top1_agreement']:.4f} (min {record['top1_min']:g}) against the torch "
              f"reference on {record['tokens']} held-out tokens")
    raise ParityError(artifact, {"kl": record["kl"], "top1_agreement": record["top1_agreement"]},
                      record["kl_max"], detail)
