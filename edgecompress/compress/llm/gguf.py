"""GGUF files in: the architecture read from the header (milliseconds, no extra needed, so an
unsupported file is refused before anything loads), and a one-time conversion into a cached
safetensors checkpoint keyed by the file's sha256.

transformers (`from_pretrained(..., gguf_file=)`, which needs the `gguf` and `accelerate`
packages) dequantizes every tensor to fp32; the result is a plain *ForCausalLM whose weights
already carry the file's quantization rounding. It is saved once under
`<cache root>/llm/gguf-<sha256[:16]>/` and every later load reads that checkpoint (SmolLM2-135M:
~45 s to convert on a busy 2-core host, a few seconds to reload).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from edgecompress.compress.llm.families import GGUF_ARCHS
from edgecompress.errors import UserError
from edgecompress.fsutil import (
    atomic_directory,
    atomic_write_json,
    cache_root,
    mark_output,
    sha256_file,
)

EXTRA_HINT = "pip install 'edgecompress[llm]'"
_MAGIC = b"GGUF"
# GGUF value types -> struct format of a scalar (8 = string, 9 = array are handled apart)
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q",
            12: "d"}
SOURCE_FILE = "gguf_source.json"


def require_llm_extra(what: str) -> None:
    """Raise UserError naming the extra unless `gguf` and `accelerate` import."""
    import importlib.util

    missing = [m for m in ("gguf", "accelerate") if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(f"{what} needs {' and '.join(missing)}: {EXTRA_HINT}")


def _string(handle) -> str:
    (length,) = struct.unpack("<Q", handle.read(8))
    return handle.read(length).decode("utf-8", errors="replace")


def _skip(handle, kind: int) -> None:
    if kind == 8:
        _string(handle)
    elif kind == 9:
        inner, count = struct.unpack("<IQ", handle.read(12))
        if inner in _SCALARS:
            handle.seek(count * struct.calcsize("<" + _SCALARS[inner]), 1)
        else:
            for _ in range(count):
                _skip(handle, inner)
    elif kind in _SCALARS:
        handle.seek(struct.calcsize("<" + _SCALARS[kind]), 1)
    else:
        raise ValueError(f"unknown GGUF value type {kind}")


def read_gguf_header(path: Path) -> dict:
    """The scalar and string metadata of a GGUF file (arrays such as the vocabulary skipped).

    Raises UserError when the file is not GGUF (bad magic, truncated, unknown value type).
    """
    meta = {}
    try:
        with open(path, "rb") as handle:
            if handle.read(4) != _MAGIC:
                raise UserError(f"{path} is not a GGUF file (no GGUF magic bytes)")
            version, _tensors, count = struct.unpack("<IQQ", handle.read(20))
            for _ in range(count):
                key = _string(handle)
                (kind,) = struct.unpack("<I", handle.read(4))
                if kind == 8:
                    meta[key] = _string(handle)
                elif kind in _SCALARS:
                    fmt = "<" + _SCALARS[kind]
                    (meta[key],) = struct.unpack(fmt, handle.read(struct.calcsize(fmt)))
                else:
                    _skip(handle, kind)
    except (struct.error, ValueError, UnicodeDecodeError) as err:
        raise UserError(f"{path} is not a readable GGUF file ({err})") from None
    meta["gguf.version"] = version
    return meta


def check_gguf(path: Path) -> dict:
    """The header of a GGUF file whose architecture this package loads; UserError otherwise."""
    meta = read_gguf_header(path)
    arch = meta.get("general.architecture")
    if arch not in GGUF_ARCHS:
        raise UserError(f"{path}: GGUF architecture {arch!r} is not supported (supported: "
                        f"{', '.join(GGUF_ARCHS)})")
    if arch == "llama" and "mistral" in str(meta.get("general.name", "")).lower():
        # transformers reads these as Mistral, a family not handled here
        raise UserError(f"{path}: a Mistral GGUF (architecture 'llama', name "
                        f"{meta['general.name']!r}) is not supported")
    return meta


def converted_dir(sha256: str, cache_dir: Path | None = None) -> Path:
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    return root / "llm" / f"gguf-{sha256[:16]}"


def convert_gguf(path: Path, cache_dir: Path | None = None, *, sha256: str | None = None) -> Path:
    """The cached safetensors checkpoint of GGUF file `path`, converted on first use.

    Raises UserError for an unsupported architecture or a missing extra (before reading any
    tensor), and when transformers cannot read the file.
    """
    check_gguf(path)
    sha256 = sha256 or sha256_file(path)
    out = converted_dir(sha256, cache_dir)
    source = out / SOURCE_FILE
    if source.is_file() and json.loads(source.read_text()).get("sha256") == sha256:
        return out
    require_llm_extra(f"loading {path.name}")
    model, tokenizer = _load_gguf(path)
    with atomic_directory(out) as tmp:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        atomic_write_json(tmp / SOURCE_FILE, {"gguf": path.name, "sha256": sha256,
                                              "note": "fp32 weights dequantized from the GGUF: "
                                                      "they carry its quantization rounding"})
        mark_output(tmp, "checkpoint")
    return out


def _load_gguf(path: Path):
    """(fp32 *ForCausalLM, tokenizer) from a GGUF file through transformers."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    folder, name = str(path.parent), path.name
    try:
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, local_files_only=True,
                                                     dtype="float32")
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        raise UserError(f"cannot load {path}: {' '.join(str(err).split())[:300]}") from None
    # The weights are plain fp32 tensors by now; only the "quantized with gguf" marker keeps
    # save_pretrained from writing them.
    model.hf_quantizer.remove_quantization_config(model)
    model.config.name_or_path = ""
    return model.eval(), tokenizer
