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
    """A loaded profile as JSON, with its `kind` ("encoder" or "llm"), its source file and
    `needs` (an optional extra and how to install it, or None)."""
    from dataclasses import asdict

    from edgecompress.targets.extras import needs

    return {"kind": getattr(profile, "kind", "encoder"), **asdict(profile),
            "source": str(profile.source), "needs": needs(profile.format)}


def _load_target(name: str):
    """A target profile of either kind by name or .toml path: an LLMProfile for `kind = "llm"`
    files, else the encoder Profile (whose loader names an unknown target)."""
    from pathlib import Path

    from edgecompress.targets import load_profile
    from edgecompress.targets.llm.profile import load_llm_profile
    from edgecompress.targets.profiles import read_profile_toml, shipped_profiles

    path = shipped_profiles("llm").get(name)
    if path is None and name.endswith(".toml") and Path(name).is_file():
        path = Path(name) if read_profile_toml(Path(name))[0] == "llm" else None
    return load_llm_profile(path) if path is not None else load_profile(name)


@targets_app.command("list")
@guarded
def targets_list(as_json: bool = typer.Option(False, "--json", help="Print a JSON list, one "
                                              "object per profile (as targets show --json).")
                 ) -> None:
    """List the shipped edge target profiles: encoder targets, then language-model targets
    (`llm export`), and how to enable those needing an extra."""
    from edgecompress.targets import list_profiles
    from edgecompress.targets.llm.profile import list_llm_profiles

    profiles, llm = list_profiles(), list_llm_profiles()
    if as_json:
        print_json([_profile_json(p) for p in (*profiles, *llm)])
    else:
        _print_profiles(profiles)
        _print_llm_profiles(llm)


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


def _print_llm_profiles(profiles) -> None:
    from rich.markup import escape
    from rich.table import Table

    from edgecompress.targets.extras import enable_hint

    hints = {p.name: enable_hint(p.format) for p in profiles}
    columns = ["name", "format", "runtime", "scheme", "threads", "gate", "description"]
    table = Table(*columns, *(["enable with"] if any(hints.values()) else []),
                  title="Language-model targets (edgecompress llm export --target NAME)")
    for p in profiles:
        gate = f"KL <= {p.gate.kl_max:g}, top-1 >= {p.gate.top1_min:g}"
        row = [p.name, p.format, p.runtime, p.scheme, str(p.threads), gate, p.description]
        table.add_row(*row, *([escape(hints[p.name] or "")] if any(hints.values()) else []))
    console.print(table)


@targets_app.command("show")
@guarded
def targets_show(name: str = typer.Argument(..., help="Target name or path to a profile .toml."),
                 as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")
                 ) -> None:
    """Show one target profile, encoder or language-model (`needs`: an optional extra and how
    to install it, if any)."""
    emit_result(_profile_json(_load_target(name)), as_json, _print_profile)


def _print_profile(profile: dict) -> None:
    from rich.markup import escape

    for key, value in profile.items():
        if value is not None or key != "needs":
            console.print(f"[bold]{key}[/bold]: {escape(str(value))}")
