"""The ExecuTorch backend of targets/runtimes.py: `executorch.runtime` on a .pte (an optional
extra; `require` names how to install it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgecompress.errors import UserError
from edgecompress.targets.extras import require
from edgecompress.targets.inputs import IMAGE_INPUTS, TEXT_INPUTS
from edgecompress.targets.runtime_util import package_version, quiet_fd2


def _executorch_threads(threads: int) -> int | None:
    """Size ExecuTorch's CPU threadpool (XNNPACK runs on it; process-wide); returns the count it
    reports, or None when this build offers no way to set it (the runtime's default is used)."""
    try:
        from executorch.extension.pybindings import portable_lib
    except ImportError:
        return None
    reset = getattr(portable_lib, "_unsafe_reset_threadpool", None)
    count = getattr(portable_lib, "_threadpool_get_thread_count", None)
    if reset is None or count is None:
        return None
    if count() != threads:
        reset(threads)
    return int(count())


class ExecuTorchBackend:
    """`executorch.runtime` on a .pte's "forward" (targets/pte.py writes them). Text: exactly
    `bounded_shape[0]` rows of at most `bounded_shape[1]` tokens (the bounds its memory was
    planned for); images: a fixed (batch, C, H, W). `threads` sizes ExecuTorch's process-wide
    threadpool, which XNNPACK runs on."""

    name = "executorch"

    def __init__(self, path: Path, threads: int):
        require("pte", f"artifact {path}")
        import torch

        with quiet_fd2():  # the runtime's C++ logs (cpuinfo, threadpool) go to fd 2
            from executorch.runtime import Runtime

            self.threads = _executorch_threads(threads)
            method = Runtime.get().load_program(str(path)).load_method("forward")
        meta = method.metadata
        if meta.num_inputs() not in (1, 2) or meta.num_outputs() != 1:
            raise UserError(f"{path}: expected 2 inputs (input_ids, attention_mask) or 1 "
                            f"(pixel_values) and one output, got {meta.num_inputs()} and "
                            f"{meta.num_outputs()}")
        sizes = tuple(int(d) for d in meta.input_tensor_meta(0).sizes())
        if meta.num_inputs() == 1:  # an image model: one fixed (batch, C, H, W) input
            if len(sizes) != 4:
                raise UserError(f"{path}: expected (batch, C, H, W) pixels, got shape {sizes}")
            self.input_names, self.fixed_shape, self.bounded_shape = IMAGE_INPUTS, sizes, None
            self.shapes = {"pixel_values": (np.float32, sizes)}
        else:
            if len(sizes) != 2:
                raise UserError(f"{path}: expected (batch, seq) inputs, got shape {sizes}")
            self.input_names, self.fixed_shape = TEXT_INPUTS, None
            self.bounded_shape = sizes  # (rows exactly, tokens at most)
            self.shapes = {n: (np.int64, (sizes[0], None)) for n in TEXT_INPUTS}
        self.version = package_version("executorch")
        self._method, self._torch = method, torch

    def feed(self, inputs):
        dtype = np.float32 if self.input_names == IMAGE_INPUTS else np.int64
        return [self._torch.from_numpy(np.ascontiguousarray(inputs[n], dtype=dtype))
                for n in self.input_names]

    def invoke(self, feed):
        return self._method.execute(feed)[0].numpy()
