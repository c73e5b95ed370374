"""Language-model target profiles: `kind = "llm"` TOML files beside the encoder profiles in
targets/profiles/ (x86-cpu-llm: ONNX Runtime GenAI; llamacpp: GGUF; arm64-phone-llm: LiteRT),
parsed once (with profiles.py's parser) into a frozen, validated LLMProfile — the one profile
type of every LLM target, whatever its format.

An LLM target names its format and runtime, the weight scheme and its builder settings, the
threads it runs with, and its verification gate: mean KL divergence and top-1 agreement of the
next-token distributions against the torch reference on held-out text (not max |diff|: a 4-bit
model's logits differ by whole units while its predictions hold). A `[gate.<scheme>]` table
sets other thresholds for one scheme (an f32 GGUF must be the checkpoint itself).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from edgecompress.errors import UserError
from edgecompress.targets.llm.export_executorch import GROUP_SIZES
from edgecompress.targets.llm.export_executorch import SCHEMES as PTE_SCHEMES
from edgecompress.targets.llm.export_litert import (
    DEFAULT_KV_CACHE,
    DEFAULT_PREFILL_LENGTHS,
    LITERT_SCHEMES,
)
from edgecompress.targets.llm.export_ortgenai import BUILDER_SCHEMES
from edgecompress.targets.llm.gguf_export import SCHEMES as GGUF_SCHEMES
from edgecompress.targets.profiles import (
    fields_from_toml,
    read_profile_toml,
    shipped_profiles,
    split_scheme_tables,
)

# format -> (runtime, its schemes)
LLM_FORMATS: dict[str, tuple[str, tuple[str, ...]]] = {
    "onnx-genai": ("onnxruntime-genai", tuple(BUILDER_SCHEMES)),
    "gguf": ("llama.cpp", tuple(GGUF_SCHEMES)),
    "tflite": ("litert", tuple(LITERT_SCHEMES)),
    "pte": ("executorch", tuple(PTE_SCHEMES)),
}
# ONNX Runtime GenAI's builder settings (MatMulNBits): blockwise quantization's block, and the
# activations' precision (fp32, fp16, bf16, int8); the defaults are the builder's CPU ones
BLOCK_SIZES = (16, 32, 64, 128, 256)
ACCURACY_LEVELS = (1, 2, 3, 4)
BUILDER_DEFAULTS = {"block_size": 32, "accuracy_level": 4}
# ExecuTorch's settings: the 8da4w weight group (optimum-executorch's default 32) and the static
# KV cache's length, which is the artifact's whole context (prompt + new tokens)
PTE_DEFAULTS = {"group_size": 32, "max_context": 1024}


@dataclass(frozen=True)
class LLMGate:
    """What an LLM artifact must meet against the torch reference on `windows` windows of
    `context` held-out tokens: mean KL(reference || artifact) <= kl_max and top-1 agreement >=
    top1_min; the greedy tokens of the fixed prompts (`new_tokens` each) are recorded."""

    kl_max: float
    top1_min: float
    windows: int
    context: int
    new_tokens: int


@dataclass(frozen=True)
class LLMProfile:
    """One language-model target."""

    name: str
    description: str
    format: str  # a key of LLM_FORMATS
    runtime: str
    threads: int
    scheme: str  # one of LLM_FORMATS[format]'s schemes
    kl_max: float
    top1_min: float
    gate_windows: int = 8
    gate_context: int = 256
    gate_new_tokens: int = 16
    # (scheme, kl_max, top1_min): the `[gate.<scheme>]` tables, thresholds of that scheme
    gate_overrides: tuple[tuple[str, float, float], ...] = ()
    block_size: int | None = None  # onnx-genai only (None there: BUILDER_DEFAULTS)
    accuracy_level: int | None = None  # onnx-genai only
    # tflite only (None there: litert-torch's converter defaults): the KV cache's length, which
    # is the artifact's context, and one prefill signature per length
    kv_cache_size: int | None = None
    prefill_lengths: tuple[int, ...] | None = None
    group_size: int | None = None  # pte only (None there: PTE_DEFAULTS)
    max_context: int | None = None  # pte only: the static KV cache's positions
    size_mb: float | None = None
    source: Path | None = None
    kind: str = "llm"

    def __post_init__(self) -> None:
        if self.format not in LLM_FORMATS:
            raise ValueError(f"format: expected one of {', '.join(LLM_FORMATS)}, "
                             f"got {self.format!r}")
        runtime, schemes = LLM_FORMATS[self.format]
        if self.runtime != runtime:
            raise ValueError(f"runtime: expected {runtime!r} for {self.format}, "
                             f"got {self.runtime!r}")
        if self.scheme not in schemes:
            raise ValueError(f"scheme: expected one of {', '.join(schemes)}, got {self.scheme!r}")
        for key, value, low in (("threads", self.threads, 1),
                                ("gate.windows", self.gate_windows, 1),
                                ("gate.context", self.gate_context, 8),
                                ("gate.new_tokens", self.gate_new_tokens, 0)):
            if value < low:
                raise ValueError(f"{key}: expected an integer >= {low}, got {value}")
        for where, kl_max, top1_min in (("", self.kl_max, self.top1_min), *self.gate_overrides):
            if where and where not in schemes:
                raise ValueError(f"gate.{where}: not a scheme of {self.format} (expected one "
                                 f"of {', '.join(schemes)})")
            prefix = f"gate.{where}." if where else "gate."
            if not kl_max > 0:
                raise ValueError(f"{prefix}kl_max: expected a number > 0, got {kl_max}")
            if not 0.0 <= top1_min <= 1.0:
                raise ValueError(f"{prefix}top1_min: expected a fraction in [0, 1], got "
                                 f"{top1_min}")
        self._check_builder_settings()
        self._check_litert_settings()
        self._check_pte_settings()
        if self.size_mb is not None and not self.size_mb > 0:
            raise ValueError(f"budgets.size_mb: expected a number > 0, got {self.size_mb}")

    def _check_builder_settings(self) -> None:
        """block_size / accuracy_level: ONNX Runtime GenAI's, defaulted there, refused
        elsewhere."""
        if self.format != "onnx-genai":
            for key in BUILDER_DEFAULTS:
                if getattr(self, key) is not None:
                    raise ValueError(f"{key}: an ONNX Runtime GenAI setting, not one of "
                                     f"{self.format}")
            return
        for key, value in BUILDER_DEFAULTS.items():
            if getattr(self, key) is None:
                object.__setattr__(self, key, value)  # frozen: the builder's default, once
        if self.block_size not in BLOCK_SIZES:
            raise ValueError(f"block_size: expected one of {BLOCK_SIZES}, got {self.block_size}")
        if self.accuracy_level not in ACCURACY_LEVELS:
            raise ValueError(f"accuracy_level: expected one of {ACCURACY_LEVELS}, got "
                             f"{self.accuracy_level}")

    def _check_litert_settings(self) -> None:
        """kv_cache_size / prefill_lengths: LiteRT's, defaulted there, refused elsewhere."""
        if self.format != "tflite":
            for key in ("kv_cache_size", "prefill_lengths"):
                if getattr(self, key) is not None:
                    raise ValueError(f"{key}: a LiteRT setting, not one of {self.format}")
            return
        if self.kv_cache_size is None:
            object.__setattr__(self, "kv_cache_size", DEFAULT_KV_CACHE)  # frozen: once
        if self.prefill_lengths is None:
            object.__setattr__(self, "prefill_lengths", DEFAULT_PREFILL_LENGTHS)
        lengths = tuple(self.prefill_lengths)
        if not (lengths and all(isinstance(n, int) and n >= 1 for n in lengths)
                and list(lengths) == sorted(set(lengths))):
            raise ValueError(f"prefill_lengths: expected increasing integers >= 1, got "
                             f"{list(lengths)}")
        if self.kv_cache_size < max(lengths) or self.kv_cache_size < self.gate_context:
            raise ValueError(f"kv_cache_size: expected at least the longest prefill "
                             f"({max(lengths)}) and gate.context ({self.gate_context}), got "
                             f"{self.kv_cache_size}")
    def _check_pte_settings(self) -> None:
        """group_size / max_context: ExecuTorch's, defaulted there, refused elsewhere."""
        if self.format != "pte":
            for key in PTE_DEFAULTS:
                if getattr(self, key) is not None:
                    raise ValueError(f"{key}: an ExecuTorch setting, not one of {self.format}")
            return
        for key, value in PTE_DEFAULTS.items():
            if getattr(self, key) is None:
                object.__setattr__(self, key, value)  # frozen: the default, once
        if self.group_size not in GROUP_SIZES:
            raise ValueError(f"group_size: expected one of {GROUP_SIZES}, got {self.group_size}")
        if self.max_context < self.gate_context:  # the gate's windows must fit the cache
            raise ValueError(f"max_context: expected an integer >= gate.context "
                             f"({self.gate_context}), got {self.max_context}")

    @property
    def artifact_context(self) -> int | None:
        """Tokens the artifact itself holds (its KV cache: pte's max_context, tflite's
        kv_cache_size), None where the model's own context is the limit."""
        return self.max_context or self.kv_cache_size

    @property
    def gate(self) -> LLMGate:
        """The gate of this profile's scheme (its `[gate.<scheme>]` thresholds when it has
        them)."""
        kl_max, top1_min = next(((kl, top1) for where, kl, top1 in self.gate_overrides
                                 if where == self.scheme), (self.kl_max, self.top1_min))
        return LLMGate(kl_max, top1_min, self.gate_windows, self.gate_context,
                       self.gate_new_tokens)

    def with_scheme(self, scheme: str) -> LLMProfile:
        """This target with another of its format's schemes; UserError listing them otherwise."""
        schemes = LLM_FORMATS[self.format][1]
        if scheme not in schemes:
            raise UserError(f"target {self.name} has no scheme {scheme!r} (its format "
                            f"{self.format} has: {', '.join(schemes)})")
        return replace(self, scheme=scheme)

    def to_json(self) -> dict:
        return {key: (str(value) if isinstance(value, Path) else value)
                for key, value in self.__dict__.items()}


# The TOML layout (profiles.fields_from_toml): table -> key -> (field, type, required)
_SCHEMA: dict[str, dict[str, tuple[str, type, bool]]] = {
    "": {"name": ("name", str, True), "description": ("description", str, True),
         "format": ("format", str, True), "runtime": ("runtime", str, True),
         "threads": ("threads", int, True), "scheme": ("scheme", str, True),
         "block_size": ("block_size", int, False),
         "accuracy_level": ("accuracy_level", int, False),
         "kv_cache_size": ("kv_cache_size", int, False),
         "prefill_lengths": ("prefill_lengths", tuple, False),
         "group_size": ("group_size", int, False), "max_context": ("max_context", int, False)},
    "gate": {"kl_max": ("kl_max", float, True), "top1_min": ("top1_min", float, True),
             "windows": ("gate_windows", int, False), "context": ("gate_context", int, False),
             "new_tokens": ("gate_new_tokens", int, False)},
    "budgets": {"size_mb": ("size_mb", float, False)},
}


def _split_gate(data: dict) -> tuple[dict, tuple[tuple[str, float, float], ...]]:
    """Pull the `[gate.<scheme>]` sub-tables out of `data`: (data without them, overrides)."""
    data, tables = split_scheme_tables(data, "gate")
    overrides = []
    for scheme, table in tables.items():
        try:
            values = fields_from_toml(table, {"": {k: _SCHEMA["gate"][k] for k in
                                                   ("kl_max", "top1_min")}}, ())
        except ValueError as err:
            raise ValueError(f"gate.{scheme}.{err}") from None
        overrides.append((scheme, values["kl_max"], values["top1_min"]))
    return data, tuple(overrides)


def _load(path: Path) -> LLMProfile:
    kind, data = read_profile_toml(path)
    if kind != "llm":
        raise UserError(f"target {data.get('name', path.stem)} is not a language-model target "
                        f"(LLM targets: {', '.join(shipped_profiles('llm'))})")
    try:
        data, overrides = _split_gate(data)
        return LLMProfile(**fields_from_toml(data, _SCHEMA, ("gate",)),
                          gate_overrides=overrides, source=path)
    except ValueError as err:
        raise UserError(f"{path}: {err}") from None


def list_llm_profiles() -> list[LLMProfile]:
    """Every shipped LLM target profile, sorted by name."""
    return [_load(path) for path in shipped_profiles("llm").values()]


def load_llm_profile(name_or_path: str | Path) -> LLMProfile:
    """A shipped LLM target by name (`x86-cpu-llm`) or a user's `.toml` file; UserError for an
    unknown name, an encoder target, or a malformed file (naming the key)."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or text.endswith(".toml") or "/" in text:
        if not Path(text).is_file():
            raise UserError(f"target profile not found: {text}")
        return _load(Path(text))
    llm, encoders = shipped_profiles("llm"), shipped_profiles("encoder")
    if text in llm:
        return _load(llm[text])
    if text in encoders:
        return _load(encoders[text])  # says it is not a language-model target
    raise UserError(f"unknown LLM target {text!r} (known: {', '.join(llm)}; or pass a path "
                    f"to a .toml profile)")
