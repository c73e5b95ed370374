"""Which part of ExecuTorch's 8da4w recipe costs SmolLM2-135M its KL (issue 27).

The android-xnnpack-llm export of SmolLM2 (optimum-executorch's xnnpack recipe: every Linear int8
dynamic activations x int4 weights in groups of 32 with hqq scales, the tied LM head its own 8da4w
copy, the embedding int8 per row) is refused by its gate. This runs the same torchao quantization
eagerly (no export: the .pte gives the same KL, see benchmarks/results/slm_anchors_executorch.json)
in variants and scores each against the fp32 reference on held-out bbc-news windows:

    PYTHONPATH=. python benchmarks/executorch_8da4w_parts.py recipe head8=head:8da8w \\
        head_fp32=head:none minmax=algo:affine

Each argument is NAME[=KEY:VALUE[;KEY:VALUE]] with keys head (8da4w | 8da8w | none), algo (torchao's
intx_choose_qparams_algorithm: hqq_scale_only | affine), emb (8w | none), body (8da4w | 8da8w |
4w: int4 weights with float activations), mapping (symmetric | asymmetric: the int4 weights' zero
points) and mixed (none | q4km: llama.cpp's Q4_K_M choice of sensitive layers, v_proj and
down_proj of the first and last eighth of the layers and every third between, in 8da8w).
Prints one line per variant (KL and top-1 with their bootstrap intervals); 1 thread, about a
minute each on a 2-core EPYC.
"""

from __future__ import annotations

import copy
import os
import sys
import time

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from edgecompress.compress.llm.config import EvalConfig  # noqa: E402
from edgecompress.compress.llm.load import load_lm  # noqa: E402
from edgecompress.compress.llm.metrics import score_windows, summarize, token_windows  # noqa: E402
from edgecompress.compress.llm.sources import dataset_texts  # noqa: E402
from edgecompress.targets.llm.export_executorch import sensitive_linear  # noqa: E402

WINDOWS = EvalConfig(context=256, stride=128, windows=6, resamples=100)


def quantized(model, head: str = "8da4w", algo: str = "hqq_scale_only", emb: str = "8w",
              body: str = "8da4w", mapping: str = "symmetric", mixed: str = "none"):
    from torchao.quantization.granularity import PerAxis, PerGroup
    from torchao.quantization.quant_api import (
        Int8DynamicActivationIntxWeightConfig,
        IntxWeightOnlyConfig,
        quantize_,
    )
    from torchao.quantization.quant_primitives import MappingType

    model = copy.deepcopy(model).eval()
    if model.config.tie_word_embeddings:  # the head its own copy, as the export makes it
        model.lm_head.weight = torch.nn.Parameter(model.model.embed_tokens.weight.detach().clone())
    if emb == "8w":
        quantize_(model, IntxWeightOnlyConfig(weight_dtype=torch.int8, granularity=PerAxis(0),
                                              intx_choose_qparams_algorithm=algo),
                  lambda module, fqn: isinstance(module, torch.nn.Embedding))
    weights = MappingType.SYMMETRIC if mapping == "symmetric" else MappingType.ASYMMETRIC
    int8 = Int8DynamicActivationIntxWeightConfig(weight_dtype=torch.int8,
                                                 weight_granularity=PerAxis(0),
                                                 intx_choose_qparams_algorithm=algo)
    bodies = {"8da4w": Int8DynamicActivationIntxWeightConfig(
        weight_dtype=torch.int4, weight_granularity=PerGroup(32), weight_mapping_type=weights,
        intx_choose_qparams_algorithm=algo), "8da8w": int8, "4w": IntxWeightOnlyConfig(
        weight_dtype=torch.int4, granularity=PerGroup(32), mapping_type=weights,
        intx_choose_qparams_algorithm=algo)}
    heads = {"8da4w": bodies["8da4w"], "8da8w": int8, "none": None}
    layers = model.config.num_hidden_layers

    def sensitive(fqn: str, layers: int) -> bool:  # the body's; the head has its own key
        return sensitive_linear(fqn, layers) and "lm_head" not in fqn

    if mixed == "q4km":
        quantize_(model, int8, lambda module, fqn: isinstance(module, torch.nn.Linear)
                  and sensitive(fqn, layers))
    quantize_(model, bodies[body], lambda module, fqn: isinstance(module, torch.nn.Linear)
              and "lm_head" not in fqn and not (mixed == "q4km" and sensitive(fqn, layers)))
    if heads[head] is not None:
        quantize_(model, heads[head], lambda module, fqn: isinstance(module, torch.nn.Linear)
                  and "lm_head" in fqn)
    return model


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    reference = load_lm("smollm2-135m")
    windows = token_windows(reference.tokenizer, dataset_texts("bbc-news", "test"), WINDOWS)
    for spec in argv or ["recipe"]:
        name, _, settings = spec.partition("=")
        options = dict(item.split(":") for item in settings.split(";") if item)
        began = time.perf_counter()
        with torch.no_grad():
            scores = summarize(score_windows(quantized(reference.model, **options), windows,
                                             reference=reference.model), WINDOWS)
        print(f"{name}: KL {scores['kl']:.3f} {[round(x, 3) for x in scores['kl_ci']]}, top-1 "
              f"{scores['top1_agreement']:.3f} {[round(x, 3) for x in scores['top1_agreement_ci']]}"
              f" ({time.perf_counter() - began:.0f} s)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
