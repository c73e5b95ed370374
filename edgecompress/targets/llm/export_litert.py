"""Glue over litert-torch's generative API: an HF safetensors checkpoint folder -> one
multi-signature `.tflite` decoder with an external KV cache (signatures `prefill_<n>` per prefill
length and `decode`), as litert-torch's example converters build SmolLM2 / Llama / Qwen.

litert-torch does the work: its re-authored decoder (`model_builder.DecoderOnlyModel`, the
class its smollm / qwen examples build), its checkpoint loader (HF tensor names -> fused QKV),
`converter.convert_to_tflite` with the quantization recipe of the scheme (ai-edge-quantizer
underneath). This module only maps the HF config.json onto the example's ModelConfig, refuses
what no re-authored model covers before anything is converted, and runs the conversion in a
child process (torch.export + the TFLite converter hold a lot of memory and global state; a child
keeps both out of the caller). The export config is the examples' default: prefill signatures
write the KV cache and emit no logits (ExportConfig.output_logits_on_prefill False), `decode`
emits the logits of one token.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from edgecompress.errors import UserError
from edgecompress.targets.llm.litert_llm import LITERT_PACKAGES, SIDECAR, require_litert

# scheme -> litert-torch's converter `quantize` name (converter.QuantizationName). dynamic-int8:
# int8 channelwise weights, activations quantized at run time (the examples' default); the int4
# ones are ai-edge-quantizer's blockwise int4 weights with dynamic int8 activations.
LITERT_SCHEMES: dict[str, str] = {
    "dynamic-int8": "dynamic_int8",
    "dynamic-int4-block32": "dynamic_int4_block32",
    "dynamic-int4-block128": "dynamic_int4_block128",
    "weight-only-int8": "weight_only_int8",
    "fp32": "none",
}
# config.json `architectures[0]` -> the litert-torch example whose re-authored decoder takes it.
# Both are model_builder.DecoderOnlyModel (RMSNorm, gated SiLU FFN, GQA, RoPE): smollm's layout
# (Llama tensor names, no biases), qwen's adds the Q/K/V bias.
LITERT_ARCHITECTURES = {"LlamaForCausalLM": "smollm", "Qwen2ForCausalLM": "qwen"}
CONVERT_TIMEOUT_S = 3600
DEFAULT_KV_CACHE = 1280  # converter.define_conversion_flags' kv_cache_max_len
DEFAULT_PREFILL_LENGTHS = (8, 64, 128, 256, 512, 1024)  # its prefill_seq_lens


def _rope_theta(config: dict) -> float:
    """RoPE base of an HF config (transformers 5 keeps it in rope_parameters)."""
    rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
    return float(rope.get("rope_theta", config.get("rope_theta", 10000.0)))


def litert_settings(config: dict, target: str) -> dict:
    """The plain settings of litert-torch's re-authored decoder for HF `config` (a config.json
    dict): builder example, shape, RoPE base, norm epsilon, tying, biases. UserError naming
    `target`, the architecture and what is missing when no re-authored model takes it."""
    architecture = (config.get("architectures") or ["(none)"])[0]
    example = LITERT_ARCHITECTURES.get(architecture)
    if example is None:
        raise UserError(f"target {target} cannot take {architecture} "
                        f"({config.get('model_type')}): litert-torch's generative API has a "
                        f"re-authored decoder here only for {', '.join(LITERT_ARCHITECTURES)}")
    rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    refusals = [(rope_type != "default", f"RoPE scaling {rope_type!r} (the smollm / qwen "
                                         "decoders use plain RoPE)"),
                (config.get("mlp_bias", False), "FFN biases"),
                (example == "smollm" and config.get("attention_bias", False),
                 "attention biases"),
                (config.get("hidden_act", "silu") != "silu",
                 f"activation {config.get('hidden_act')!r}"),
                (config.get("use_sliding_window", False), "sliding-window attention")]
    for refused, what in refusals:
        if refused:
            raise UserError(f"target {target} cannot take this {architecture}: {what}; "
                            f"litert-torch's {example} decoder does not")
    heads = int(config["num_attention_heads"])
    return {"example": example, "architecture": architecture,
            "layers": int(config["num_hidden_layers"]), "hidden": int(config["hidden_size"]),
            "heads": heads, "kv_heads": int(config.get("num_key_value_heads") or heads),
            "head_dim": int(config.get("head_dim") or config["hidden_size"] // heads),
            "ffn": int(config["intermediate_size"]), "vocab": int(config["vocab_size"]),
            "context": int(config["max_position_embeddings"]),
            "rope_theta": _rope_theta(config), "eps": float(config.get("rms_norm_eps", 1e-6)),
            "tied": bool(config.get("tie_word_embeddings", False)),
            "qkv_bias": example == "qwen"}


def read_config(checkpoint: Path) -> dict:
    try:
        return json.loads((Path(checkpoint) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read {Path(checkpoint) / 'config.json'}: {err}") from None


def check_litert_input(checkpoint: Path, target: str, *, kv_cache_size: int,
                       prefill_lengths: tuple[int, ...]) -> dict:
    """litert_settings of `checkpoint` (config.json only, no weights), also refusing a KV cache
    beyond the model's context or a prefill length beyond the cache."""
    settings = litert_settings(read_config(checkpoint), target)
    if kv_cache_size > settings["context"]:
        raise UserError(f"target {target}: kv_cache_size {kv_cache_size} exceeds the model's "
                        f"context of {settings['context']}")
    if max(prefill_lengths) > kv_cache_size:
        raise UserError(f"target {target}: prefill length {max(prefill_lengths)} exceeds "
                        f"kv_cache_size {kv_cache_size}")
    return settings


def check_target(checkpoint: Path, profile, vocab_from: Path | None = None) -> None:
    """compress/llm/export.py's Converter.check for LLM target `profile` (format tflite)."""
    check_litert_input(checkpoint, profile.name, kv_cache_size=profile.kv_cache_size,
                       prefill_lengths=profile.prefill_lengths)


def build_target(checkpoint: Path, out: Path, profile, vocab_from: Path | None = None
                 ) -> tuple[dict, Path]:
    """compress/llm/export.py's Converter.build: convert_litert with `profile`'s settings."""
    return convert_litert(checkpoint, out, scheme=profile.scheme,
                          kv_cache_size=profile.kv_cache_size,
                          prefill_lengths=tuple(profile.prefill_lengths), target=profile.name)


def model_config(settings: dict, kv_cache_size: int):
    """litert-torch's ModelConfig of `settings` (litert_settings), as the smollm / qwen examples
    spell theirs (`get_model_config`)."""
    import litert_torch.generative.layers.model_config as cfg

    norm = cfg.NormalizationConfig(type=cfg.NormalizationType.RMS_NORM, epsilon=settings["eps"])
    attention = cfg.AttentionConfig(num_heads=settings["heads"], head_dim=settings["head_dim"],
                                    num_query_groups=settings["kv_heads"],
                                    rotary_base=settings["rope_theta"], rotary_percentage=1.0,
                                    qkv_use_bias=settings["qkv_bias"])
    ffn = cfg.FeedForwardConfig(type=cfg.FeedForwardType.GATED,
                                activation=cfg.ActivationConfig(cfg.ActivationType.SILU),
                                intermediate_size=settings["ffn"])
    block = cfg.TransformerBlockConfig(attn_config=attention, ff_config=ffn,
                                       pre_attention_norm_config=norm,
                                       post_attention_norm_config=norm)
    return cfg.ModelConfig(vocab_size=settings["vocab"], num_layers=settings["layers"],
                           max_seq_len=max(settings["context"], kv_cache_size),
                           embedding_dim=settings["hidden"], block_configs=block,
                           final_norm_config=norm,
                           lm_head_share_weight_with_embedding=settings["tied"])


def _import_generative():
    """litert-torch's generative converter modules. Its LoRA module (imported by the converter,
    used only for LoRA signatures, which edgecompress never adds) reads the TFLite flatbuffer
    schema from `tensorflow.lite.python`; litert-torch itself does not depend on TensorFlow and
    ai-edge-litert ships the same generated schema, so it is lent under that name for the one
    import and the stand-in modules are removed again."""
    import importlib.machinery
    import types

    import litert_torch  # noqa: F401 — torch and its dynamo first: they look for tensorflow
    import torch._dynamo  # noqa: F401
    from ai_edge_litert import schema_py_generated

    names = ("tensorflow", "tensorflow.lite", "tensorflow.lite.python",
             "tensorflow.lite.python.schema_py_generated")
    lent = [name for name in names if name not in sys.modules]
    for name in lent:
        sys.modules[name] = types.ModuleType(name)
        sys.modules[name].__spec__ = importlib.machinery.ModuleSpec(name, None)
    sys.modules["tensorflow.lite.python"].schema_py_generated = schema_py_generated
    sys.modules["tensorflow.lite.python.schema_py_generated"] = schema_py_generated
    try:
        from litert_torch.generative.utilities import converter, export_config, model_builder
    finally:
        for name in lent:
            sys.modules.pop(name, None)
    return converter, export_config, model_builder


def _convert(checkpoint: Path, out: Path, scheme: str, kv_cache_size: int,
             prefill_lengths: list[int]) -> Path:
    """The child's work: build the re-authored decoder from `checkpoint`'s weights and convert
    it; returns the .tflite path (the converter names it <prefix>_<quant>_ekv<kv>.tflite)."""
    converter, export_config, model_builder = _import_generative()
    settings = litert_settings(read_config(checkpoint), "litert")
    config = model_config(settings, kv_cache_size)
    names = model_builder.TENSOR_NAMES if settings["tied"] else \
        model_builder.TENSOR_NAMES_WITH_SEPARATE_LM_HEAD
    model = model_builder.build_decoder_only_model(str(checkpoint), config, names,
                                                   mask_cache_size=kv_cache_size)
    out.mkdir(parents=True, exist_ok=True)
    return Path(converter.convert_to_tflite(
        model, output_path=str(out), output_name_prefix="model",
        prefill_seq_len=prefill_lengths, kv_cache_max_len=kv_cache_size,
        quantize=LITERT_SCHEMES[scheme], config=config,
        export_config=export_config.ExportConfig()))


def convert_litert(checkpoint: Path, out: Path, *, scheme: str, kv_cache_size: int,
                   prefill_lengths: tuple[int, ...], target: str = "litert") -> tuple[dict, Path]:
    """Convert HF checkpoint folder `checkpoint` into a .tflite decoder inside folder `out`.

    Returns (the converter's settings, the .tflite path). Raises UserError for a model no
    re-authored decoder takes, and RuntimeError (with the converter's last lines) when the
    child fails.
    """
    if scheme not in LITERT_SCHEMES:
        raise UserError(f"unknown LiteRT scheme {scheme!r} (known: {', '.join(LITERT_SCHEMES)})")
    settings = check_litert_input(checkpoint, target, kv_cache_size=kv_cache_size,
                                  prefill_lengths=prefill_lengths)
    require_litert(f"target {target}", tuple(LITERT_PACKAGES))
    request = {"checkpoint": str(checkpoint), "out": str(out), "scheme": scheme,
               "kv_cache_size": kv_cache_size, "prefill_lengths": list(prefill_lengths)}
    try:
        proc = subprocess.run([sys.executable, "-m", "edgecompress.targets.llm.export_litert",
                               json.dumps(request)], capture_output=True, text=True,
                              timeout=CONVERT_TIMEOUT_S)
    except subprocess.TimeoutExpired:  # the child is killed by now
        raise RuntimeError(f"litert-torch's converter did not finish in {CONVERT_TIMEOUT_S} s "
                           "(SmolLM2-135M took 26 min on a loaded 2-core host)") from None
    lines = proc.stdout.strip().splitlines()
    try:
        path = Path(json.loads(lines[-1])["tflite"]) if proc.returncode == 0 and lines else None
    except (ValueError, KeyError, TypeError):  # a last line that is not the child's reply
        path = None
    if path is None or not path.is_file():
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise RuntimeError(f"litert-torch's converter failed (exit {proc.returncode}): {tail}")
    config = read_config(checkpoint)
    eos = config.get("eos_token_id")
    eos = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
    # what the session masks until the last new token, as the torch reference does
    (path.parent / SIDECAR).write_text(json.dumps({"eos_token_ids": eos}) + "\n",
                                       encoding="utf-8")
    from importlib.metadata import version

    return {"tool": "litert_torch.generative.utilities.converter.convert_to_tflite",
            "litert_torch": version("litert-torch"),
            "ai_edge_quantizer": version("ai-edge-quantizer"), "scheme": scheme,
            "quantize": LITERT_SCHEMES[scheme], "example": settings["example"],
            "kv_cache_size": kv_cache_size, "prefill_lengths": list(prefill_lengths),
            "output_logits_on_prefill": False}, path


def main(argv: list[str] | None = None) -> None:
    """Child entry: one JSON request argument; prints {"tflite": path} as its last line."""
    request = json.loads((argv if argv is not None else sys.argv[1:])[0])
    path = _convert(Path(request["checkpoint"]), Path(request["out"]), request["scheme"],
                    request["kv_cache_size"], request["prefill_lengths"])
    print(json.dumps({"tflite": str(path)}))


if __name__ == "__main__":
    main()
