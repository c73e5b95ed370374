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

PROFILE_DIR = Path(__file__).parent / "profiles"

FORMATS = ("onnx", "tflite")
RUNTIMES = {"onnx": ("onnxruntime",), "tflite": ("litert",)}
# Schemes each format can produce. Adding a quantization scheme is adding it here (and teaching the
# exporter); profiles naming anything else are refused when loaded.
SCHEMES = {"onnx": ("fp32",), "tflite": ("fp32",)}
SHAPE_POLICIES = ("dynamic", "fixed")
MIN_OPSET = 17  # LayerNormalization is a single op from 17; the dynamo exporter targets >= 18


@dataclass(frozen=True)
class Profile:
    """One edge target. `batch` x `seq_len` is the fixed input shape, or the bench shape if dynamic."""

    name: str
    description: str
    format: str  # "onnx" | "tflite"
    runtime: str  # "onnxruntime" | "litert"
    threads: int
    scheme: str  # one of SCHEMES[format]
    shape: str  # "dynamic" | "fixed"
    batch: int
    seq_len: int
    tolerance: float  # max |artifact - torch| on the outputs
    min_agreement: float  # fraction of rows whose argmax must match torch
    opset: int | None = None  # ONNX only
    size_mb: float | None = None
    latency_ms: float | None = None
    ram_mb: float | None = None
    source: Path | None = None  # the file it was loaded from

    def __post_init__(self) -> None:
        # Every message starts with the (TOML) key so the loader can prefix the file name.
        _check_choice("format", self.format, FORMATS)
        _check_choice("runtime", self.runtime, RUNTIMES[self.format])
        _check_choice("scheme", self.scheme, SCHEMES[self.format])
        _check_choice("shape.policy", self.shape, SHAPE_POLICIES)
        if not self.name.strip():
            raise ValueError("name: expected a non-empty string")
        for key, value in (("threads", self.threads), ("shape.batch", self.batch),
                           ("shape.seq_len", self.seq_len)):
            if value < 1:
                raise ValueError(f"{key}: expected a positive integer, got {value}")
        if self.format == "tflite" and self.shape != "fixed":
            raise ValueError("shape.policy: expected 'fixed' for tflite "
                             "(litert-torch converts static shapes only)")
        if self.format == "onnx" and (self.opset is None or self.opset < MIN_OPSET):
            raise ValueError(f"opset: expected an integer >= {MIN_OPSET} for onnx, got {self.opset}")
        if self.format != "onnx" and self.opset is not None:
            raise ValueError(f"opset: applies to onnx profiles only, not {self.format}")
        if not self.tolerance > 0:
            raise ValueError(f"parity.tolerance: expected a number > 0, got {self.tolerance}")
        if not 0.0 <= self.min_agreement <= 1.0:
            raise ValueError(f"parity.min_agreement: expected a fraction in [0, 1], "
                             f"got {self.min_agreement}")
        for key in ("size_mb", "latency_ms", "ram_mb"):
            value = getattr(self, key)
            if value is not None and not value > 0:
                raise ValueError(f"budgets.{key}: expected a number > 0, got {value}")

    @property
    def suffix(self) -> str:
        """File suffix of this target's artifacts: '.onnx' or '.tflite'."""
        return "." + self.format

    @property
    def fixed_shape(self) -> tuple[int, int] | None:
        """(batch, seq_len) the artifact is exported at, or None when its axes are dynamic."""
        return (self.batch, self.seq_len) if self.shape == "fixed" else None


def _check_choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{key}: expected one of {', '.join(allowed)}, got {value!r}")


# The TOML layout: table -> key -> (Profile field, expected type, required). Types are checked
# here so every message can name the key as the user wrote it.
_SCHEMA: dict[str, dict[str, tuple[str, type, bool]]] = {
    "": {"name": ("name", str, True), "description": ("description", str, True),
         "format": ("format", str, True), "runtime": ("runtime", str, True),
         "threads": ("threads", int, True), "scheme": ("scheme", str, True),
         "opset": ("opset", int, False)},
    "shape": {"policy": ("shape", str, True), "batch": ("batch", int, True),
              "seq_len": ("seq_len", int, True)},
    "parity": {"tolerance": ("tolerance", float, True),
               "min_agreement": ("min_agreement", float, True)},
    "budgets": {"size_mb": ("size_mb", float, False), "latency_ms": ("latency_ms", float, False),
                "ram_mb": ("ram_mb", float, False)},
}
_REQUIRED_TABLES = ("shape", "parity")


def _type_ok(value: object, expected: type) -> bool:
    if isinstance(value, bool):  # bool is an int subclass; `threads = true` is a mistake
        return False
    if expected is float:
        return isinstance(value, (int, float))  # TOML `size_mb = 50` is an int
    return isinstance(value, expected)


def _type_name(expected: type) -> str:
    return {str: "a string", int: "an integer", float: "a number"}[expected]


def _fields_from_toml(data: dict) -> dict:
    """Flatten the TOML tables into Profile keyword arguments; raises ValueError naming the key."""
    tables = [t for t in _SCHEMA if t]
    for key, value in data.items():
        if key in tables and not isinstance(value, dict):
            raise ValueError(f"{key}: expected a table [{key}], got {type(value).__name__}")
        if key not in _SCHEMA[""] and key not in tables:
            known = sorted(_SCHEMA[""]) + [f"[{t}]" for t in tables]
            raise ValueError(f"{key}: unknown key (expected one of: {', '.join(known)})")
    fields: dict = {}
    for table, keys in _SCHEMA.items():
        section = data if not table else data.get(table, {})
        if table and table not in data and table in _REQUIRED_TABLES:
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
            fields[field] = float(value) if expected is float else value
    return fields


def _load_file(path: Path) -> Profile:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise UserError(f"cannot read target profile {path}: {err.strerror or err}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid TOML: {err}") from None
    try:
        return Profile(**_fields_from_toml(data), source=path)
    except ValueError as err:
        raise UserError(f"{path}: {err}") from None


def _shipped() -> dict[str, Path]:
    return {path.stem: path for path in sorted(PROFILE_DIR.glob("*.toml"))}


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
    if name_or_path not in shipped:
        raise UserError(f"unknown target {name_or_path!r} (known: {', '.join(shipped)}; "
                        f"or pass a path to a .toml profile)")
    return _load_file(shipped[name_or_path])
