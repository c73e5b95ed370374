"""edgecompress: make trained Transformers fit edge devices — prune, quantize, distill, export,
verify, benchmark, report."""

import logging
import os

# Never reach a model hub at run time; the real model and data come from registry packages.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
# The tokenizer's own threads fight torch for 2 cores: steps ran 3.7x faster without them.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
# The TFLite converter's C++ logging (oneDNN notes, op counts) is not for users; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("GLOG_minloglevel", "2")
# torchao (pulled in by litert-torch) registers enums at import, torch logs a deprecation warning
# for each, and torchao warns that its CUDA kernels do not load on this CPU build. None of it
# says anything about the user's run.
logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)
logging.getLogger("torchao").setLevel(logging.ERROR)
# The ONNX exporter notes, on every export, that torchvision ops are not registered; we export none.
logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)

__version__ = "0.1.0"
