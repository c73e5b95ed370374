"""The door: a thin typer app. Commands parse, load, call the library and print.

Heavy imports (torch, transformers, onnxruntime, litert) happen inside commands so that
`edgecompress --help` answers at once. A user mistake prints one line and exits 2.

    stages.py   finetune, prune, distill, quantize, export
    models.py   inspect, init-encoder, eval, bench
    run.py      run, demo
    search.py   search            vision.py   init-vit
    catalog.py  data, targets     deliver.py  report, bundle
    verify.py   verify (arm64 kernels under emulation)
    llm.py      llm list / inspect / eval / prune (decoder-only language models)
"""

from __future__ import annotations

import typer

from edgecompress.cli import llm, models, run, stages, verify
from edgecompress.cli.catalog import data_app, targets_app
from edgecompress.cli.common import configure_process
from edgecompress.cli.deliver import bundle_app, report_app
from edgecompress.cli.flags import OneLineUsageErrors, renamed_options
from edgecompress.cli.search import search_command
from edgecompress.cli.vision import INIT_VIT_RENAMES, init_vit_command

app = typer.Typer(help="Prune, quantize, distill and export trained Transformers for edge "
                       "devices — verified, benchmarked, reported.",
                  no_args_is_help=True, pretty_exceptions_enable=False,
                  callback=configure_process, cls=OneLineUsageErrors)
app.command("inspect")(models.inspect)
app.command("init-encoder", cls=renamed_options(models.INIT_ENCODER_RENAMES))(models.init_encoder)
app.command("init-vit", cls=renamed_options(INIT_VIT_RENAMES))(init_vit_command)
app.command("finetune")(stages.finetune)
app.command("prune")(stages.prune)
app.command("distill")(stages.distill)
app.command("eval")(models.eval_command)
app.command("export")(stages.export)
app.command("quantize")(stages.quantize)
app.command("bench")(models.bench)
app.command("run")(run.run_command)
app.command("demo")(run.demo)
app.command("search")(search_command)
app.command("verify")(verify.verify)
app.add_typer(data_app, name="data")
app.add_typer(targets_app, name="targets")
app.add_typer(report_app, name="report")
app.add_typer(bundle_app, name="bundle")
app.add_typer(llm.llm_app, name="llm")
