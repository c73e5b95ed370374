"""GGUF for llama.cpp from a Hugging Face Llama-family checkpoint folder (config.json +
safetensors): an f32 / f16 GGUF written with the `gguf` package, then llama.cpp's own quantizer
(`llama_model_quantize`, through llama-cpp-python) for the k-quants and the rest.

llama.cpp's `convert_hf_to_gguf.py` (conversion/llama.py, base.py in its tree) is the reference
for what is written: the hyper-parameters of `TextModel.set_gguf_parameters`, the tensor names of
`gguf.get_tensor_name_map`, and the q / k row permutation llama.cpp's RoPE needs (HF rotates the
two halves of a head, llama.cpp interleaved pairs). 1-D tensors (norms) stay f32 as there.

The tokenizer is not rebuilt from tokenizer.json (that needs the converter's pre-tokenizer hash
table): its metadata (`tokenizer.*`) is copied from a GGUF of the same vocabulary — for the
registry model, the GGUF it was loaded from — and checked against tokenizer.json when there is one.

What llama.cpp takes (read in its src/models/llama.cpp and deci.cpp, llama-cpp-python 0.3.36):
the `llama` architecture reads head / KV-head / FFN counts as per-layer arrays, but builds every
layer's tensors and graph with layer 0's, so it takes uniform shapes only — which is what
edgecompress's pruning writes (fewer layers, fewer query or KV heads, a narrower FFN, the same in
every layer, explicit head_dim). Per-layer shapes would need its `deci` architecture (per-layer
counts, 0 = no attention / no FFN); no checkpoint this package writes has them, and transformers
could not load one, so they are refused at preflight.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecompress.errors import UserError

EXTRA_HINT = "pip install 'edgecompress[llm]'"
# scheme -> llama.cpp's `llama_ftype` name (LLAMA_FTYPE_<name> in llama.h / llama_cpp)
SCHEMES = {"f32": "ALL_F32", "f16": "MOSTLY_F16", "q8_0": "MOSTLY_Q8_0",
           "q6_k": "MOSTLY_Q6_K", "q5_k_m": "MOSTLY_Q5_K_M", "q4_k_m": "MOSTLY_Q4_K_M",
           "q4_k_s": "MOSTLY_Q4_K_S", "q4_0": "MOSTLY_Q4_0", "q4_1": "MOSTLY_Q4_1",
           "q3_k_m": "MOSTLY_Q3_K_M"}
FLOAT_SCHEMES = ("f32", "f16")
_FAMILIES = ("llama",)  # config model_type this writer covers
_NO_ROPE_SCALING = (None, "default")


@dataclass(frozen=True)
class GGUFPlan:
    """What preflight found: the checkpoint's facts needed to write it."""

    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn: int
    vocab: int
    context: int
    rope_theta: float
    rms_eps: float
    tied: bool
    files: tuple[Path, ...]  # safetensors


def _require(module: str, what: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise UserError(f"{what} needs {module}: {EXTRA_HINT}")


def _rope(config: dict) -> tuple[float, str | None]:
    params = config.get("rope_parameters") or config.get("rope_scaling") or {}
    theta = params.get("rope_theta", config.get("rope_theta", 10000.0))
    return float(theta), params.get("rope_type", params.get("type"))


def _shapes(files) -> dict[str, tuple[int, ...]]:
    """{tensor name: shape} of safetensors files, from their headers (nothing loaded)."""
    import struct

    shapes = {}
    for path in files:
        with open(path, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length))
        shapes.update({k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"})
    return shapes


def check_export(model_dir: Path, vocab_from: Path | None) -> GGUFPlan:
    """Preflight: UserError (one line) for whatever llama.cpp's `llama` GGUF cannot take, before
    any weight is read — another family, RoPE scaling, per-layer shapes, biases, a tokenizer
    GGUF missing or of another vocabulary."""
    model_dir = Path(model_dir)
    try:
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UserError(f"{model_dir}: no readable config.json ({err})") from None
    family = config.get("model_type")
    if family not in _FAMILIES:
        raise UserError(f"{model_dir}: GGUF export covers the {', '.join(_FAMILIES)} family, "
                        f"not {family!r}")
    theta, rope_type = _rope(config)
    if rope_type not in _NO_ROPE_SCALING:
        raise UserError(f"{model_dir}: RoPE scaling {rope_type!r} is not written to GGUF here "
                        "(only unscaled RoPE)")
    if config.get("attention_bias") or config.get("mlp_bias"):
        raise UserError(f"{model_dir}: attention / MLP biases are not written to GGUF here")
    files = tuple(sorted(model_dir.glob("*.safetensors")))
    if not files:
        raise UserError(f"{model_dir}: no .safetensors weights")
    heads, hidden = config["num_attention_heads"], config["hidden_size"]
    plan = GGUFPlan(
        layers=config["num_hidden_layers"], hidden=hidden, heads=heads,
        kv_heads=config.get("num_key_value_heads") or heads,
        head_dim=config.get("head_dim") or hidden // heads, ffn=config["intermediate_size"],
        vocab=config["vocab_size"], context=config.get("max_position_embeddings", 2048),
        rope_theta=theta, rms_eps=float(config.get("rms_norm_eps", 1e-6)),
        tied=bool(config.get("tie_word_embeddings", False)), files=files)
    _check_uniform(plan, _shapes(files), model_dir)
    if vocab_from is None:
        raise UserError(f"{model_dir}: GGUF export copies the tokenizer from a GGUF of the same "
                        "vocabulary (the model's source GGUF); none was given")
    _check_vocab(plan, Path(vocab_from), model_dir)
    return plan


def _check_uniform(plan: GGUFPlan, shapes: dict, model_dir: Path) -> None:
    """Every layer's tensors have the config's shapes (llama.cpp's llama graph uses layer 0's
    head and FFN counts for all); UserError naming the first layer that differs."""
    want = {"self_attn.q_proj.weight": (plan.heads * plan.head_dim, plan.hidden),
            "self_attn.k_proj.weight": (plan.kv_heads * plan.head_dim, plan.hidden),
            "self_attn.v_proj.weight": (plan.kv_heads * plan.head_dim, plan.hidden),
            "self_attn.o_proj.weight": (plan.hidden, plan.heads * plan.head_dim),
            "mlp.gate_proj.weight": (plan.ffn, plan.hidden),
            "mlp.up_proj.weight": (plan.ffn, plan.hidden),
            "mlp.down_proj.weight": (plan.hidden, plan.ffn)}
    if plan.heads % plan.kv_heads:
        raise UserError(f"{model_dir}: {plan.heads} query heads do not split into "
                        f"{plan.kv_heads} KV groups")
    for layer in range(plan.layers):
        for part, shape in want.items():
            got = shapes.get(f"model.layers.{layer}.{part}")
            if got is None:
                raise UserError(f"{model_dir}: layer {layer} has no {part}")
            if got != shape:
                raise UserError(
                    f"{model_dir}: layer {layer} {part} is {list(got)}, the config says "
                    f"{list(shape)}; llama.cpp's llama GGUF takes the same head and FFN counts in "
                    "every layer")
    extra = sorted(k for k in shapes if k.startswith("model.layers.")
                   and int(k.split(".")[2]) >= plan.layers)
    if extra:
        raise UserError(f"{model_dir}: {extra[0]} lies beyond the config's {plan.layers} layers")


def _gguf_field(reader, key: str):
    field = reader.fields.get(key)
    return None if field is None else field.contents()


def _check_vocab(plan: GGUFPlan, vocab_from: Path, model_dir: Path) -> None:
    _require("gguf", "GGUF export")
    from gguf import GGUFReader

    if not vocab_from.is_file():
        raise UserError(f"tokenizer GGUF not found: {vocab_from}")
    try:
        tokens = _gguf_field(GGUFReader(vocab_from), "tokenizer.ggml.tokens")
    except (ValueError, OSError) as err:
        raise UserError(f"{vocab_from}: not a readable GGUF ({err})") from None
    if not tokens:
        raise UserError(f"{vocab_from}: holds no tokenizer (tokenizer.ggml.tokens)")
    if len(tokens) != plan.vocab:
        raise UserError(f"the tokenizer of {vocab_from.name} has {len(tokens)} tokens, the model "
                        f"{plan.vocab}: not the same vocabulary")
    tokenizer_json = model_dir / "tokenizer.json"
    if tokenizer_json.is_file():
        vocab = json.loads(tokenizer_json.read_text(encoding="utf-8")).get("model", {}).get("vocab")
        if isinstance(vocab, dict):
            wrong = next((i for i, t in enumerate(tokens) if vocab.get(t, i) != i), None)
            if wrong is not None:
                raise UserError(f"the tokenizer of {model_dir} does not match {vocab_from.name}'s "
                                f"(token {wrong}: {tokens[wrong]!r})")


def _permute(weight: np.ndarray, heads: int) -> np.ndarray:
    """HF q / k rows -> llama.cpp's (convert_hf_to_gguf LlamaModel.permute)."""
    return (weight.reshape(heads, 2, weight.shape[0] // heads // 2, *weight.shape[1:])
            .swapaxes(1, 2).reshape(weight.shape))


def _tensors(plan: GGUFPlan):
    """(HF name, fp32 numpy array) of every weight, read one at a time."""
    from safetensors import safe_open

    for path in plan.files:
        with safe_open(str(path), framework="numpy") as handle:
            for name in handle.keys():
                yield name, np.asarray(handle.get_tensor(name), dtype=np.float32)


def write_gguf(model_dir: Path, out: Path, *, dtype: str = "f32",
               vocab_from: Path, plan: GGUFPlan | None = None) -> Path:
    """Write checkpoint `model_dir` as an f32 / f16 GGUF (`llama` architecture) at `out`."""
    if dtype not in FLOAT_SCHEMES:
        raise ValueError(f"dtype must be one of {FLOAT_SCHEMES}, got {dtype!r}")
    plan = plan or check_export(model_dir, vocab_from)
    import gguf

    arch = gguf.MODEL_ARCH.LLAMA
    names = gguf.get_tensor_name_map(arch, plan.layers)
    writer = gguf.GGUFWriter(str(out), gguf.MODEL_ARCH_NAMES[arch])
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(Path(model_dir).name)
    writer.add_block_count(plan.layers)
    writer.add_context_length(plan.context)
    writer.add_embedding_length(plan.hidden)
    writer.add_feed_forward_length(plan.ffn)
    writer.add_head_count(plan.heads)
    writer.add_head_count_kv(plan.kv_heads)
    writer.add_key_length(plan.head_dim)
    writer.add_value_length(plan.head_dim)
    writer.add_rope_dimension_count(plan.head_dim)
    writer.add_rope_freq_base(plan.rope_theta)
    writer.add_layer_norm_rms_eps(plan.rms_eps)
    writer.add_vocab_size(plan.vocab)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32 if dtype == "f32"
                         else gguf.LlamaFileType.MOSTLY_F16)
    _copy_tokenizer(writer, Path(vocab_from))
    for name, data in _tensors(plan):
        if name == "lm_head.weight" and plan.tied:
            continue  # llama.cpp reuses token_embd when output.weight is absent
        if name.endswith("q_proj.weight"):
            data = _permute(data, plan.heads)
        elif name.endswith("k_proj.weight"):
            data = _permute(data, plan.kv_heads)
        target = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if target is None:
            raise UserError(f"{model_dir}: no GGUF name for tensor {name}")
        if dtype == "f16" and data.ndim > 1:
            data = data.astype(np.float16)
        writer.add_tensor(target, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def _copy_tokenizer(writer, source: Path) -> None:
    """Every `tokenizer.*` key of GGUF `source`, with its value types."""
    from gguf import GGUFReader, GGUFValueType

    for key, field in GGUFReader(source).fields.items():
        if not key.startswith("tokenizer."):
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == GGUFValueType.ARRAY else None
        writer.add_key_value(key, field.contents(), kind, sub)


def quantize_gguf(src: Path, out: Path, scheme: str, *, threads: int = 2) -> Path:
    """llama.cpp's quantizer (llama_model_quantize, default params) from f32 / f16 GGUF `src`."""
    if scheme not in SCHEMES:
        raise UserError(f"unknown GGUF scheme {scheme!r}; known: {', '.join(SCHEMES)}")
    _require("llama_cpp", f"GGUF {scheme}")
    import ctypes

    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_{SCHEMES[scheme]}")
    params.nthread = threads
    with _native_stderr_to(Path(out).with_suffix(".log")) as log:
        code = llama_cpp.llama_model_quantize(str(src).encode(), str(out).encode(),
                                              ctypes.byref(params))
    if code != 0:
        tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
        raise RuntimeError(f"llama_model_quantize({src.name} -> {scheme}) returned {code}: "
                           f"{tail}")
    return out


@contextlib.contextmanager
def _native_stderr_to(path: Path):
    """File descriptor 2 into `path` for the block: llama.cpp's quantizer writes a line per
    tensor (and per fallback type) there, from C; kept for its error, not shown."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(path, "wb") as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield path
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def tensor_types(path: Path) -> dict[str, int]:
    """{ggml type name: tensor count} of GGUF `path` (what the quantizer chose: llama.cpp falls
    back from a k-quant where a row is not a multiple of 256)."""
    from collections import Counter

    from gguf import GGUFReader

    return dict(Counter(t.tensor_type.name for t in GGUFReader(path).tensors))


def export_gguf(model_dir: Path, out_dir: Path, scheme: str, *, vocab_from: Path | None,
                threads: int = 2) -> Path:
    """`out_dir/model-<scheme>.gguf` from checkpoint `model_dir`: written as f32 (f16 when that
    is the scheme), then quantized by llama.cpp from the f32 file (so one rounding only).
    Preflight first (one-line UserError, nothing written); the file appears only when complete.
    """
    if scheme not in SCHEMES:
        raise UserError(f"unknown GGUF scheme {scheme!r}; known: {', '.join(SCHEMES)}")
    plan = check_export(Path(model_dir), vocab_from)
    if scheme not in FLOAT_SCHEMES:
        _require("llama_cpp", f"GGUF {scheme}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / f"model-{scheme}.gguf"
    with tempfile.TemporaryDirectory(prefix=".gguf-", dir=out_dir) as tmp:
        base = Path(tmp) / "model.gguf"
        write_gguf(model_dir, base, dtype="f16" if scheme == "f16" else "f32",
                   vocab_from=Path(vocab_from), plan=plan)
        if scheme in FLOAT_SCHEMES:
            result = base
        else:
            result = quantize_gguf(base, Path(tmp) / "quantized.gguf", scheme, threads=threads)
        os.chmod(result, 0o644)
        os.replace(result, final)
    return final
