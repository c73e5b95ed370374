"""edgecompress: make trained Transformers fit edge devices — prune, quantize, distill, export,
verify, benchmark, report.

Importing the package changes nothing in the process: the command line sets its own environment
(cli/common.configure_process), and every model load passes `local_files_only=True`.
"""

__version__ = "0.1.0"
