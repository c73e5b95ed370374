"""Load and save trained encoders — Hugging Face BERT-family checkpoints (uniform or pruned to
per-layer shapes) or the plain PyTorch encoder — as a `LoadedModel` (see `modules`).

Every loaded model is exposed the same way, so HF and plain models travel through the same code.
"""

from __future__ import annotations

from pathlib import Path

import torch

from edgecompress.compress.llm.families import is_decoder_config
from edgecompress.compress.models.arch import FAMILIES
from edgecompress.compress.models.modules import (
    PLAIN_CONFIG,
    ClassifierModule,
    LoadedModel,
    MeanPoolingModule,
    check_out_location,
    check_safetensors,
    check_tokenizer_files,
    one_line,
    read_config_object,
    resolve_model_path,
    resolve_tokenizer_source,
)
from edgecompress.compress.models.shaped import SHAPES_KEY, load_shaped
from edgecompress.compress.models.vision import (
    ImageProcessor,
    is_image_classifier,
    is_vision_config,
    load_vision,
)
from edgecompress.errors import UserError
from edgecompress.fsutil import mark_output


def load_model(spec: str | Path, *, task: str | None = None, num_labels: int | None = None,
               labels: tuple[str, ...] = ()) -> LoadedModel:
    """Load a checkpoint as a runnable module plus tokenizer.

    `task` defaults to what the checkpoint is: a classifier if it has a classification head,
    else a mean-pooling sentence encoder. `num_labels` asks for a (fresh) classification head,
    as fine-tuning does. Raises UserError for anything wrong with the checkpoint.
    """
    path = resolve_model_path(spec)
    vision = _vision_config(path)
    if vision is not None:  # an image classifier: a processor file instead of a tokenizer
        check_safetensors(path)
        if task not in (None, "classification"):
            raise UserError(f"{path}: an image model is a classifier, not a {task} model")
        if SHAPES_KEY in vision and not num_labels:
            return load_shaped(path, vision, task)
        return load_vision(path, vision, num_labels=num_labels, labels=labels)
    check_tokenizer_files(path)
    check_safetensors(path)
    if (path / PLAIN_CONFIG).exists():
        return _load_plain(path)
    return _load_hf(path, task=task, num_labels=num_labels, labels=labels)


def _vision_config(path: Path) -> dict | None:
    """The config of a ViT / DeiT checkpoint at `path`; None for any other checkpoint."""
    if (path / PLAIN_CONFIG).exists() or not (path / "config.json").is_file():
        return None
    config = read_config_object(path / "config.json")
    return config if is_vision_config(config) else None


def _read_hf_config(path: Path) -> dict:
    config = read_config_object(path / "config.json")
    model_type = config.get("model_type")
    if is_decoder_config(config):
        raise UserError(f"unsupported architecture {model_type!r} in {path / 'config.json'} "
                        "for this command: a decoder-only language model, which `edgecompress "
                        "llm inspect|eval|prune` handles")
    if model_type not in FAMILIES:
        raise UserError(f"unsupported architecture {model_type!r} in {path / 'config.json'} "
                        f"(supported: {', '.join(FAMILIES)})")
    return config


def check_checkpoint(spec: str | Path) -> Path:
    """The checkpoint directory `spec` names, checked without loading it (config, tokenizer
    files, safetensors headers); raises UserError like `load_model` would."""
    path = resolve_model_path(spec)
    checkpoint_labels(path)
    check_safetensors(path)
    return path


def checkpoint_labels(spec: str | Path) -> tuple[str, tuple[str, ...]]:
    """(task, class names) a checkpoint declares, read from its config without loading weights;
    raises UserError like `load_model` for a path, config or tokenizer that is not usable."""
    path = resolve_model_path(spec)
    vision = _vision_config(path)
    if vision is not None:
        ImageProcessor.from_dir(path)  # what check_tokenizer_files is to a text model
        if not is_image_classifier(vision):
            raise UserError(f"{path}: a {vision['model_type']} checkpoint loads as an image "
                            "classifier only (architectures lists no *ForImageClassification)")
        return "classification", _id2label(path, vision)
    check_tokenizer_files(path)
    if (path / PLAIN_CONFIG).exists():
        config = read_config_object(path / PLAIN_CONFIG)
        count = config.get("num_labels", 2)
        return "classification", tuple(config.get("labels") or (str(i) for i in range(count)))
    config = _read_hf_config(path)
    if not _is_classifier(config):
        return "embedding", ()
    return "classification", _id2label(path, config)


def _id2label(path: Path, config: dict) -> tuple[str, ...]:
    names = config.get("id2label") or {i: f"LABEL_{i}" for i in range(config.get("num_labels", 2))}
    try:
        return tuple(str(names[k]) for k in sorted(names, key=int))
    except (TypeError, ValueError):
        raise UserError(f"{path / 'config.json'}: id2label keys must be class ids") from None


def _is_classifier(config: dict) -> bool:
    return any(a.endswith("ForSequenceClassification") for a in config.get("architectures") or [])


def _load_hf(path: Path, *, task: str | None, num_labels: int | None,
             labels: tuple[str, ...]) -> LoadedModel:
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    config = _read_hf_config(path)
    if SHAPES_KEY in config and not num_labels:
        # A pruned checkpoint: layers have their own head counts / FFN widths, which one uniform
        # transformers config cannot describe; they are rebuilt before the weights load.
        return load_shaped(path, config, task)
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
        raise UserError(f"cannot load {path}: {_load_error(err, path, task)}") from None
    return LoadedModel(module.eval(), tokenizer, "hf", task, path, labels)


def _load_error(err: Exception, path: Path, task: str) -> str:
    """Our own words for transformers' load errors: its weight-shape and conversion errors end
    "look at the above report", a report logged at a level this package silences."""
    if "above report" not in str(err):
        return one_line(err)
    if "CONVERSION" in str(err):
        return "transformers could not convert its weights to the architecture config.json names"
    try:
        found = _shape_mismatches(path, task)
    except (OSError, ValueError, KeyError, RuntimeError):  # a config transformers cannot build
        found = []
    if not found:
        return "its weights do not have the shapes config.json gives"
    name, in_file, expected = found[0]
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    return (f"weights do not match config.json: {name} is {list(in_file)} in the .safetensors "
            f"file but config.json makes it {list(expected)}{more}; config.json was edited or "
            "belongs to another model")


def _shape_mismatches(path: Path, task: str) -> list[tuple[str, tuple, tuple]]:
    """(tensor, shape in the weights, shape config.json gives) of every tensor that differs;
    reads the safetensors headers and builds the model on the meta device (no weights)."""
    import json

    from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

    in_file = {}
    for file in sorted(path.glob("*.safetensors")):
        with open(file, "rb") as handle:
            header = json.loads(handle.read(int.from_bytes(handle.read(8), "little")))
        in_file.update({k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"})
    config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    with torch.device("meta"):
        model = (AutoModelForSequenceClassification if task == "classification"
                 else AutoModel).from_config(config)
    prefix = f"{model.base_model_prefix}."
    expected = {k.removeprefix(prefix): tuple(v.shape) for k, v in model.state_dict().items()}
    return [(key, shape, expected[key.removeprefix(prefix)]) for key, shape in in_file.items()
            if key.removeprefix(prefix) in expected
            and expected[key.removeprefix(prefix)] != shape]


def _load_plain(path: Path) -> LoadedModel:
    from transformers import AutoTokenizer

    from edgecompress.compress.models.encoder import load_encoder

    read_config_object(path / PLAIN_CONFIG)
    try:
        model = load_encoder(path)
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as err:
        raise UserError(f"cannot load plain encoder {path}: {one_line(err)}") from None
    labels = model.config.labels or tuple(str(i) for i in range(model.config.num_labels))
    return LoadedModel(model, tokenizer, "plain", "classification", path, labels)


def save_model(loaded: LoadedModel, directory: Path) -> None:
    """Write a loadable checkpoint (weights as safetensors, config, tokenizer) into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    if loaded.kind == "plain":
        from edgecompress.compress.models.encoder import save_encoder

        save_encoder(loaded.module, directory)
    else:
        loaded.module.hf.save_pretrained(str(directory), safe_serialization=True)
    loaded.tokenizer.save_pretrained(str(directory))
    mark_output(directory, "checkpoint")  # so --force may replace it later, and only it


def create_plain_encoder(out: Path, *, tokenizer_from: str, d_model: int = 256, n_heads: int = 8,
                         ffn: int = 1024, n_layers: int = 4, max_len: int = 256,
                         num_labels: int = 2, seed: int = 0) -> LoadedModel:
    """A new plain encoder whose vocabulary is the tokenizer of `tokenizer_from`, saved to `out`."""
    from transformers import AutoTokenizer

    from edgecompress.compress.models.encoder import EncoderClassifier, EncoderConfig

    check_out_location(out)
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out} already exists and is not empty")
    shape = dict(d_model=d_model, n_heads=n_heads, ffn=ffn, n_layers=n_layers, max_len=max_len,
                 num_labels=num_labels)
    try:
        EncoderConfig.uniform(1, **shape)  # a bad shape fails before any file is read
    except ValueError as err:
        raise UserError(f"invalid encoder shape: {err}") from None
    source = resolve_tokenizer_source(tokenizer_from)
    check_tokenizer_files(source)
    tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=True)
    config = EncoderConfig.uniform(len(tokenizer), **shape,
                                   pad_token_id=tokenizer.pad_token_id or 0)
    torch.manual_seed(seed)
    loaded = LoadedModel(EncoderClassifier(config).eval(), tokenizer, "plain", "classification",
                         out, tuple(str(i) for i in range(num_labels)))
    save_model(loaded, out)
    return loaded
