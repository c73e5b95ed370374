"""Terminal rendering (rich) of inspect / eval / bench results for the CLI."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table


def print_model_info(console, info: dict) -> None:
    console.print(f"[bold]{info['architecture']}[/bold] ({info['kind']}, {info['task']}), "
                  f"hidden {info['hidden']}, vocabulary {info['vocab_size']}")
    table = Table("layer", "heads", "head dim", "FFN")
    for i, layer in enumerate(info["layers"]):
        table.add_row(str(i), str(layer["heads"]), str(layer["head_dim"]), str(layer["ffn"]))
    console.print(table)
    console.print(f"parameters {info['params']:,} = embedding {info['embedding_params']:,} "
                  f"+ encoder {info['encoder_params']:,} + head {info['head_params']:,}; "
                  f"weights {info['file_bytes'] / 1e6:.1f} MB")
    if info.get("family"):
        console.print(f"family {info['family']}; stages: {', '.join(info.get('stages', []))}",
                      markup=False, highlight=False)
    for note in info.get("notes", []):
        console.print(f"note: {note}", markup=False, highlight=False)
    targets = info.get("targets", {})
    if targets:
        ok = [name for name, verdict in targets.items() if verdict == "yes"]
        console.print(f"targets: {', '.join(ok) or 'none'}", markup=False, highlight=False)
        for name, verdict in targets.items():
            if verdict != "yes":
                console.print(f"target {name}: no — {verdict}", markup=False, highlight=False)


def print_eval(console, result: dict) -> None:
    where = f"{result['model']} on {result['dataset']}/{result['split']}"
    if result["task"] in ("similarity", "embedding"):
        if result["task"] == "similarity":
            console.print(f"{where}: Spearman {result['spearman']:.3f}, Pearson "
                          f"{result['pearson']:.3f} over {result['n_pairs']} pairs")
        if "retrieval" in result:
            r = result["retrieval"]
            console.print(f"retrieval vs {result['reference']} ({r['n']} sentences): "
                          f"recall@{r['k']} {r['recall_at_k']:.3f}, MRR {r['mrr']:.3f}"
                          + (f", cosine {r['reference_cosine']:.4f}"
                             if "reference_cosine" in r else ""))
        return
    low, high = result["ci95"]
    line = (f"{where}: accuracy {result['accuracy']:.2%} [{low:.2%}, {high:.2%}] (n={result['n']}),"
            f" macro-F1 {result['macro_f1']:.3f}")
    if "agreement" in result:
        line += f", agreement with reference {result['agreement']:.2%}"
    console.print(line)


def print_bench(console, result: dict) -> None:
    table = Table("runtime", "threads", "shape", "p50 ms", "p90 ms", "p99 ms", "size MB",
                  "gzip MB", "peak RSS MB")
    table.add_row(f"{result['runtime']} {result.get('runtime_version', '')}",
                  str(result["threads"]), f"{result.get('batch')}x{result.get('seq_len')}",
                  f"{result['p50_ms']:.2f}", f"{result['p90_ms']:.2f}", f"{result['p99_ms']:.2f}",
                  f"{result['size_bytes'] / 1e6:.2f}", f"{result['gzip_bytes'] / 1e6:.2f}",
                  f"{result['peak_rss_mb']:.0f}")
    console.print(table)
    from edgecompress.reports.host import describe_host

    console.print(f"measured on this host: {describe_host(result.get('host'))}", markup=False)


def _signed(value, spec: str, suffix: str = "") -> str:
    return "—" if value is None else f"{value:+{spec}}{suffix}"


def _accuracy(diff: dict) -> str:
    text = _signed(diff.get("accuracy_points"), ".2f")
    low, high = diff.get("accuracy_points_ci95") or (None, None)
    return text if low is None else f"{text} [{low:+.2f}, {high:+.2f}] paired"


def print_compare(console, diffs: list[dict], regressions: list[str],
                  warnings: list[str] = ()) -> None:
    table = Table("artifact", "status", "accuracy Δ (points)", "p50 Δ ms", "p50 Δ %", "size Δ MB")
    for d in diffs:
        size = None if d.get("size_bytes") is None else d["size_bytes"] / 1e6
        table.add_row(d["artifact"], d["status"], _accuracy(d),
                      _signed(d.get("p50_ms"), ".2f"), _signed(d.get("p50_relative"), ".1%"),
                      _signed(size, ".2f"))
    console.print(table)
    for line in warnings:
        console.print(f"[yellow]warning[/yellow]: {escape(line)}", highlight=False)
    for line in regressions:
        console.print(f"[red]regression[/red]: {escape(line)}", highlight=False)
    if not regressions:
        console.print("no regression")
