"""Which machine measured: CPU model, the ISA extensions that pick int8 kernels, cores, runtimes.

A latency means little without its host: ONNX Runtime's int8 MatMul runs VNNI / AMX kernels
where the CPU has them and slower AVX2 ones where not, and XNNPACK uses dot-product / i8mm
instructions on arm. `host_info()` reads /proc/cpuinfo and package metadata only (no runtime
import), so the bench child can call it for free.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
# cpuinfo flags that decide which int8 kernels run. x86: `flags` line; arm: `Features` line
# (asimd = NEON on aarch64, `neon` on 32-bit arm; asimddp = dot product; i8mm = int8 matmul).
INT8_FLAGS = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8", "amx_tile",
              "neon", "asimd", "asimddp", "i8mm")
# bf16 arithmetic in hardware (AMX tiles, AVX512-BF16, armv8.6 BF16): where bf16 training pays
BF16_FLAGS = ("amx_bf16", "avx512_bf16", "bf16")
# executorch, openvino: optional extras
RUNTIME_PACKAGES = ("onnxruntime", "ai-edge-litert", "executorch", "openvino")
_MODEL_KEYS = ("model name", "Model", "Hardware")  # x86; Raspberry Pi; older arm kernels


def host_info(threads: int | None = None) -> dict:
    """This host: cpu_model, arch, isa (sorted int8-relevant flags), cores, os, python,
    runtimes ({package: version} of those installed) and, when given, `threads`.

    Returns a new dict each call (the facts are read once and cached).
    """
    info = json.loads(_cached_info())  # a copy: callers may add keys
    if threads is not None:
        info["threads"] = threads
    return info


@lru_cache(maxsize=1)
def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (else torch emulates it, slower than fp32)."""
    return bool(_flags(_cpuinfo_fields()) & set(BF16_FLAGS))


def host_id(info: dict) -> str:
    """A short stable id of the CPU (model + int8 ISA): equal ids mean comparable latencies."""
    key = json.dumps([info.get("cpu_model", "unknown"), sorted(info.get("isa", []))])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


@lru_cache(maxsize=1)
def _cached_info() -> str:
    fields = _cpuinfo_fields()
    model = next((fields[k] for k in _MODEL_KEYS if fields.get(k)), "")
    return json.dumps({
        "cpu_model": model or platform.processor() or "unknown",
        "arch": platform.machine(),
        "isa": _isa(fields),
        "cores": os.cpu_count(),
        "os": f"{platform.system()} {platform.release()}".strip(),
        "python": platform.python_version(),
        "runtimes": _runtime_versions(),
    })


def _cpuinfo_fields() -> dict[str, str]:
    """First value of each `key : value` line of /proc/cpuinfo; {} where there is none (macOS)."""
    fields: dict[str, str] = {}
    try:
        text = CPUINFO.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return fields
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    return fields


def _flags(fields: dict[str, str]) -> set[str]:
    return set((fields.get("flags", "") + " " + fields.get("Features", "")).split())


def _isa(fields: dict[str, str]) -> list[str]:
    flags = _flags(fields)
    if not fields and platform.machine().lower() in ("arm64", "aarch64"):
        flags.add("asimd")  # no cpuinfo (macOS): NEON is mandatory on every 64-bit arm CPU
    return sorted(flags & set(INT8_FLAGS))


def _runtime_versions() -> dict[str, str]:
    found = {}
    for name in RUNTIME_PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass  # not installed: absent, not None
    return found
