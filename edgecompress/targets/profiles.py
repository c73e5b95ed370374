"""Edge target profiles: one TOML file per target, loaded into a frozen, validated `Profile`.

A profile says where an artifact goes and how it runs there: format and runtime, quantization
scheme, threads, the input shape policy, parity tolerances and budgets. The shipped ones live in
`targets/profiles/*.toml`; users can pass a path to their own file. Files are parsed once, here,
and every mistake in them becomes a one-line `UserError` naming the file, the key and what was
expected.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from edgecompress.errors import UserError
from edgecompress.fsutil import safe_name
from edgecompress.targets.schemes import SCHEMES, Scheme

PROFILE_DIR = Path(__file__).parent / "profiles"

FORMATS = ("onnx", "tflite", "pte", "openvino")
RUNTIMES = {"onnx": ("onnxruntime",), "tflite": ("litert",), "pte": ("executorch",),
            "openvino": ("openvino",)}
# The file an artifact is named by; an OpenVINO IR is `<name>.xml` (the graph) plus `<name>.bin`
# (the weights) beside it (runtime_util.artifact_files lists both)
SUFFIXES = {"onnx": ".onnx", "tflite": ".tflite", "pte": ".pte", "openvino": ".xml"}
# dynamic: any batch and sequence; fixed: exactly batch x seq_len (padded); dynamic-seq: exactly
# `batch` rows of any length up to seq_len (ExecuTorch plans its memory for the longest)
SHAPE_POLICIES = ("dynamic", "fixed", "dynamic-seq")
IO_DTYPES = ("float", "int8")
INFERENCE_PRECISIONS = ("f32", "bf16")  # OpenVINO CPU plugin's INFERENCE_PRECISION_HINT
VERIFY_ISAS = ("arm64",)  # ISAs targets/isas/ can emulate (edgecompress verify)
CALIBRATION_METHODS = {"onnx": ("minmax", "entropy", "percentile"), "tflite": ("minmax",),
                       "pte": ("minmax",),
                       # NNCF's defaults: weights min-max per channel, activations the mean over
                       # samples of each one's min and max
                       "openvino": ("mean-minmax",)}
# Formats whose toolchain is an optional extra: format -> (toolchain, module that must import,
# pip extra); targets/extras.py says how to enable them
OPTIONAL_FORMATS = {"pte": ("ExecuTorch", "executorch.runtime", "executorch"),
                    "onnx-genai": ("ONNX Runtime GenAI", "onnxruntime_genai", "llm"),
                    # gguf writes the file, llama.cpp quantizes and runs it
                    "gguf": ("llama.cpp", ("llama_cpp", "gguf"), "llm"),
                    # NNCF quantizes, OpenVINO runs: the extra installs both, one is not enough
                    "openvino": ("OpenVINO", ("openvino", "nncf"), "openvino")}


# What a profile file targets: an encoder (this module's Profile) or a language model
# (targets/llm/profile.py's LLMProfile, `kind = "llm"` in the file); files without `kind` are
# encoder targets
KINDS = ("encoder", "llm")

# Real held-out sentences an int8 gate measures agreement on by default (profile `[parity] rows`)
GATE_ROWS = 128
# How a gate below full agreement (min_agreement < 1) decides: on the 95 % Wilson interval of the
# agreement over its rows, refusing only when the upper bound is below min_agreement, i.e. when
# the sample shows the artifact disagrees more than allowed. A point estimate flips on noise near
# the bound (136 rows: 89.0 % is [82.6, 93.2]); the interval is recorded with every verdict.
AGREEMENT_RULE = "refuse when the 95 % Wilson upper bound of the agreement < min_agreement"
MIN_OPSET = 17  # LayerNormalization is a single op from 17; the dynamo exporter targets >= 18


@dataclass(frozen=True)
class Gate:
    """What an artifact must meet on the verification sample to be kept.

    Float schemes: max |diff| <= tolerance and argmax agreement >= min_agreement. int8 schemes:
    agreement >= min_agreement and relative error <= max_rel_error (max |diff| is reported).
    Agreement below 1 is judged on its interval (AGREEMENT_RULE); min_agreement = 1 stays exact.
    Embedding outputs (sentence encoders) are gated on every row's cosine >= min_cosine instead
    of argmax agreement.
    """

    tolerance: float
    min_agreement: float
    max_rel_error: float
    int8: bool
    min_cosine: float = 0.9999


@dataclass(frozen=True)
class Profile:
    """One edge target. `batch` x `seq_len` is the fixed input shape (bench shape if dynamic)."""

    name: str
    description: str
    format: str  # "onnx" | "tflite" | "pte" | "openvino"
    runtime: str  # "onnxruntime" | "litert" | "executorch" | "openvino"
    threads: int
    scheme: str  # one of SCHEMES[format]
    shape: str  # "dynamic" | "fixed" | "dynamic-seq"
    batch: int
    seq_len: int
    tolerance: float  # max |artifact - torch| on the outputs
    min_agreement: float  # fraction of rows whose argmax must match torch
    opset: int | None = None  # ONNX only
    size_mb: float | None = None
    latency_ms: float | None = None
    ram_mb: float | None = None
    source: Path | None = None  # the file it was loaded from
    schemes: tuple[str, ...] = ()  # what the device can run; () = every scheme of the format
    io_dtype: str = "float"  # "int8": quantized logits leave the artifact as int8 (edgetpu)
    integer_only: bool = False  # preflight: every op of the artifact must be integer
    calibration_samples: int = 256  # real sentences drawn for static schemes
    # real held-out sentences a calibrated (static) scheme's gate measures agreement on, beside
    # the fixed parity sentences; the gate decides on their Wilson interval (export._check_gate)
    gate_rows: int = GATE_ROWS
    calibration_method: str = "minmax"  # one of CALIBRATION_METHODS[format]
    # (scheme, tolerance, min_agreement, max_rel_error or None)
    parity_overrides: tuple[tuple, ...] = ()
    # Fixed shapes: the sequence lengths the artifact carries a signature for, ascending, the
    # last = seq_len; a request runs on the shortest that holds it (() = seq_len only)
    buckets: tuple[int, ...] = ()
    verify_isa: str | None = None  # the ISA `edgecompress verify` runs it on, emulated
    # openvino: the precision OpenVINO runs the ops left in float in ("f32" or "bf16"; None: the
    # CPU's default, bf16 on AVX512-BF16); written into the IR, recorded in manifest and bench
    inference_precision: str | None = None

    def __post_init__(self) -> None:
        # Every message starts with the (TOML) key so the loader can prefix the file name.
        _check_choice("format", self.format, FORMATS)
        _check_choice("runtime", self.runtime, RUNTIMES[self.format])
        _check_choice("io_dtype", self.io_dtype, IO_DTYPES)
        if self.verify_isa is not None:
            _check_choice("verify_isa", self.verify_isa, VERIFY_ISAS)
        if self.inference_precision is not None:
            if self.format != "openvino":
                raise ValueError(f"inference_precision: applies to openvino profiles only, "
                                 f"not {self.format}")
            _check_choice("inference_precision", self.inference_precision,
                          INFERENCE_PRECISIONS)
        _check_choice("calibration.method", self.calibration_method,
                      CALIBRATION_METHODS[self.format])
        if self.gate_rows < 1:
            raise ValueError(f"parity.rows: expected a positive integer, got {self.gate_rows}")
        if self.calibration_samples < 1:
            raise ValueError(f"calibration.samples: expected a positive integer, "
                             f"got {self.calibration_samples}")
        for name, tolerance, agreement, rel in self.parity_overrides:
            _check_choice(f"parity.{name}", name, tuple(SCHEMES[self.format]))
            if not tolerance > 0 or not 0.0 <= agreement <= 1.0 or not (rel is None or rel > 0):
                raise ValueError(f"parity.{name}: expected tolerance > 0, min_agreement in "
                                 f"[0, 1] and max_rel_error > 0, got {tolerance}, {agreement} "
                                 f"and {rel}")
        _check_choice("shape.policy", self.shape, SHAPE_POLICIES)
        # The name becomes a folder (run_dir/artifacts/<name>): one safe path component only.
        safe_name(self.name, "name")
        for key, value in (("threads", self.threads), ("shape.batch", self.batch),
                           ("shape.seq_len", self.seq_len)):
            if value < 1:
                raise ValueError(f"{key}: expected a positive integer, got {value}")
        if self.format == "tflite" and self.shape != "fixed":
            raise ValueError("shape.policy: expected 'fixed' for tflite "
                             "(litert-torch converts static shapes only)")
        self._check_buckets()
        if (self.format == "pte") != (self.shape == "dynamic-seq"):
            raise ValueError(f"shape.policy: 'dynamic-seq' is for pte profiles only, and pte "
                             f"profiles use it; got {self.shape!r} for {self.format}")
        if self.format in ("pte", "openvino") and self.integer_only:
            raise ValueError(f"integer_only: preflight reads onnx and tflite artifacts, "
                             f"not {self.format}")
        if self.format == "onnx" and (self.opset is None or self.opset < MIN_OPSET):
            raise ValueError(f"opset: expected an integer >= {MIN_OPSET} for onnx, "
                             f"got {self.opset}")
        if self.format != "onnx" and self.opset is not None:
            raise ValueError(f"opset: applies to onnx profiles only, not {self.format}")
        for name in self.schemes:
            _check_choice("schemes", name, tuple(SCHEMES[self.format]))
        _check_choice("scheme", self.scheme, self.runnable_schemes)
        if not self.tolerance > 0:
            raise ValueError(f"parity.tolerance: expected a number > 0, got {self.tolerance}")
        if not 0.0 <= self.min_agreement <= 1.0:
            raise ValueError(f"parity.min_agreement: expected a fraction in [0, 1], "
                             f"got {self.min_agreement}")
        for key in ("size_mb", "latency_ms", "ram_mb"):
            value = getattr(self, key)
            if value is not None and not value > 0:
                raise ValueError(f"budgets.{key}: expected a number > 0, got {value}")

    def _check_buckets(self) -> None:
        if not self.buckets:
            return
        if self.format != "tflite":
            raise ValueError(f"shape.buckets: apply to tflite profiles only, not {self.format} "
                             f"(ONNX and OpenVINO artifacts take any sequence length)")
        if list(self.buckets) != sorted(set(self.buckets)) or self.buckets[0] < 1 \
                or self.buckets[-1] != self.seq_len:
            raise ValueError(f"shape.buckets: expected positive lengths in ascending order "
                             f"ending at seq_len {self.seq_len}, got {list(self.buckets)}")
        static = [s for s in self.runnable_schemes if SCHEMES[self.format][s].calibrated]
        if static:
            raise ValueError(f"shape.buckets: {static[0]} calibrates one signature; list the "
                             f"schemes without it or drop the buckets")

    @property
    def seq_buckets(self) -> tuple[int, ...]:
        """Sequence lengths the artifact is exported at: the buckets, else (seq_len,)."""
        return self.buckets or (self.seq_len,)

    @property
    def runnable_schemes(self) -> tuple[str, ...]:
        """Schemes this target's device runs (the profile's `schemes`, else all of its format)."""
        return self.schemes or tuple(SCHEMES[self.format])

    def scheme_for(self, name: str | None = None) -> Scheme:
        """The Scheme `name` (default: the profile's own) if this target can run it.

        Raises UserError naming the target and what it can run otherwise.
        """
        name = name or self.scheme
        if name not in self.runnable_schemes:
            raise UserError(f"target {self.name} cannot run scheme {name!r} "
                            f"(it runs: {', '.join(self.runnable_schemes)})")
        return SCHEMES[self.format][name]

    def parity(self, scheme: str | None = None) -> tuple[float, float]:
        """(tolerance, min_agreement) of the parity gate for `scheme` (default: the profile's).

        fp32 uses the profile's [parity] table; other schemes a `[parity.<scheme>]` override from
        the profile if present, else the scheme's own defaults.
        """
        gate = self.gate(scheme)
        return gate.tolerance, gate.min_agreement

    def gate(self, scheme: str | None = None) -> Gate:
        """The parity gate of `scheme` (default: the profile's): the profile's [parity] table
        for fp32, a `[parity.<scheme>]` override if present, else the scheme's defaults."""
        spec = self.scheme_for(scheme)
        if spec.kind == "fp32":
            return Gate(self.tolerance, self.min_agreement, spec.max_rel_error, False,
                        spec.min_cosine)
        for name, tolerance, agreement, rel in self.parity_overrides:
            if name == spec.name:
                return Gate(tolerance, agreement, rel or spec.max_rel_error, spec.int8,
                            spec.min_cosine)
        return Gate(spec.tolerance, spec.min_agreement, spec.max_rel_error, spec.int8,
                    spec.min_cosine)

    @property
    def suffix(self) -> str:
        """File suffix of this target's artifacts: '.onnx', '.tflite', '.pte' or '.xml'."""
        return SUFFIXES[self.format]

    @property
    def fixed_shape(self) -> tuple[int, int] | None:
        """(batch, seq_len) the artifact is exported at, or None when its axes are dynamic."""
        return (self.batch, self.seq_len) if self.shape == "fixed" else None

    @property
    def input_shape(self) -> tuple:
        """(batch, seq) of the artifact's inputs; None for an axis that takes any size (a
        dynamic-seq artifact takes `batch` rows of any length up to seq_len)."""
        return self.fixed_shape or ((self.batch, None) if self.shape == "dynamic-seq"
                                    else (None, None))

    @property
    def max_seq_len(self) -> int | None:
        """The longest sequence the artifact takes (seq_len), or None when its axes are dynamic."""
        return None if self.shape == "dynamic" else self.seq_len

    @property
    def keeps_float_layers(self) -> bool:
        """True when the accuracy fallback can keep named layers in float (ONNX and TFLite
        quantizers take node / tensor names; ExecuTorch's pt2e and NNCF do not get them) and the
        device can run them: an integer-only target (NPU, Edge TPU) cannot."""
        return self.format in ("onnx", "tflite") and not self.integer_only

    @property
    def float_layers_refusal(self) -> str:
        """Why the accuracy fallback is not available here (for keeps_float_layers False)."""
        return ("an integer-only target runs no float layer" if self.integer_only
                else f"{self.format} artifacts cannot keep layers in float")

    @property
    def quantizes_in_torch(self) -> bool:
        """True when schemes are applied to the torch graph before export (ExecuTorch's pt2e),
        not to the written file."""
        return self.format == "pte"


def _check_choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{key}: expected one of {', '.join(allowed)}, got {value!r}")


# The TOML layout: table -> key -> (Profile field, expected type, required). Types are checked
# here so every message can name the key as the user wrote it.
_SCHEMA: dict[str, dict[str, tuple[str, type, bool]]] = {
    "": {"name": ("name", str, True), "description": ("description", str, True),
         "format": ("format", str, True), "runtime": ("runtime", str, True),
         "threads": ("threads", int, True), "scheme": ("scheme", str, True),
         "opset": ("opset", int, False), "schemes": ("schemes", list, False),
         "io_dtype": ("io_dtype", str, False), "integer_only": ("integer_only", bool, False),
         "verify_isa": ("verify_isa", str, False),
         "inference_precision": ("inference_precision", str, False)},
    "shape": {"policy": ("shape", str, True), "batch": ("batch", int, True),
              "seq_len": ("seq_len", int, True), "buckets": ("buckets", tuple, False)},
    "parity": {"tolerance": ("tolerance", float, True),
               "min_agreement": ("min_agreement", float, True),
               "rows": ("gate_rows", int, False)},
    "budgets": {"size_mb": ("size_mb", float, False), "latency_ms": ("latency_ms", float, False),
                "ram_mb": ("ram_mb", float, False)},
    "calibration": {"samples": ("calibration_samples", int, False),
                    "method": ("calibration_method", str, False)},
}
_REQUIRED_TABLES = ("shape", "parity")


def _type_ok(value: object, expected: type) -> bool:
    if expected is bool or isinstance(value, bool):  # bool is an int subclass: `threads = true`
        return expected is bool and isinstance(value, bool)
    if expected is list:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if expected is tuple:  # a list of integers
        return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool)
                                               for v in value)
    if expected is float:
        return isinstance(value, (int, float))  # TOML `size_mb = 50` is an int
    return isinstance(value, expected)


def _type_name(expected: type) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false",
            list: "a list of strings", tuple: "a list of integers"}[expected]


def split_scheme_tables(data: dict, table: str) -> tuple[dict, dict[str, dict]]:
    """Pull the per-scheme sub-tables `[<table>.<scheme>]` out of `data`: (data without them,
    {scheme: sub-table}). The plain keys of `[<table>]` stay where they are."""
    section = data.get(table)
    if not isinstance(section, dict):
        return data, {}
    tables = {k: v for k, v in section.items() if isinstance(v, dict)}
    plain = {k: v for k, v in section.items() if not isinstance(v, dict)}
    return {**data, table: plain}, tables


def _split_parity(data: dict) -> tuple[dict, tuple[tuple, ...]]:
    """Pull `[parity.<scheme>]` sub-tables out of `data`; returns (data without them, overrides)."""
    data, tables = split_scheme_tables(data, "parity")
    overrides = []
    for scheme, table in tables.items():
        keys = {"tolerance", "min_agreement"}
        extra = set(table) - keys - {"max_rel_error"}
        if not keys <= set(table) or extra or not all(_type_ok(v, float) for v in table.values()):
            raise ValueError(f"parity.{scheme}: expected numbers tolerance, min_agreement "
                             f"(and max_rel_error), got {table}")
        rel = table.get("max_rel_error")
        overrides.append((scheme, float(table["tolerance"]), float(table["min_agreement"]),
                          None if rel is None else float(rel)))
    return data, tuple(overrides)


def fields_from_toml(data: dict, schema: dict = _SCHEMA,
                     required_tables: tuple[str, ...] = _REQUIRED_TABLES) -> dict:
    """Flatten the TOML tables into keyword arguments of the profile dataclass `schema`
    describes (table -> key -> (field, type, required)); raises ValueError naming the key."""
    tables = [t for t in schema if t]
    for key, value in data.items():
        if key in tables and not isinstance(value, dict):
            raise ValueError(f"{key}: expected a table [{key}], got {type(value).__name__}")
        if key not in schema[""] and key not in tables:
            known = sorted(schema[""]) + [f"[{t}]" for t in tables]
            raise ValueError(f"{key}: unknown key (expected one of: {', '.join(known)})")
    fields: dict = {}
    for table, keys in schema.items():
        section = data if not table else data.get(table, {})
        if table and table not in data and table in required_tables:
            raise ValueError(f"[{table}]: missing table (expected keys {', '.join(keys)})")
        prefix = f"{table}." if table else ""
        if table:
            extra = sorted(set(section) - set(keys))
            if extra:
                raise ValueError(f"{prefix}{extra[0]}: unknown key in [{table}] "
                                 f"(expected one of: {', '.join(keys)})")
        for key, (field, expected, required) in keys.items():
            if key not in section:
                if required:
                    raise ValueError(f"{prefix}{key}: missing (expected {_type_name(expected)})")
                continue
            value = section[key]
            if not _type_ok(value, expected):
                raise ValueError(f"{prefix}{key}: expected {_type_name(expected)}, "
                                 f"got {type(value).__name__} {value!r}")
            fields[field] = (float(value) if expected is float
                             else tuple(value) if expected in (list, tuple) else value)
    return fields


def read_profile_toml(path: Path) -> tuple[str, dict]:
    """(kind, the file's tables without `kind`) of profile file `path`; UserError when it is
    unreadable, not TOML or of an unknown kind."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise UserError(f"cannot read target profile {path}: {err.strerror or err}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid TOML: {err}") from None
    kind = data.pop("kind", "encoder")
    if kind not in KINDS:
        raise UserError(f"{path}: kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    return kind, data


def _load_file(path: Path) -> Profile:
    kind, data = read_profile_toml(path)
    if kind != "encoder":
        raise UserError(f"target {data.get('name', path.stem)} is a language-model target "
                        f"(kind = {kind!r}): `edgecompress llm export` takes it")
    try:
        data, overrides = _split_parity(data)
        return Profile(**fields_from_toml(data), parity_overrides=overrides, source=path)
    except ValueError as err:
        raise UserError(f"{path}: {err}") from None


def shipped_profiles(kind: str = "encoder") -> dict[str, Path]:
    """{name: file} of the shipped profiles of `kind`, sorted by name."""
    return {path.stem: path for path in sorted(PROFILE_DIR.glob("*.toml"))
            if read_profile_toml(path)[0] == kind}


def _shipped() -> dict[str, Path]:
    return shipped_profiles("encoder")


def list_profiles() -> list[Profile]:
    """Every shipped target profile, sorted by name. Raises UserError if one is malformed."""
    return [_load_file(path) for path in _shipped().values()]


def load_profile(name_or_path: str | Path) -> Profile:
    """Load a shipped target by name (`rpi5`) or a user's profile from a `.toml` path.

    Returns the validated Profile. Raises UserError for an unknown name, a missing file, or a file
    with an unknown key, a wrong type, a missing key or a bad value (the message names both).
    """
    if isinstance(name_or_path, Path) or str(name_or_path).endswith(".toml") \
            or "/" in str(name_or_path):
        path = Path(name_or_path)
        if not path.is_file():
            raise UserError(f"target profile not found: {path}")
        return _load_file(path)
    shipped = _shipped()
    if name_or_path in shipped_profiles("llm"):
        _load_file(shipped_profiles("llm")[name_or_path])  # says which command takes it
    if name_or_path not in shipped:
        raise UserError(f"unknown target {name_or_path!r} (known: {', '.join(shipped)}; "
                        f"or pass a path to a .toml profile)")
    return _load_file(shipped[name_or_path])
