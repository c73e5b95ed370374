"""edgecompress: make trained Transformers fit edge devices — prune, quantize, distill, export,
verify, benchmark, report."""

import logging
import os

# Never reach a model hub at run time; the real model and data come from registry packages.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# The tokenizer's own threads fight torch for 2 cores: steps ran 3.7x faster without them.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
# torchao (pulled in by litert-torch) registers enums at import and torch logs a deprecation
# warning for each; it says nothing about the user's run.
logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)

__version__ = "0.1.0"
