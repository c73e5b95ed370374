"""Run arm64 CPU kernels on an x86 host: qemu user-mode emulation of Debian's arm64 python3.11
with the aarch64 wheels of the runtimes, built once into the cache.

    <cache>/emulation/arm64-<key>/
        sysroot/                           Debian's .deb files unpacked with `dpkg -x`
        wheels/                            the runtimes' aarch64 wheels (`pip install --target`)
        cpus/<profile>-<n>/                what qemu's `-L` sees for one CPU profile: links to
                                           the sysroot and an arm64 /proc/cpuinfo of n cores
        environment.json                   versions, sha256 of every downloaded file, size, time

While it is built, a private apt configuration (arm64 lists, its own state and archives) lives in
the build's temporary folder and goes with it: the host's dpkg architectures and apt state never
change.

`<key>` hashes everything the build reads (packages, wheel pins, platforms), so a changed pin
builds a new environment beside the old one. What runs under emulation is the bundle's own
runner (bundle_runner.py): numpy, tokenizers and the runtime, nothing else.

Two traps, both measured with qemu 7.2: it serves the host's x86 /proc/cpuinfo, and LiteRT and
ONNX Runtime segfault initialising cpuinfo (hence the per-profile cpuinfo); and its `max` CPU
advertises SME and computes it wrongly (agreement 59 %), so SME is switched off below
`sme_right_from`, and an emulated process that still reports SME there is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from edgecompress.errors import UserError
from edgecompress.fsutil import (
    atomic_directory,
    atomic_write_json,
    cache_root,
    held_lock,
    sha256_file,
)

ISA_DIR = Path(__file__).with_name("isas")
PROBE = Path(__file__).with_name("emulation_probe.py")
ENVIRONMENT_FILE = "environment.json"
FORMAT = 1  # bump when the environment's layout changes

Progress = Callable[[str], None]


@dataclass(frozen=True)
class CpuProfile:
    """One emulated CPU: a pinned qemu `-cpu` model and the cpuinfo its process reads."""

    name: str
    description: str
    qemu_cpu: str  # qemu's -cpu argument, e.g. "cortex-a76" or "max"
    midr: tuple[int, int, int, int]  # implementer, variant, part, revision
    features: str  # the cpuinfo Features line
    sme: bool = False  # the model advertises SME

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9,=.-]*", self.qemu_cpu):
            raise ValueError(f"cpu.{self.name}.qemu_cpu: expected a qemu CPU model, "
                             f"got {self.qemu_cpu!r}")

    def cpuinfo(self, cores: int) -> str:
        """An arm64 /proc/cpuinfo of `cores` processors in the kernel's format."""
        implementer, variant, part, revision = self.midr
        block = (f"BogoMIPS\t: 50.00\nFeatures\t: {self.features}\n"
                 f"CPU implementer\t: {implementer:#04x}\nCPU architecture: 8\n"
                 f"CPU variant\t: {variant:#x}\nCPU part\t: {part:#05x}\n"
                 f"CPU revision\t: {revision}\n\n")
        return "".join(f"processor\t: {i}\n{block}" for i in range(cores))


@dataclass(frozen=True)
class EmulationSpec:
    """An ISA's emulation, read from targets/isas/<isa>.toml."""

    isa: str
    qemu: tuple[str, ...]
    qemu_package: str
    sme_right_from: tuple[int, ...]
    default_cpus: tuple[str, ...]
    sysroot: dict
    wheels: dict
    cpus: dict  # name -> CpuProfile

    def __post_init__(self) -> None:
        unknown = [c for c in self.default_cpus if c not in self.cpus]
        if unknown:
            raise ValueError(f"default_cpus: unknown profile {unknown[0]!r}")

    @property
    def key(self) -> str:
        """Hash of everything the build reads: a changed pin gets a new environment."""
        built = {"format": FORMAT, "sysroot": self.sysroot, "wheels": self.wheels}
        return hashlib.sha256(json.dumps(built, sort_keys=True).encode()).hexdigest()[:12]

    def cpu(self, name: str) -> CpuProfile:
        if name not in self.cpus:
            raise UserError(f"unknown CPU profile {name!r} for {self.isa}; known: "
                            f"{', '.join(self.cpus)}")
        return self.cpus[name]


def isas() -> tuple[str, ...]:
    """The ISAs `verify` can emulate (one TOML each under targets/isas/)."""
    return tuple(sorted(p.stem for p in ISA_DIR.glob("*.toml")))


def load_spec(isa: str = "arm64") -> EmulationSpec:
    """The emulation spec of `isa`; UserError for an ISA without one."""
    if isa not in isas():
        raise UserError(f"no emulation for ISA {isa!r}; known: {', '.join(isas())}")
    path = ISA_DIR / f"{isa}.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    cpus = {name: CpuProfile(name=name, description=c["description"], qemu_cpu=c["qemu_cpu"],
                             midr=tuple(c["midr"][k] for k in ("implementer", "variant", "part",
                                                               "revision")),
                             features=c["features"], sme=bool(c.get("sme", False)))
            for name, c in data["cpu"].items()}
    return EmulationSpec(isa=data["isa"], qemu=tuple(data["qemu"]),
                         qemu_package=data["qemu_package"],
                         sme_right_from=tuple(data["sme_right_from"]),
                         default_cpus=tuple(data["default_cpus"]), sysroot=data["sysroot"],
                         wheels=data["wheels"], cpus=cpus)


# ---------------------------------------------------------------------------------- qemu


@dataclass(frozen=True)
class Qemu:
    path: str
    version: tuple[int, ...]  # (7, 2, 22)
    cpus: tuple[str, ...]  # what `-cpu help` lists

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))


def probe_qemu(spec: EmulationSpec) -> Qemu:
    """The first of spec.qemu on PATH with its version and CPU models; UserError naming the
    package to install when there is none."""
    found = next((p for p in map(shutil.which, spec.qemu) if p), None)
    if found is None:
        raise UserError(f"{' or '.join(spec.qemu)} not found: install Debian's "
                        f"{spec.qemu_package} (apt-get install {spec.qemu_package}) to verify "
                        f"{spec.isa} artifacts under emulation")
    try:
        text = subprocess.run([found, "--version"], capture_output=True, text=True,
                              timeout=30).stdout
        listed = subprocess.run([found, "-cpu", "help"], capture_output=True, text=True,
                                timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired) as err:
        raise UserError(f"{found} does not run: {err}") from None
    match = re.search(r"version (\d+)\.(\d+)(?:\.(\d+))?", text)
    if not match:
        raise UserError(f"{found} --version printed no version: {text.strip()[:80]!r}")
    version = tuple(int(g) for g in match.groups() if g is not None)
    cpus = tuple(line.split()[0] for line in listed.splitlines()[1:] if line.strip())
    return Qemu(found, version, cpus)


def qemu_cpu_for(spec: EmulationSpec, qemu: Qemu, cpu: CpuProfile) -> tuple[str, str]:
    """(qemu -cpu argument, note) for `cpu` on this qemu. A model that advertises SME runs with
    SME off where qemu computes SME wrongly; a profile asking for SME there is refused."""
    model, *options = cpu.qemu_cpu.split(",")
    if model not in qemu.cpus:
        raise UserError(f"CPU profile {cpu.name}: qemu {qemu.version_text} has no CPU model "
                        f"{model!r} (it has: {', '.join(qemu.cpus)})")
    trusted = qemu.version >= spec.sme_right_from
    if "sme=on" in options and not trusted:
        raise UserError(f"CPU profile {cpu.name} asks for SME, which qemu {qemu.version_text} "
                        f"computes wrongly (measured: agreement 59 %); use qemu >= "
                        f"{'.'.join(map(str, spec.sme_right_from))} or drop sme=on")
    if cpu.sme and not trusted and "sme=off" not in options:
        return (",".join([model, *options, "sme=off"]),
                f"SME off: qemu {qemu.version_text} computes SME wrongly")
    return cpu.qemu_cpu, ""


def check_no_sme(spec: EmulationSpec, qemu: Qemu, cpu: CpuProfile, probed: dict) -> None:
    """Refuse an emulated process that reports SME on a qemu that computes it wrongly: its
    results would be a divergence qemu invented, not one of the kernels."""
    if "sme" in probed.get("features", ()) and qemu.version < spec.sme_right_from:
        raise UserError(f"CPU profile {cpu.name} ({cpu.qemu_cpu}) runs with SME on qemu "
                        f"{qemu.version_text}, which computes SME wrongly: refused (add sme=off "
                        "to its qemu_cpu or pin a named core)")


# ---------------------------------------------------------------------------------- environment


@dataclass(frozen=True)
class Environment:
    root: Path
    record: dict  # environment.json

    @property
    def sysroot(self) -> Path:
        return self.root / "sysroot"

    @property
    def wheels(self) -> Path:
        return self.root / "wheels"


def environment_dir(spec: EmulationSpec) -> Path:
    return cache_root() / "emulation" / f"{spec.isa}-{spec.key}"


_held: list[Path] = []  # the emulation folders whose build lock this process holds


@contextmanager
def build_lock():
    """Held while an environment or a CPU root is built: processes that verify at once (two
    runs, a parallel test session) wait and reuse what the first one built instead of
    replacing it under each other. Re-entrant in one process (a build probes its own CPU
    root)."""
    folder = cache_root() / "emulation"
    if folder in _held:
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    with held_lock(folder, wait=True):
        _held.append(folder)
        try:
            yield
        finally:
            _held.remove(folder)


def open_environment(spec: EmulationSpec) -> Environment | None:
    """The built environment, or None when there is none yet; UserError when the folder is
    there but broken (a missing or unreadable record, python or wheel)."""
    root = environment_dir(spec)
    if not root.exists():
        return None
    problem = _broken(spec, root)
    if problem:
        raise UserError(f"emulation environment {root} is broken ({problem}); rebuild it with "
                        "`edgecompress verify --setup`")
    return Environment(root, json.loads((root / ENVIRONMENT_FILE).read_text()))


def _broken(spec: EmulationSpec, root: Path) -> str:
    try:
        record = json.loads((root / ENVIRONMENT_FILE).read_text())
    except (OSError, ValueError):
        return f"no readable {ENVIRONMENT_FILE}"
    if not isinstance(record, dict) or record.get("key") != spec.key:
        return f"{ENVIRONMENT_FILE} is not this environment's"
    if not (root / "sysroot" / spec.sysroot["python"]).is_file():
        return f"sysroot lacks {spec.sysroot['python']}"
    for package in ("numpy", "tokenizers", "onnxruntime", "ai_edge_litert"):
        if not (root / "wheels" / package).is_dir():
            return f"wheels lack {package}"
    return ""


def build_environment(spec: EmulationSpec, qemu: Qemu, progress: Progress = print,
                      reuse: bool = False) -> Environment:
    """Build (or rebuild) the environment into the cache, atomically, under `build_lock`;
    returns it. With `reuse`, one that another process finished while this one waited for the
    lock is returned as it is.

    Downloads Debian's arm64 packages through a private apt configuration and the aarch64
    wheels with this Python's pip, records the sha256 of every downloaded file, then starts the
    emulated python once to check that every runtime imports. Raises UserError when a download
    or the check fails (nothing is left behind but the cache's apt lists).
    """
    with build_lock():
        built = open_environment(spec) if reuse else None
        return built or _build_environment(spec, qemu, progress)


def _build_environment(spec: EmulationSpec, qemu: Qemu, progress: Progress) -> Environment:
    began = time.perf_counter()
    final = environment_dir(spec)
    with atomic_directory(final) as tmp:
        downloads = tmp / "downloads"
        progress(f"downloading Debian {spec.sysroot['suite']} arm64 python3.11 "
                 f"({len(spec.sysroot['packages'])} packages)")
        debs = _download_debs(spec, downloads)
        for deb in debs:
            _run(["dpkg-deb", "-x", str(deb), str(tmp / "sysroot")], f"unpacking {deb.name}")
        progress(f"downloading aarch64 wheels: {', '.join(spec.wheels['requirements'])}")
        wheels = _download_wheels(spec, downloads / "wheels", tmp / "wheels")
        files = {p.name: {"sha256": sha256_file(p), "bytes": p.stat().st_size}
                 for p in [*debs, *wheels]}
        shutil.rmtree(downloads)
        record = {"format": FORMAT, "key": spec.key, "isa": spec.isa,
                  "qemu": {"path": qemu.path, "version": qemu.version_text},
                  "sysroot": spec.sysroot, "wheels": spec.wheels, "downloads": files}
        env = Environment(tmp, record)
        progress("checking the emulated python imports numpy, tokenizers, onnxruntime, litert")
        cpu = spec.cpu(spec.default_cpus[0])
        probed = probe(env, qemu, cpu, qemu_cpu_for(spec, qemu, cpu)[0], imports=True,
                       write_bytecode=True)  # compiles the .pyc files once, here
        record.update(versions=probed["versions"], bytes=_tree_size(tmp),
                      seconds=round(time.perf_counter() - began, 1))
        atomic_write_json(tmp / ENVIRONMENT_FILE, record)
    return Environment(final, record)


def _apt_config(spec: EmulationSpec, root: Path) -> Path:
    """A private apt configuration for arm64 in `root` (lists, state and archives of its own),
    so the host's dpkg architectures and apt state never change; returns its apt.conf."""
    for sub in ("state/lists/partial", "cache/archives/partial", "etc/apt.conf.d",
                "etc/preferences.d", "etc/sources.list.d"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "state" / "status").touch()
    sysroot = spec.sysroot
    line = f"[arch=arm64 signed-by={sysroot['keyring']}]"
    suite = sysroot["suite"]
    (root / "etc" / "sources.list").write_text(
        f"deb {line} {sysroot['mirror']} {suite} main\n"
        f"deb {line} {sysroot['mirror']} {suite}-updates main\n"
        f"deb {line} {sysroot['security']} {suite}-security main\n")
    settings = {"APT::Architecture": "arm64", "Dir::State": root / "state",
                "Dir::State::status": root / "state" / "status", "Dir::Cache": root / "cache",
                "Dir::Etc::SourceList": root / "etc" / "sources.list",
                "Dir::Etc::SourceParts": root / "etc" / "sources.list.d",
                "Dir::Etc::Parts": root / "etc" / "apt.conf.d",
                "Dir::Etc::Preferences": root / "etc" / "preferences",
                "Dir::Etc::PreferencesParts": root / "etc" / "preferences.d",
                "Acquire::Languages": "none", "APT::Sandbox::User": "root"}
    text = "".join(f'{k} "{v}";\n' for k, v in settings.items())
    (root / "apt.conf").write_text(text + 'APT::Architectures { "arm64"; };\n')
    return root / "apt.conf"


def _download_debs(spec: EmulationSpec, downloads: Path) -> list[Path]:
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise UserError("building the emulation environment needs apt-get and dpkg-deb "
                        "(a Debian or Ubuntu host)")
    env = {**os.environ, "APT_CONFIG": str(_apt_config(spec, downloads / "apt"))}
    dest = downloads / "debs"
    _run(["apt-get", "update", "-qq"], "apt-get update (arm64 lists)", env=env)
    dest.mkdir(parents=True)
    _run(["apt-get", "download", "-qq", *spec.sysroot["packages"]], "apt-get download",
         env=env, cwd=dest)
    return sorted(dest.glob("*.deb"))


def _download_wheels(spec: EmulationSpec, dest: Path, target: Path) -> list[Path]:
    wheels = spec.wheels
    tags = ["--only-binary=:all:", "--python-version", wheels["python_version"],
            "--implementation", "cp"]
    for platform in wheels["platforms"]:
        tags += ["--platform", platform]
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    _run([*pip, "download", "--dest", str(dest), *tags, *wheels["requirements"]],
         "pip download (aarch64 wheels)")
    _run([*pip, "install", "--no-index", "--find-links", str(dest), "--target", str(target),
          *tags, *wheels["requirements"]], "pip install --target (aarch64 wheels)")
    return sorted(dest.glob("*.whl"))


def _run(argv: list[str], what: str, **kwargs) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    except OSError as err:
        raise UserError(f"{what} failed: {err}") from None
    if done.returncode != 0:
        tail = " ".join((done.stderr or done.stdout).split())[-300:]
        raise UserError(f"{what} failed (exit {done.returncode}): {tail}")


def _tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


# ---------------------------------------------------------------------------------- running


def cpu_root(env: Environment, cpu: CpuProfile) -> Path:
    """What qemu's -L sees for `cpu`: links to the sysroot's folders and a /proc/cpuinfo with
    this host's core count in arm64 format (made once, atomically)."""
    cores = os.cpu_count() or 1
    root = env.root / "cpus" / f"{cpu.name}-{cores}"
    if (root / "proc" / "cpuinfo").is_file():
        return root
    with build_lock():
        if (root / "proc" / "cpuinfo").is_file():  # built while this process waited
            return root
        _write_cpu_root(env, cpu, cores, root)
    return root


def _write_cpu_root(env: Environment, cpu: CpuProfile, cores: int, root: Path) -> None:
    with atomic_directory(root) as tmp:
        for entry in env.sysroot.iterdir():
            # relative, so the links survive the environment's atomic rename into place
            (tmp / entry.name).symlink_to(Path("..", "..", "sysroot", entry.name))
        (tmp / "proc").mkdir()
        (tmp / "proc" / "cpuinfo").write_text(cpu.cpuinfo(cores))


def emulated_python(env: Environment, qemu: Qemu, cpu: CpuProfile, qemu_cpu: str, *,
                    write_bytecode: bool = False) -> tuple[list[str], dict]:
    """(argv prefix, environment) that start the emulated python3.11 for `cpu`."""
    root = cpu_root(env, cpu)
    python = env.sysroot / env.record["sysroot"]["python"]
    variables = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/"),
                 "LANG": "C.UTF-8", "PYTHONPATH": str(env.wheels), "PYTHONNOUSERSITE": "1",
                 "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    if not write_bytecode:
        variables["PYTHONDONTWRITEBYTECODE"] = "1"
    return [qemu.path, "-L", str(root), "-cpu", qemu_cpu, str(python)], variables


def probe(env: Environment, qemu: Qemu, cpu: CpuProfile, qemu_cpu: str, *,
          imports: bool = False, write_bytecode: bool = False) -> dict:
    """What the emulated process sees: machine, hwcap features, the cpuinfo it reads, and with
    `imports` the versions of numpy, tokenizers, onnxruntime and ai-edge-litert.

    Raises UserError when the emulated python fails (the message says how)."""
    prefix, variables = emulated_python(env, qemu, cpu, qemu_cpu, write_bytecode=write_bytecode)
    argv = [*prefix, str(PROBE), *(["--imports"] if imports else [])]
    done = subprocess.run(argv, capture_output=True, text=True, env=variables, timeout=600)
    if done.returncode != 0:
        raise UserError(f"the emulated python failed on CPU profile {cpu.name} (exit "
                        f"{done.returncode}): {' '.join(done.stderr.split())[-300:]}")
    return json.loads(done.stdout)


def run_emulated(env: Environment, qemu: Qemu, cpu: CpuProfile, qemu_cpu: str,
                 args: list[str], timeout: float) -> subprocess.CompletedProcess:
    """Run `python3.11 args...` under emulation (bytecode not written)."""
    prefix, variables = emulated_python(env, qemu, cpu, qemu_cpu)
    return subprocess.run([*prefix, *args], capture_output=True, text=True, env=variables,
                          timeout=timeout)
