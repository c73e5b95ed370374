"""Glue over ExecuTorch's LLM path, configured as optimum-executorch's `xnnpack` recipe configures
it (`optimum-cli export executorch --recipe xnnpack --use_custom_sdpa --qlinear 8da4w
--qembedding 8w`): an HF safetensors checkpoint folder -> one `model.pte` for the XNNPACK
delegate with a static KV cache.

The pieces are the libraries' own, as optimum-executorch assembles them (its tasks/causal_lm.py,
quantization.py, integrations.py and recipes/xnnpack.py; optimum-executorch itself is not
installed: it pins an older transformers):
  - transformers' `TorchExportableModuleForDecoderOnlyLM` (integrations/executorch.py): the model
    with a StaticCache of `max_context` positions as buffers; forward(input_ids (1, T),
    cache_position (T,)) -> logits (1, T, vocab), T dynamic in [1, max_context - 1];
  - attention through ExecuTorch's `llama::custom_sdpa` op (executorch.extension.llm.custom_ops),
    registered under transformers' AttentionInterface as optimum-executorch registers it;
  - torchao `quantize_`: every nn.Linear whose input width the group divides gets
    Int8DynamicActivationIntxWeightConfig(int4, PerGroup(group)) — "8da4w" — and the embedding
    IntxWeightOnlyConfig(int8, PerAxis(0)) — "8w" — both with optimum-executorch's default
    `hqq_scale_only` scale search (a tied LM head becomes its own 8da4w copy, as there);
  - executorch `to_edge_transform_and_lower(..., XnnpackPartitioner())` and `to_executorch` with
    the recipe's backend config; the model's facts as constant methods (get_max_seq_len, ...).
Not taken: optimum-executorch's custom KV cache (`--use_custom_kv_cache`, ~400 lines of its own
cache classes over executorch.examples): the cache here is transformers' StaticCache.

The export runs in a child process (`python -m edgecompress.targets.llm.export_executorch`):
torch.export, torchao and ExecuTorch's custom-op libraries stay out of the caller, and a crash
in lowering is a RuntimeError with its last lines, not a dead parent.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from edgecompress.errors import UserError
from edgecompress.targets.extras import require

PTE_NAME = "model.pte"
# scheme -> (linear config key, embedding config key), optimum-executorch's names
SCHEMES: dict[str, tuple[str | None, str | None]] = {
    "8da4w": ("8da4w", "8w"),  # int8 dynamic activations x int4 grouped weights; int8 embedding
    "8da8w": ("8da8w", "8w"),  # int8 dynamic activations x int8 per-channel weights
    # 8da4w with llama.cpp's Q4_K_M choice of sensitive Linears (the LM head, and v_proj /
    # down_proj of the layers use_more_bits picks) in 8da8w: XNNPACK runs both kinds
    "8da4w-mixed": ("8da4w-mixed", "8w"),
    "fp32": (None, None),  # no quantization: the conversion check
}
GROUP_SIZES = (32, 64, 128, 256)  # optimum-executorch's qlinear_group_size default: 32
QPARAMS_ALGORITHM = "hqq_scale_only"  # optimum-executorch's DEFAULT_QPARAMS_ALGORITHM
# config.json `architectures[0]` values with one full-attention layer type (a static cache of
# plain layers) that edgecompress also loads. Gemma 3 mixes sliding-window layers (a hybrid
# cache, whose windows transformers' exportable module replaces by full layers) and GPT-2 is
# outside optimum-executorch's decoder recipes: neither is taken. Llama is what this path was
# run on (tiny random and SmolLM2); the others share its attention code, and the gate keeps
# nothing that comes out wrong.
EXPORT_ARCHITECTURES = ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM",
                        "Qwen3ForCausalLM", "Phi3ForCausalLM")
EXPORT_TIMEOUT_S = 3600


def check_export_input(checkpoint: Path, target: str, max_context: int) -> dict:
    """The config dict of `checkpoint` when this path can export it; UserError naming `target`
    and the architecture (or the context) otherwise. Reads config.json only."""
    try:
        config = json.loads((Path(checkpoint) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read {Path(checkpoint) / 'config.json'}: {err}") from None
    architecture = (config.get("architectures") or ["(none)"])[0]
    if architecture not in EXPORT_ARCHITECTURES:
        raise UserError(f"target {target} cannot take {architecture} ({config.get('model_type')})"
                        f": its ExecuTorch export takes {', '.join(EXPORT_ARCHITECTURES)}")
    context = config.get("max_position_embeddings")
    if isinstance(context, int) and max_context > context:
        raise UserError(f"target {target} has a static cache of {max_context} tokens; the "
                        f"model's context is {context}")
    return config


def export_command(checkpoint: Path, out: Path, scheme: str, group_size: int,
                   max_context: int) -> list[str]:
    """The child's command line."""
    return [sys.executable, "-m", "edgecompress.targets.llm.export_executorch", str(checkpoint),
            str(out), "--scheme", scheme, "--group-size", str(group_size), "--max-context",
            str(max_context)]


def build_pte(checkpoint: Path, out: Path, *, scheme: str, group_size: int = 32,
              max_context: int = 1024, target: str = "pte") -> tuple[dict, Path]:
    """Export HF checkpoint folder `checkpoint` to `out/model.pte` (XNNPACK, static KV cache of
    `max_context` positions, `scheme`'s quantization) in a child process.

    Returns (the export's settings, the .pte's path). Raises UserError for a scheme, group or
    architecture this path does not take or a missing extra, RuntimeError (with the child's
    last lines) when the export fails.
    """
    if scheme not in SCHEMES:
        raise UserError(f"unknown ExecuTorch scheme {scheme!r} (known: {', '.join(SCHEMES)})")
    if group_size not in GROUP_SIZES:
        raise UserError(f"group size {group_size}: expected one of {GROUP_SIZES}")
    check_export_input(checkpoint, target, max_context)
    require("pte", "exporting an LLM to ExecuTorch")
    Path(out).mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    try:
        proc = subprocess.run(export_command(checkpoint, out, scheme, group_size, max_context),
                              capture_output=True, text=True, env=env, timeout=EXPORT_TIMEOUT_S)
    except subprocess.TimeoutExpired:  # the child is killed by now
        raise RuntimeError(f"the ExecuTorch export did not finish in {EXPORT_TIMEOUT_S} s "
                           "(SmolLM2-135M took more than 8 CPU minutes on a loaded 2-core "
                           "host)") from None
    path = Path(out) / PTE_NAME
    if proc.returncode != 0 or not path.is_file():
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise RuntimeError(f"the ExecuTorch export failed (exit {proc.returncode}): {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), path


# ---- the child: everything below imports torch, transformers, torchao and executorch ----


def _register_custom_sdpa() -> str:
    """Register ExecuTorch's custom SDPA as transformers attention "custom_sdpa" (as
    optimum-executorch's convert.py does); returns the name."""
    import torch
    from executorch.extension.llm.custom_ops import custom_ops  # noqa: F401  (llama:: ops)
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface
    from transformers.modeling_utils import AttentionInterface

    def custom_sdpa(module, query, key, value, attention_mask, position_ids=None, scaling=None,
                    softcap=None, head_mask=None, **kwargs):
        # transformers passes (batch, heads, seq, head_dim); the op takes (batch, seq, heads,
        # head_dim), the whole static cache as key / value, and masks causally from start_pos
        # (the first query's position); GQA is the op's own (no repeat_kv)
        query, key, value = (t.transpose(1, 2).to(torch.float32) for t in (query, key, value))
        start_pos = position_ids[0][0].item() if module.is_causal else 0
        output = torch.ops.llama.custom_sdpa(query, key, value, start_pos=start_pos,
                                             attn_mask=None, drpout_p=0.0,
                                             is_causal=module.is_causal, scale=scaling)
        return output, None

    AttentionInterface.register("custom_sdpa", custom_sdpa)
    AttentionMaskInterface.register("custom_sdpa", ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])
    return "custom_sdpa"


def more_bits(layer: int, layers: int) -> bool:
    """llama.cpp's use_more_bits (src/llama-quant.cpp): the layers whose attn_v and ffn_down
    Q4_K_M keeps in 6 bits — the first and last eighth, and every third layer between."""
    return layer < layers // 8 or layer >= 7 * layers // 8 or (layer - layers // 8) % 3 == 2


def sensitive_linear(fqn: str, layers: int) -> bool:
    """Whether Linear `fqn` of a `layers`-layer HF decoder is one Q4_K_M gives more bits: the LM
    head, or v_proj / down_proj of a more_bits layer."""
    parts = fqn.split(".")
    if parts[-1] == "lm_head":
        return True
    if "layers" not in parts or parts[-1] not in ("v_proj", "down_proj"):
        return False
    return more_bits(int(parts[parts.index("layers") + 1]), layers)


def _quantize(model, scheme: str, group_size: int) -> list[str]:
    """optimum-executorch's quantize_model_ for `scheme`: embedding first (per-row int8), then
    every Linear whose input width `group_size` divides (the others stay fp32, as there without
    a fallback config). Returns the Linears 8da4w-mixed keeps in 8da8w (none for the others)."""
    import torch
    from torchao.quantization.granularity import PerAxis, PerGroup
    from torchao.quantization.quant_api import (
        Int8DynamicActivationIntxWeightConfig,
        IntxWeightOnlyConfig,
        quantize_,
    )

    linear, embedding = SCHEMES[scheme]
    if embedding == "8w":
        quantize_(model, IntxWeightOnlyConfig(weight_dtype=torch.int8, granularity=PerAxis(0),
                                              intx_choose_qparams_algorithm=QPARAMS_ALGORITHM),
                  lambda module, fqn: isinstance(module, torch.nn.Embedding))
    if linear is None:
        return []
    int8 = Int8DynamicActivationIntxWeightConfig(
        weight_dtype=torch.int8, weight_granularity=PerAxis(0),
        intx_choose_qparams_algorithm=QPARAMS_ALGORITHM)
    if linear == "8da8w":
        quantize_(model, int8, lambda module, fqn: isinstance(module, torch.nn.Linear))
        return []
    layers = model.config.num_hidden_layers
    kept = set()  # 8da4w-mixed: the sensitive Linears first, in int8
    if linear == "8da4w-mixed":
        kept = {fqn for fqn, module in model.named_modules()
                if isinstance(module, torch.nn.Linear) and sensitive_linear(fqn, layers)}
        quantize_(model, int8, lambda module, fqn: fqn in kept)
    int4 = Int8DynamicActivationIntxWeightConfig(
        weight_dtype=torch.int4, weight_granularity=PerGroup(group_size),
        intx_choose_qparams_algorithm=QPARAMS_ALGORITHM)
    quantize_(model, int4, lambda module, fqn: isinstance(module, torch.nn.Linear)
              and fqn not in kept and module.weight.shape[1] % group_size == 0)
    return sorted(kept)


def _drop_padding_idx():
    """optimum-executorch's RemovePaddingIdxEmbeddingPass: aten.embedding without its
    padding_idx argument (inference ignores it), so ExecuTorch's quant fusion matches the
    int8 embedding pattern and lowers it to its quantized embedding kernel."""
    from executorch.exir.dialects._ops import ops as exir_ops
    from executorch.exir.pass_base import ExportPass, PassResult

    class DropPaddingIdx(ExportPass):
        def call(self, graph_module):
            for node in graph_module.graph.nodes:
                if (node.op == "call_function" and len(node.args) == 3
                        and node.target == exir_ops.edge.aten.embedding.default):
                    node.args = node.args[:2]
            graph_module.recompile()
            return PassResult(graph_module, True)

    return DropPaddingIdx()


def _metadata(config, max_context: int) -> dict:
    """The constant methods the .pte carries (optimum-executorch's save_config_to_constant_methods
    keys that apply; ExecuTorch's LLM runner reads them)."""
    eos = config.eos_token_id
    values = {"get_bos_id": config.bos_token_id, "get_eos_ids": eos if isinstance(eos, list)
              else [eos] if eos is not None else None,
              "get_n_layers": config.num_hidden_layers, "get_vocab_size": config.vocab_size,
              "get_max_batch_size": 1, "get_max_seq_len": max_context, "use_kv_cache": True,
              "use_sdpa_with_kv_cache": True, "enable_dynamic_shape": True}
    return {key: value for key, value in values.items() if value is not None}


def _export(checkpoint: Path, out: Path, scheme: str, group_size: int, max_context: int) -> dict:
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import (
        EdgeCompileConfig,
        ExecutorchBackendConfig,
        to_edge_transform_and_lower,
    )
    from executorch.exir.passes import MemoryPlanningPass
    from transformers import AutoModelForCausalLM, GenerationConfig
    from transformers.integrations.executorch import TorchExportableModuleForDecoderOnlyLM

    attention = _register_custom_sdpa()
    model = AutoModelForCausalLM.from_pretrained(
        str(checkpoint), dtype=torch.float32, attn_implementation=attention,
        generation_config=GenerationConfig(
            use_cache=True, cache_implementation="static", max_length=max_context,
            cache_config={"batch_size": 1, "max_cache_len": max_context})).eval()
    int8_linears = _quantize(model, scheme, group_size)
    exportable = TorchExportableModuleForDecoderOnlyLM(model, batch_size=1,
                                                       max_cache_len=max_context)
    seq = torch.export.Dim("seq_length_dim", max=max_context - 1)
    ids, positions = torch.zeros((1, 3), dtype=torch.long), torch.arange(3, dtype=torch.long)
    with torch.no_grad():
        program = exportable.export(input_ids=ids, cache_position=positions,
                                    dynamic_shapes={"input_ids": {1: seq},
                                                    "cache_position": {0: seq}},
                                    strict=True)
    lowered = to_edge_transform_and_lower(
        {"forward": program}, partitioner=[XnnpackPartitioner()],
        compile_config=EdgeCompileConfig(_check_ir_validity=False, _skip_dim_order=True),
        constant_methods=_metadata(model.config, max_context),
        transform_passes=[_drop_padding_idx()])
    executorch_program = lowered.to_executorch(config=ExecutorchBackendConfig(
        extract_delegate_segments=True, do_quant_fusion_and_const_prop=True,
        memory_planning_pass=MemoryPlanningPass(alloc_graph_input=False)))
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / PTE_NAME).write_bytes(executorch_program.buffer)
    from importlib.metadata import version

    linear, embedding = SCHEMES[scheme]
    return {"tool": "executorch.exir.to_edge_transform_and_lower + XnnpackPartitioner",
            "executorch": version("executorch"), "torchao": version("torchao"),
            "transformers": version("transformers"), "scheme": scheme,
            "qlinear": linear,
            "qlinear_group_size": group_size if linear in ("8da4w", "8da4w-mixed") else None,
            "qlinear_int8": int8_linears,
            "qembedding": embedding, "qparams_algorithm": QPARAMS_ALGORITHM if linear else None,
            "attention": "llama::custom_sdpa", "kv_cache": "transformers StaticCache",
            "max_context": max_context, "configured_as": "optimum-executorch recipe xnnpack "
            "--use_custom_sdpa --qlinear 8da4w --qembedding 8w" + (
                "; the LM head and Q4_K_M's sensitive v_proj / down_proj in 8da8w"
                if linear == "8da4w-mixed" else "")}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Export a decoder checkpoint to a .pte.")
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--scheme", choices=tuple(SCHEMES), required=True)
    parser.add_argument("--group-size", type=int, default=32)
    parser.add_argument("--max-context", type=int, required=True)
    args = parser.parse_args(argv)
    settings = _export(args.checkpoint, args.out, args.scheme, args.group_size,
                       args.max_context)
    print(json.dumps(settings))


if __name__ == "__main__":
    main()
