"""`edgecompress demo`: `edgecompress run` on the recipe shipped as `recipes/demo.toml`."""

from __future__ import annotations

from pathlib import Path

from edgecompress.compress.pipeline.recipe import load_recipe
from edgecompress.compress.pipeline.runs import run_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def demo_recipe_path() -> Path:
    return RECIPES / "demo.toml"


def run_demo(out: Path, console, *, force: bool = False, bench_runs: int | None = None) -> Path:
    """Run the demo recipe into `out`; returns the path of report.md."""
    import dataclasses

    recipe = load_recipe(demo_recipe_path())
    if bench_runs is not None:
        recipe = dataclasses.replace(recipe, bench_runs=bench_runs)
    return run_recipe(recipe, out, console, force=force)
