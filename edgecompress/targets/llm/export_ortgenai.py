"""Glue over ONNX Runtime GenAI's model builder (`onnxruntime_genai.models.builder`): an HF
safetensors checkpoint folder -> an ONNX Runtime GenAI model folder (model.onnx + weights,
genai_config.json, tokenizer) with a KV cache, for the CPU.

The builder does the work (graph, GroupQueryAttention with KV cache, MatMulNBits blockwise
quantization through onnxruntime's MatMulNBitsQuantizer); this module maps a scheme name to its
options, checks what the builder cannot take before it starts, and runs it in a child process
(it imports torch + transformers and appends its own folder to sys.path; a child keeps both out
of the caller). GPTQ / AWQ need a calibrated, pre-quantized checkpoint from another tool (the
builder only reads them), and HQQ is not among its algorithms: neither is offered here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from edgecompress.errors import UserError
from edgecompress.targets.extras import require

# scheme -> (builder --precision, --extra_options). Weight-only blockwise quantization of every
# MatMul (and, for tied embeddings, the shared embedding / LM head matrix, as the builder does by
# default); block_size and accuracy_level come from the profile.
BUILDER_SCHEMES: dict[str, tuple[str, dict[str, str]]] = {
    "int4-rtn": ("int4", {"algo_config": "rtn"}),  # round to nearest, symmetric
    "int4-k-quant": ("int4", {"algo_config": "k_quant"}),  # llama.cpp-style k-quant search
    # k_quant, with the LM head and llama.cpp's sensitive layers (first / last eighth, every
    # third qkv / v / down projection) kept in int8
    "int4-k-quant-mixed": ("int4", {"algo_config": "k_quant_mixed"}),
    # the builder's own default (`-p int4 -e cpu`: its 'default' algorithm, RTN, symmetric):
    # what a user of the builder gets, the ONNX Runtime GenAI anchor
    "int4-default": ("int4", {}),
    "int8-rtn": ("int8", {"algo_config": "rtn"}),
    "fp32": ("fp32", {}),
}
# config.json `architectures[0]` values the builder converts that edgecompress also loads
BUILDER_ARCHITECTURES = ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM",
                         "Qwen3ForCausalLM", "Gemma3ForCausalLM", "Phi3ForCausalLM")
BUILDER_TIMEOUT_S = 3600


def check_builder_input(checkpoint: Path, target: str) -> dict:
    """The config dict of `checkpoint` when the builder can convert it; UserError naming
    `target` and the architecture otherwise (read from config.json, no weights)."""
    try:
        config = json.loads((Path(checkpoint) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read {Path(checkpoint) / 'config.json'}: {err}") from None
    architecture = (config.get("architectures") or ["(none)"])[0]
    if architecture not in BUILDER_ARCHITECTURES:
        raise UserError(f"target {target} cannot take {architecture} ({config.get('model_type')})"
                        f": ONNX Runtime GenAI's model builder converts "
                        f"{', '.join(BUILDER_ARCHITECTURES)}")
    return config


def builder_options(scheme: str, *, block_size: int, accuracy_level: int
                    ) -> tuple[str, dict[str, str]]:
    """(precision, extra options) of `scheme` (a key of BUILDER_SCHEMES) for the builder."""
    precision, options = BUILDER_SCHEMES[scheme]
    if precision in ("int4", "int8"):
        options = {**options, "block_size": str(block_size),
                   "accuracy_level": str(accuracy_level)}
    return precision, options


def builder_command(checkpoint: Path, out: Path, cache: Path, precision: str,
                    options: dict[str, str]) -> list[str]:
    """The builder's command line (CPU execution provider)."""
    command = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(checkpoint),
               "-o", str(out), "-p", precision, "-e", "cpu", "-c", str(cache)]
    if options:
        command += ["--extra_options", *(f"{k}={v}" for k, v in options.items())]
    return command


def build_ortgenai(checkpoint: Path, out: Path, *, scheme: str, block_size: int = 32,
                   accuracy_level: int = 4, target: str = "onnx-genai") -> dict:
    """Convert HF checkpoint folder `checkpoint` into ONNX Runtime GenAI model folder `out`.

    Returns the builder's settings as a dict (precision, options, onnxruntime_genai version).
    Raises UserError for an architecture the builder does not take or a missing extra, and
    RuntimeError (with the builder's last lines) when it fails.
    """
    if scheme not in BUILDER_SCHEMES:
        raise UserError(f"unknown ONNX Runtime GenAI scheme {scheme!r} (known: "
                        f"{', '.join(BUILDER_SCHEMES)})")
    check_builder_input(checkpoint, target)
    require("onnx-genai", "exporting to ONNX Runtime GenAI")
    precision, options = builder_options(scheme, block_size=block_size,
                                         accuracy_level=accuracy_level)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with tempfile.TemporaryDirectory(prefix="edgecompress-ortgenai-") as cache:
        proc = subprocess.run(builder_command(checkpoint, out, Path(cache), precision, options),
                              capture_output=True, text=True, env=env,
                              timeout=BUILDER_TIMEOUT_S)
    if proc.returncode != 0 or not (Path(out) / "genai_config.json").is_file():
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise RuntimeError(f"ONNX Runtime GenAI's model builder failed (exit "
                           f"{proc.returncode}): {tail}")
    from importlib.metadata import version

    return {"tool": "onnxruntime_genai.models.builder",
            "onnxruntime_genai": version("onnxruntime-genai"), "scheme": scheme,
            "precision": precision, "execution_provider": "cpu", "extra_options": options}
