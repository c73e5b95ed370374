"""What an emulated process sees (run by targets/emulation.py inside the emulated python, so it
uses the standard library only): machine, the hwcap features the kernel (here qemu) reports,
the first cpuinfo line, and with --imports the runtimes' versions. Prints one JSON object."""

import ctypes
import json
import platform
import sys

AT_HWCAP, AT_HWCAP2 = 16, 26
# arm64 <asm/hwcap.h> bits that decide XNNPACK's / ONNX Runtime's int8 and fp16 kernels
HWCAP = {"fphp": 9, "asimdhp": 10, "asimddp": 20, "sve": 22, "asimdfhm": 23}
HWCAP2 = {"sve2": 1, "svei8mm": 9, "i8mm": 13, "bf16": 14, "sme": 23}


def features() -> list:
    getauxval = ctypes.CDLL(None).getauxval
    getauxval.restype = ctypes.c_ulong
    words = {AT_HWCAP: HWCAP, AT_HWCAP2: HWCAP2}
    return sorted(name for at, bits in words.items() for name, bit in bits.items()
                  if getauxval(at) >> bit & 1)


def versions() -> dict:
    from importlib.metadata import version

    import numpy
    import onnxruntime
    import tokenizers
    from ai_edge_litert import interpreter  # noqa: F401  (loads the runtime's library)

    return {"python": platform.python_version(), "numpy": numpy.__version__,
            "tokenizers": tokenizers.__version__, "onnxruntime": onnxruntime.__version__,
            "ai-edge-litert": version("ai-edge-litert")}


def main() -> int:
    with open("/proc/cpuinfo") as handle:
        first = handle.readline().strip()
    found = {"machine": platform.machine(), "features": features(), "cpuinfo": first}
    if "--imports" in sys.argv:
        found["versions"] = versions()
    sys.stdout.write(json.dumps(found) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
