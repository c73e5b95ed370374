"""Where a model goes and how it runs there: target profiles, exporters, runtimes, bench.

Takes a torch module `forward(input_ids, attention_mask) -> (B, C)`, example inputs and a
profile; imports neither `edgecompress.compress` nor `edgecompress.reports`.
"""

from edgecompress.targets.bench import bench
from edgecompress.targets.export import ExportResult, export, verify
from edgecompress.targets.host import host_info
from edgecompress.targets.profiles import Profile, list_profiles, load_profile
from edgecompress.targets.runtimes import Runner, load_runner, torch_runner

__all__ = ["ExportResult", "Profile", "Runner", "bench", "export", "host_info", "list_profiles",
           "load_profile", "load_runner", "torch_runner", "verify"]
