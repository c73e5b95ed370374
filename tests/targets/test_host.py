"""host_info: which machine measured, cheaply, with only the int8-relevant ISA flags."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from edgecompress.targets import host as host_mod
from edgecompress.targets import host_info
from edgecompress.targets.host import INT8_FLAGS, host_id

KEYS = {"cpu_model", "arch", "isa", "cores", "os", "python", "runtimes"}


def test_host_info_has_every_key_and_known_flags_only_when_called():
    info = host_info()
    assert set(info) == KEYS
    assert isinstance(info["cpu_model"], str) and info["cpu_model"]
    assert isinstance(info["isa"], list) and set(info["isa"]) <= set(INT8_FLAGS)
    assert info["isa"] == sorted(info["isa"])
    assert info["cores"] >= 1 and info["python"].count(".") == 2
    assert info["runtimes"]["onnxruntime"]  # installed in the test environment
    assert all(isinstance(v, str) for v in info["runtimes"].values())


def test_host_info_adds_threads_and_returns_a_copy_when_threads_given():
    info = host_info(3)
    assert info["threads"] == 3
    info["isa"].append("bogus")
    assert "threads" not in host_info() and "bogus" not in host_info()["isa"]


def _host_from(cpuinfo_text: str, monkeypatch, tmp_path) -> dict:
    """host_info() as it reads a /proc/cpuinfo holding `cpuinfo_text`."""
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(cpuinfo_text)
    monkeypatch.setattr(host_mod, "CPUINFO", cpuinfo)
    host_mod._cached_info.cache_clear()
    try:
        return host_info()
    finally:
        host_mod._cached_info.cache_clear()


def test_host_info_reads_x86_flags_when_cpuinfo_lists_them(monkeypatch, tmp_path):
    info = _host_from("processor\t: 0\nmodel name\t: Test CPU 9000\n"
                      "flags\t\t: fpu sse2 avx2 avx512f avx512_vnni amx_int8 avx512_bf16\n",
                      monkeypatch, tmp_path)
    assert info["cpu_model"] == "Test CPU 9000"
    assert info["isa"] == ["amx_int8", "avx2", "avx512_vnni", "avx512f"]


def test_host_info_reads_arm_features_when_cpuinfo_is_arm(monkeypatch, tmp_path):
    info = _host_from("processor\t: 0\nFeatures\t: fp asimd evtstrm asimddp i8mm sve\n"
                      "Model\t\t: Raspberry Pi 5 Model B\n", monkeypatch, tmp_path)
    assert info["cpu_model"] == "Raspberry Pi 5 Model B"
    assert info["isa"] == ["asimd", "asimddp", "i8mm"]


def test_host_id_is_stable_and_differs_when_isa_differs():
    info = host_info()
    assert host_id(info) == host_id(host_info(8))  # threads do not change the machine
    assert host_id(info) != host_id({**info, "isa": [*info["isa"], "i8mm"]})
    assert len(host_id(info)) == 12


def test_host_module_imports_no_runtime_when_imported():
    # (the package's __init__ brings numpy; runtimes and torch must stay out)
    code = ("import sys, edgecompress.targets.host as h; h.host_info(); print(sorted(m for m in "
            "('onnxruntime', 'ai_edge_litert', 'torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert json.loads(out.stdout.replace("'", '"')) == []


@pytest.mark.parametrize("target", ["x86-cpu"])
def test_bench_records_host_info_with_threads_when_run(exported, target):
    from edgecompress.targets import bench, load_profile

    result, _, _ = exported(target, "tiny_plain")
    profile = load_profile(target)
    stats = bench(result.path, profile, warmup=0, runs=2)
    assert stats["host"]["cpu_model"] == host_info()["cpu_model"]
    assert stats["host"]["threads"] == profile.threads
    assert stats["host"]["isa"] == host_info()["isa"]
    assert "CPUs" in stats["host_description"]
