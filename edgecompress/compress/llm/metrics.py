"""Quality of a decoder on held-out text: perplexity at a fixed context and stride, and — against a
reference model on the same tokens — mean KL divergence and top-1 agreement of the next-token
distributions (llama.cpp's `llama-perplexity --kl-divergence` measures the same two), plus greedy
continuations of a few fixed prompts.

Windows follow the Hugging Face sliding-window recipe: the documents are joined with blank lines
into one token stream; window k covers stream[k * stride : k * stride + span] (span = context, or
context - 1 behind a BOS token when the tokenizer adds one itself) and scores only the tokens no
earlier window scored (all of the first window's, the last `stride` of the others), each with the
full window before it.

Intervals: percentile bootstrap over windows (each resample draws windows with replacement and
recomputes the token-weighted statistic; fixed seed). Windows are the unit because a window's
tokens share their context; scored tokens of different windows are disjoint. With a reference
the same resamples give a paired interval for the perplexity ratio model / reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from edgecompress.compress.llm.config import EvalConfig
from edgecompress.errors import UserError

PROMPTS = ("The capital of France is",
           "Shares in the company fell sharply after",
           "The new phone has a larger screen and")


def leading_tokens(tokenizer) -> list[int]:
    """[BOS] when the tokenizer itself starts every text with it (Llama 3, Gemma), else []
    (GPT-2, Qwen, SmolLM2, whose BOS is the chat turn marker <|im_start|>)."""
    bos = tokenizer.bos_token_id
    return [bos] if bos is not None and tokenizer("a")["input_ids"][:1] == [bos] else []


def token_windows(tokenizer, texts, config: EvalConfig) -> list[tuple[torch.Tensor, int]]:
    """[(input_ids (1, L), scored)]: `config.windows` windows over `texts`; the last `scored`
    tokens of each are predicted. Raises UserError when the text is too short for them."""
    bos = leading_tokens(tokenizer)
    span = config.context - len(bos)  # stream tokens per window
    needed = span + (config.windows - 1) * config.stride
    stream: list[int] = []
    for text in texts:  # tokenize only as much as the windows need
        if stream:
            stream += tokenizer("\n\n", add_special_tokens=False)["input_ids"]
        stream += tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(stream) >= needed:
            break
    if len(stream) < needed:
        raise UserError(f"the text holds {len(stream)} tokens; {config.windows} windows of "
                        f"{config.context} at stride {config.stride} need {needed}")
    windows = []
    for k in range(config.windows):
        chunk = stream[k * config.stride: k * config.stride + span]
        scored = len(chunk) - (0 if bos else 1) if k == 0 else config.stride
        windows.append((torch.tensor([bos + chunk]), scored))
    return windows


@torch.no_grad()
def _log_probs(model, input_ids: torch.Tensor, scored: int) -> torch.Tensor:
    """log p(next token) at the `scored` positions that predict the window's last tokens:
    (scored, vocab), fp32."""
    logits = model(input_ids=input_ids, use_cache=False).logits[0]  # (L, vocab)
    return torch.log_softmax(logits[-scored - 1:-1].float(), dim=-1)


@dataclass(frozen=True)
class WindowScores:
    """Per-window sums (numpy, one entry per window): scored tokens, NLL of the model, and with
    a reference its NLL, KL(reference || model) and top-1 agreements."""

    tokens: np.ndarray
    nll: np.ndarray
    ref_nll: np.ndarray | None = None
    kl: np.ndarray | None = None
    top1: np.ndarray | None = None


def score_windows(model, windows, reference=None) -> WindowScores:
    """Run `model` (and `reference`, on the same tokens) over `windows`."""
    def log_probs(module):
        return None if module is None else \
            (lambda input_ids, scored: _log_probs(module, input_ids, scored).double().numpy())

    return score_log_probs(log_probs(model), windows, log_probs(reference))


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log softmax over the last axis, in float64 (numpy)."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def score_log_probs(log_probs, windows, reference=None) -> WindowScores:
    """Per-window sums from `log_probs(input_ids (1, L), scored) -> (scored, vocab)` numpy
    log-probabilities (and `reference`'s, on the same tokens): the one definition of NLL, KL
    and top-1 that both torch models and runtime sessions are scored with."""
    sums = {key: [] for key in ("tokens", "nll", "ref_nll", "kl", "top1")}
    for input_ids, scored in windows:
        targets = input_ids[0, -scored:].numpy()[:, None]  # (scored, 1)
        logp = log_probs(input_ids, scored)
        sums["tokens"].append(scored)
        sums["nll"].append(-np.take_along_axis(logp, targets, 1).sum())
        if reference is not None:
            ref = reference(input_ids, scored)
            sums["ref_nll"].append(-np.take_along_axis(ref, targets, 1).sum())
            # KL(P_ref || P_model) per position, summed over the vocabulary
            sums["kl"].append(np.clip((np.exp(ref) * (ref - logp)).sum(-1), 0, None).sum())
            sums["top1"].append((ref.argmax(-1) == logp.argmax(-1)).sum())
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in sums.items() if v}
    return WindowScores(**arrays)


def _interval(draws: np.ndarray, confidence: float) -> list[float]:
    tail = (1 - confidence) / 2 * 100
    return [float(np.percentile(draws, tail)), float(np.percentile(draws, 100 - tail))]


def summarize(scores: WindowScores, config: EvalConfig) -> dict:
    """Perplexity (and KL, top-1, perplexity ratio with a reference), each with its bootstrap
    interval over windows."""
    n = len(scores.tokens)
    picks = np.random.default_rng(config.seed).integers(0, n, size=(config.resamples, n))
    tokens = scores.tokens[picks].sum(1)

    def ratio(values):  # token-weighted mean of a per-window sum, point and resampled
        return values.sum() / scores.tokens.sum(), values[picks].sum(1) / tokens

    nll, nll_draws = ratio(scores.nll)
    out = {"windows": n, "tokens": int(scores.tokens.sum()), "interval": "percentile bootstrap "
           f"over windows, {config.resamples} resamples, {config.confidence:.0%}",
           "perplexity": float(np.exp(nll)),
           "perplexity_ci": _interval(np.exp(nll_draws), config.confidence)}
    if scores.kl is not None:
        ref_nll, ref_draws = ratio(scores.ref_nll)
        kl, kl_draws = ratio(scores.kl)
        top1, top1_draws = ratio(scores.top1)
        out.update({
            "reference_perplexity": float(np.exp(ref_nll)),
            "reference_perplexity_ci": _interval(np.exp(ref_draws), config.confidence),
            "perplexity_ratio": float(np.exp(nll - ref_nll)),
            "perplexity_ratio_ci": _interval(np.exp(nll_draws - ref_draws), config.confidence),
            "kl": float(kl), "kl_ci": _interval(kl_draws, config.confidence),
            "top1_agreement": float(top1),
            "top1_agreement_ci": _interval(top1_draws, config.confidence)})
    return out


def check_prompts(tokenizer, prompts, context: int, max_new_tokens: int) -> None:
    """UserError when a prompt plus its new tokens does not fit the model's context (checked
    with the tokenizer alone, before any weight loads)."""
    for prompt in prompts:
        length = len(tokenizer(prompt)["input_ids"])
        if length + max_new_tokens > context:
            raise UserError(f"prompt of {length} tokens + {max_new_tokens} new tokens exceeds "
                            f"the model's context of {context}: {prompt[:60]!r}")


@torch.no_grad()
def greedy(model, tokenizer, prompt: str, max_new_tokens: int) -> list[int]:
    """The greedy continuation of `prompt`: new token ids only."""
    encoded = tokenizer(prompt, return_tensors="pt")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    out = model.generate(**encoded, max_new_tokens=max_new_tokens, do_sample=False,
                         pad_token_id=pad)
    return out[0, encoded["input_ids"].shape[1]:].tolist()


def continuations(model, tokenizer, prompts, max_new_tokens: int, reference=None) -> list[dict]:
    """Greedy continuations of `prompts`; with a reference, its text and the number of leading
    new tokens both produce alike (`same_prefix`)."""
    rows = []
    for prompt in prompts:
        ids = greedy(model, tokenizer, prompt, max_new_tokens)
        row = {"prompt": prompt, "text": tokenizer.decode(ids, skip_special_tokens=True)}
        if reference is not None:
            ref = greedy(reference, tokenizer, prompt, max_new_tokens)
            same = next((i for i, (a, b) in enumerate(zip(ids, ref)) if a != b),
                        min(len(ids), len(ref)))
            row.update(reference_text=tokenizer.decode(ref, skip_special_tokens=True),
                       same_prefix=same, new_tokens=len(ids))
        rows.append(row)
    return rows


def check_same_tokenizer(tokenizer, reference_tokenizer, names: tuple[str, str]) -> None:
    """UserError unless both tokenizers have the same vocabulary (KL compares distributions
    over the same token ids)."""
    if tokenizer.get_vocab() != reference_tokenizer.get_vocab():
        raise UserError(f"the tokenizer of {names[0]} does not match {names[1]}'s "
                        f"({len(tokenizer)} vs {len(reference_tokenizer)} tokens): KL and "
                        "top-1 compare the same token ids")


def evaluate_lm(model, tokenizer, windows, config: EvalConfig, *, reference=None,
                prompts=PROMPTS) -> dict:
    """Perplexity (KL, top-1 with a reference) over `windows` (token_windows, built before any
    weight loads) and greedy continuations of `prompts`, as one JSON-ready dict."""
    result = {"config": config.to_json(),
              **summarize(score_windows(model, windows, reference), config)}
    if config.max_new_tokens and prompts:
        result["continuations"] = continuations(model, tokenizer, prompts,
                                                config.max_new_tokens, reference)
    return result
