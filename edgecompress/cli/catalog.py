"""`data` and `targets`: what edgecompress knows about — registered datasets, target profiles."""

from __future__ import annotations

import typer

from edgecompress.cli.common import console, guarded, print_json
from edgecompress.cli.output import emit_result, json_mode

data_app = typer.Typer(help="Registered datasets.", no_args_is_help=True)
targets_app = typer.Typer(help="Edge target profiles.", no_args_is_help=True)


@data_app.command("list")
@guarded
def data_list(as_json: bool = typer.Option(False, "--json", help="Print a JSON list, one "
                                           "object per dataset.")) -> None:
    """List the registered datasets."""
    from dataclasses import asdict

    from edgecompress.compress.data.datasets import list_datasets

    emit_result([asdict(info) for info in list_datasets()], as_json, _print_datasets)


def _print_datasets(infos: list[dict]) -> None:
    from rich.table import Table

    columns = ("name", "version", "task", "source", "description")
    table = Table(*columns)
    for info in infos:
        table.add_row(*(info[c] for c in columns))
    console.print(table)


@data_app.command("fetch")
@guarded
def data_fetch(name: str = typer.Argument(..., help="Registered dataset name."),
               as_json: bool = typer.Option(False, "--json", help="Print one JSON object: "
                                            "name, cached path, examples per split.")) -> None:
    """Download, verify (sha256) and cache a registered dataset."""
    from edgecompress.compress.data.datasets import fetch_dataset, load_dataset

    with json_mode(as_json):
        path = fetch_dataset(name)
        dataset = load_dataset(name)
    result = {"name": name, "path": str(path),
              "splits": {split: len(part.texts) for split, part in dataset.splits.items()}}
    emit_result(result, as_json, lambda r: console.print(
        f"{name}: {', '.join(f'{k} {n}' for k, n in r['splits'].items())} — cached at {path}",
        markup=False, highlight=False))


# --- targets ----------------------------------------------------------------------------------

def _profile_json(profile) -> dict:
    """A loaded profile as JSON, with its source file and `needs` (an optional extra and how to
    install it, or None)."""
    from dataclasses import asdict

    from edgecompress.targets.extras import needs

    return {**asdict(profile), "source": str(profile.source), "needs": needs(profile.format)}


@targets_app.command("list")
@guarded
def targets_list(as_json: bool = typer.Option(False, "--json", help="Print a JSON list, one "
                                              "object per profile (as targets show --json).")
                 ) -> None:
    """List the shipped edge target profiles (and how to enable those needing an extra)."""
    from edgecompress.targets import list_profiles

    profiles = list_profiles()
    if as_json:
        print_json([_profile_json(p) for p in profiles])
    else:
        _print_profiles(profiles)


def _print_profiles(profiles) -> None:
    from rich.markup import escape
    from rich.table import Table

    from edgecompress.targets.extras import enable_hint

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
                 as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")
                 ) -> None:
    """Show one target profile (`needs`: an optional extra and how to install it, if any)."""
    from edgecompress.targets import load_profile

    emit_result(_profile_json(load_profile(name)), as_json, _print_profile)


def _print_profile(profile: dict) -> None:
    from rich.markup import escape

    for key, value in profile.items():
        if value is not None or key != "needs":
            console.print(f"[bold]{key}[/bold]: {escape(str(value))}")
