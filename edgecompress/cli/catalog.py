"""`data` and `targets`: what edgecompress knows about — registered datasets, target profiles."""

from __future__ import annotations

import typer

from edgecompress.cli.common import console, guarded, print_json

data_app = typer.Typer(help="Registered datasets.", no_args_is_help=True)
targets_app = typer.Typer(help="Edge target profiles.", no_args_is_help=True)


@data_app.command("list")
@guarded
def data_list() -> None:
    """List the registered datasets."""
    from rich.table import Table

    from edgecompress.compress.data.datasets import list_datasets

    table = Table("name", "version", "task", "source", "description")
    for info in list_datasets():
        table.add_row(info.name, info.version, info.task, info.source, info.description)
    console.print(table)


@data_app.command("fetch")
@guarded
def data_fetch(name: str = typer.Argument(..., help="Registered dataset name.")) -> None:
    """Download, verify (sha256) and cache a registered dataset."""
    from edgecompress.compress.data.datasets import fetch_dataset, load_dataset

    path = fetch_dataset(name)
    dataset = load_dataset(name)
    sizes = ", ".join(f"{k} {len(v.texts)}" for k, v in dataset.splits.items())
    console.print(f"{name}: {sizes} — cached at {path}")


# --- targets ----------------------------------------------------------------------------------

@targets_app.command("list")
@guarded
def targets_list() -> None:
    """List the shipped edge target profiles (and how to enable those needing an extra)."""
    from rich.markup import escape
    from rich.table import Table

    from edgecompress.targets import list_profiles
    from edgecompress.targets.extras import enable_hint

    profiles = list_profiles()
    hints = {p.name: enable_hint(p.format) for p in profiles}  # None: nothing to install
    columns = ["name", "format", "runtime", "scheme", "threads", "shape", "description"]
    table = Table(*columns, *(["enable with"] if any(hints.values()) else []))
    for p in profiles:
        shape = {"dynamic": "dynamic", "dynamic-seq": f"{p.batch}x<={p.seq_len}"}.get(
            p.shape, f"{p.batch}x{p.seq_len}")
        row = [p.name, p.format, p.runtime, p.scheme, str(p.threads), shape, p.description]
        table.add_row(*row, *([escape(hints[p.name] or "")] if any(hints.values()) else []))
    console.print(table)


@targets_app.command("show")
@guarded
def targets_show(name: str = typer.Argument(..., help="Target name or path to a profile .toml."),
                 as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show one target profile (`needs`: an optional extra and how to install it, if any)."""
    from dataclasses import asdict

    from rich.markup import escape

    from edgecompress.targets import load_profile
    from edgecompress.targets.extras import needs

    loaded = load_profile(name)
    profile = {**asdict(loaded), "source": str(loaded.source), "needs": needs(loaded.format)}
    if as_json:
        print_json(profile)
    else:
        for key, value in profile.items():
            if value is not None or key != "needs":
                console.print(f"[bold]{key}[/bold]: {escape(str(value))}")
