"""arm64 emulation: CPU profiles pinned to qemu models, the SME trap caught, the arm64 cpuinfo
the runtimes need, and one line for a missing qemu or a broken cache. Tests that start the
emulated python need qemu (apt-get install qemu-user-static) and build the environment once
into the cache (~40 s, ~290 MB); they are skipped with the reason where qemu is missing."""

from __future__ import annotations

import shutil

import pytest

from edgecompress.errors import UserError
from edgecompress.targets import emulation
from edgecompress.targets.emulation import CpuProfile, Qemu

SPEC = emulation.load_spec("arm64")
QEMU_72 = Qemu("/usr/bin/qemu-aarch64-static", (7, 2, 22), ("cortex-a53", "cortex-a76", "max",
                                                            "neoverse-n1"))
QEMU_10 = Qemu("/usr/bin/qemu-aarch64", (10, 0, 2), QEMU_72.cpus)
HAVE_QEMU = any(shutil.which(name) for name in SPEC.qemu)
needs_qemu = pytest.mark.skipif(not HAVE_QEMU, reason="qemu-aarch64 not installed (apt-get "
                                                      "install qemu-user-static)")


def test_qemu_cpu_for_turns_sme_off_when_qemu_computes_it_wrongly():
    qemu_cpu, note = emulation.qemu_cpu_for(SPEC, QEMU_72, SPEC.cpu("armv9-i8mm"))
    assert qemu_cpu == "max,sme=off"
    assert "SME off" in note and "7.2.22" in note


def test_qemu_cpu_for_keeps_the_model_when_qemu_gets_sme_right():
    assert emulation.qemu_cpu_for(SPEC, QEMU_10, SPEC.cpu("armv9-i8mm")) == ("max", "")


def test_qemu_cpu_for_pins_named_cores_unchanged_when_they_have_no_sme():
    for name in ("cortex-a76", "neoverse-n1", "cortex-a53"):
        assert emulation.qemu_cpu_for(SPEC, QEMU_72, SPEC.cpu(name)) == (name, "")


def test_qemu_cpu_for_refuses_sme_on_when_qemu_computes_it_wrongly():
    asks = CpuProfile("sme", "asks for SME", "max,sme=on", (0, 0, 0x51, 0), "fp asimd")
    with pytest.raises(UserError, match="computes wrongly"):
        emulation.qemu_cpu_for(SPEC, QEMU_72, asks)


def test_qemu_cpu_for_refuses_a_model_when_qemu_does_not_know_it():
    v1 = CpuProfile("v1", "Neoverse-V1", "neoverse-v1", (0x41, 1, 0xd40, 1), "fp asimd")
    with pytest.raises(UserError, match="no CPU model 'neoverse-v1'"):
        emulation.qemu_cpu_for(SPEC, QEMU_72, v1)


def test_check_no_sme_refuses_when_the_emulated_process_reports_sme_on_old_qemu():
    cpu = SPEC.cpu("cortex-a76")
    with pytest.raises(UserError, match="refused"):
        emulation.check_no_sme(SPEC, QEMU_72, cpu, {"features": ["asimddp", "sme"]})
    emulation.check_no_sme(SPEC, QEMU_10, cpu, {"features": ["asimddp", "sme"]})  # trusted


def test_cpuinfo_is_arm64_format_with_the_profiles_part_when_rendered():
    text = SPEC.cpu("cortex-a76").cpuinfo(2)
    assert text.count("processor\t:") == 2
    assert "CPU part\t: 0xd0b" in text and "CPU implementer\t: 0x41" in text
    assert "asimddp" in text and "vendor_id" not in text


def test_load_spec_refuses_an_isa_without_emulation():
    with pytest.raises(UserError, match="no emulation for ISA 'riscv64'"):
        emulation.load_spec("riscv64")


def test_probe_qemu_names_the_package_when_qemu_is_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UserError, match="apt-get install qemu-user-static"):
        emulation.probe_qemu(SPEC)


def test_open_environment_says_broken_when_the_cache_folder_lacks_its_record(monkeypatch,
                                                                              tmp_path):
    monkeypatch.setenv("EDGECOMPRESS_CACHE", str(tmp_path))
    assert emulation.open_environment(SPEC) is None  # nothing built yet: build on first use
    emulation.environment_dir(SPEC).mkdir(parents=True)
    with pytest.raises(UserError, match="broken .*verify --setup"):
        emulation.open_environment(SPEC)


@pytest.fixture(scope="session")
def environment():
    """The arm64 environment in the real cache, built on first use."""
    qemu = emulation.probe_qemu(SPEC)
    env = emulation.open_environment(SPEC) or emulation.build_environment(SPEC, qemu,
                                                                          lambda line: None)
    return env, qemu


@needs_qemu
@pytest.mark.parametrize("name, has, lacks", [
    ("cortex-a53", [], ["asimddp", "i8mm", "sme"]),
    ("cortex-a76", ["asimddp"], ["i8mm", "sme"]),
    ("armv9-i8mm", ["asimddp", "i8mm", "sve2"], ["sme"]),
])
def test_emulated_process_sees_the_profiles_isa_and_arm64_cpuinfo_when_pinned(environment, name,
                                                                              has, lacks):
    env, qemu = environment
    cpu = SPEC.cpu(name)
    probed = emulation.probe(env, qemu, cpu, emulation.qemu_cpu_for(SPEC, qemu, cpu)[0])
    assert probed["machine"] == "aarch64"
    assert probed["cpuinfo"] == "processor\t: 0"  # ours, not the host's x86 one
    assert set(has) <= set(probed["features"]) and not set(lacks) & set(probed["features"])


@needs_qemu
def test_sme_trap_is_refused_when_a_profile_runs_qemu_max_with_sme(environment):
    env, qemu = environment
    if qemu.version >= SPEC.sme_right_from:
        pytest.skip(f"qemu {qemu.version_text} computes SME right")
    # a profile that forgot to say its model advertises SME: qemu_cpu_for leaves it as is, the
    # emulated process reports SME, and the check refuses it before any artifact runs
    mislabelled = CpuProfile("mislabelled", "max without sme=off", "max", (0, 0, 0x51, 0),
                             "fp asimd")
    qemu_cpu, _ = emulation.qemu_cpu_for(SPEC, qemu, mislabelled)
    probed = emulation.probe(env, qemu, mislabelled, qemu_cpu)
    assert "sme" in probed["features"]
    with pytest.raises(UserError, match="computes SME wrongly: refused"):
        emulation.check_no_sme(SPEC, qemu, mislabelled, probed)


@needs_qemu
def test_environment_records_versions_and_sha256_of_every_download_when_built(environment):
    env, _ = environment
    record = env.record
    assert record["versions"]["ai-edge-litert"] == "2.3.0"
    assert record["versions"]["onnxruntime"] == "1.32.0"
    downloads = record["downloads"]
    assert any(name.startswith("python3.11-minimal") for name in downloads)
    assert any(name.startswith("ai_edge_litert-2.3.0") for name in downloads)
    assert all(len(d["sha256"]) == 64 and d["bytes"] > 0 for d in downloads.values())


def test_profile_verify_isa_is_read_and_checked_when_loaded(tmp_path):
    from edgecompress.targets import load_profile

    assert load_profile("arm64-phone").verify_isa == "arm64"
    assert load_profile("rpi5").verify_isa == "arm64"
    assert load_profile("x86-cpu").verify_isa is None
    source = load_profile("rpi5").source.read_text()
    bad = tmp_path / "mips.toml"
    bad.write_text(source.replace('verify_isa = "arm64"', 'verify_isa = "mips"'))
    with pytest.raises(UserError, match="verify_isa: expected one of arm64, got 'mips'"):
        load_profile(bad)
