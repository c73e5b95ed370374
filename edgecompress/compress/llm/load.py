"""Load, inspect and save decoder-only language models.

A model is named by a registry name (`smollm2-135m`, see sources.py), a `.gguf` file (converted
once into a cached safetensors checkpoint, see gguf.py) or a checkpoint directory (config.json +
safetensors + tokenizer) of a family in DECODERS. Remote code is never run and the hub never
reached (`local_files_only=True`, `trust_remote_code=False`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from edgecompress.compress.llm.families import Shape, decoder_for, shape_of
from edgecompress.compress.llm.gguf import convert_gguf
from edgecompress.compress.llm.sources import MODEL_SOURCES, fetch_model
from edgecompress.compress.models.modules import (
    check_safetensors,
    check_tokenizer_files,
    one_line,
    read_config_object,
)
from edgecompress.errors import UserError
from edgecompress.fsutil import mark_output


@dataclass(frozen=True)
class LoadedLM:
    """A decoder ready to run: `model(input_ids) .logits (B, S, vocab)` and its tokenizer."""

    model: nn.Module  # a transformers *ForCausalLM in eval mode, fp32
    tokenizer: object  # transformers.PreTrainedTokenizerBase
    path: Path  # the checkpoint directory it was loaded from
    source: str  # what the user named: registry name, .gguf file or directory

    @property
    def shape(self) -> Shape:
        return shape_of(self.model.config)


def resolve_lm(spec: str | Path, cache_dir: Path | None = None) -> Path:
    """The checkpoint directory `spec` names, checked without loading weights (a registry name
    or GGUF file is fetched / converted first, once). Raises UserError for anything unusable."""
    text = str(spec)
    if text in MODEL_SOURCES:
        gguf = fetch_model(text, cache_dir)
        return convert_gguf(gguf, cache_dir, sha256=MODEL_SOURCES[text].gguf_sha256)
    path = Path(spec)
    if not path.exists():
        raise UserError(f"model not found: {path} (not a path, nor a registry model: "
                        f"{', '.join(MODEL_SOURCES)})")
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise UserError(f"{path}: expected a checkpoint directory or a .gguf file")
        return convert_gguf(path, cache_dir)
    check_lm_dir(path)
    return path


def check_lm_dir(path: Path) -> dict:
    """The config dict of decoder checkpoint directory `path`, checked (family, tokenizer files,
    safetensors headers) without loading weights; UserError otherwise."""
    if not (path / "config.json").is_file():
        raise UserError(f"{path} has no config.json: not a checkpoint")
    config = read_config_object(path / "config.json")
    decoder_for(config, str(path / "config.json"))
    if config.get("auto_map"):
        raise UserError(f"{path / 'config.json'} asks for remote code (auto_map); "
                        "edgecompress never runs it")
    check_tokenizer_files(path)
    check_safetensors(path)
    return config


def read_lm_config(path: Path):
    """The transformers config of checkpoint directory `path` (no weights read)."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(str(path), local_files_only=True,
                                          trust_remote_code=False)
    except (OSError, ValueError, KeyError) as err:
        raise UserError(f"cannot read {path / 'config.json'}: {one_line(err)}") from None


def load_tokenizer(path: Path):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path), local_files_only=True,
                                             trust_remote_code=False)
    except (OSError, ValueError) as err:
        raise UserError(f"cannot load the tokenizer of {path}: {one_line(err)}") from None


def load_lm(spec: str | Path, cache_dir: Path | None = None, *, tokenizer=None) -> LoadedLM:
    """Load decoder `spec` as fp32 *ForCausalLM + tokenizer; raises UserError when it cannot
    (a weight the checkpoint lacks is refused, never initialised at random)."""
    path = resolve_lm(spec, cache_dir)
    tokenizer = tokenizer or load_tokenizer(path)
    return LoadedLM(load_weights(path), tokenizer, path, str(spec))


def load_weights(path: Path) -> nn.Module:
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        model, info = AutoModelForCausalLM.from_pretrained(
            str(path), use_safetensors=True, local_files_only=True, trust_remote_code=False,
            dtype="float32", output_loading_info=True)
    except (OSError, ValueError, RuntimeError) as err:  # RuntimeError: weight shape mismatch
        raise UserError(f"cannot load {path}: {one_line(err)}") from None
    tied = {"lm_head.weight"} if model.config.tie_word_embeddings else set()
    missing = sorted(set(info.get("missing_keys") or ()) - tied)
    if missing:
        raise UserError(f"{path} lacks {len(missing)} weights the model needs (first: "
                        f"{missing[0]}); is it a *ForCausalLM checkpoint?")
    return model.eval()


def parameter_count(model: nn.Module) -> int:
    """Parameters of `model`, a tied embedding counted once."""
    return sum(p.numel() for p in model.parameters())  # parameters() yields shared ones once


def inspect_lm(loaded: LoadedLM) -> dict:
    """Facts about a loaded decoder: shape, parameters, fp32 size, where it came from."""
    params = parameter_count(loaded.model)
    embedding = loaded.model.get_input_embeddings().weight.numel()
    return {"model": loaded.source, "checkpoint": str(loaded.path), **loaded.shape.to_json(),
            "params": params, "embedding_params": embedding, "fp32_mb": params * 4 / 1e6,
            "tokenizer": type(loaded.tokenizer).__name__, "tokenizer_size": len(loaded.tokenizer)}


def save_lm(loaded: LoadedLM, out: Path) -> None:
    """Write `loaded` as a safetensors checkpoint (config, weights, tokenizer) into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    loaded.model.save_pretrained(str(out), safe_serialization=True)
    loaded.tokenizer.save_pretrained(str(out))
    mark_output(out, "checkpoint")
