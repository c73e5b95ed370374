"""What a running search shows: a line per finished trial and, on a terminal, a live panel with
trials done / running / pruned, the best so far per target and the time against --time."""

from __future__ import annotations

from edgecompress.compress.search.front import Budgets, chosen, target_points


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


def trial_line(result: dict) -> str:
    """One finished trial, e.g. `trial 3 complete in 41 s: x86-cpu 81.2 % 3.10 ms 2.4 MB`."""
    head = f"trial {result['number']} {result.get('state', 'failed')}"
    head += f" in {result.get('seconds', 0):.0f} s"
    if result.get("state") == "pruned":
        return f"{head}: {result['reason']}"
    if result.get("state") != "complete":
        return f"{head}: {result.get('error', 'no result')}"
    parts = []
    for target, row in result["targets"].items():
        parts.append(f"{target} refused by the parity gate" if "refused" in row else
                     f"{target} {row['accuracy']:.1%} ({row['delta']:+.1f}) {row['p50_ms']:.2f} ms "
                     f"{row['size_bytes'] / 1e6:.1f} MB")
    return f"{head}: " + "; ".join(parts)


class Display:
    def __init__(self, console, targets: tuple[str, ...], budgets: Budgets,
                 limit_s: float | None, trials: int):
        self.console, self.targets, self.budgets = console, targets, budgets
        self.limit_s, self.trials = limit_s, trials
        self.live = None
        if getattr(console, "is_terminal", False):
            from rich.live import Live

            self.live = Live(console=console, refresh_per_second=2, transient=True)
            self.live.start()

    def finished(self, result: dict) -> None:
        self.console.print(trial_line(result), markup=False, highlight=False)

    def update(self, study, running: int, clock) -> None:
        if self.live is not None:
            self.live.update(self._panel(study, running, clock))

    def _panel(self, study, running: int, clock):
        from rich.table import Table

        results = [t.user_attrs["result"] for t in study.get_trials(deepcopy=False)
                   if "result" in t.user_attrs]
        states = [r.get("state") for r in results]
        eta = ""
        if clock.durations and running + len(results) < self.trials:
            left = self.trials - len(results)
            eta = f", ETA {_clock(sum(clock.durations) / len(clock.durations) * left)}"
        limit = f" / {_clock(self.limit_s)}" if self.limit_s else ""
        table = Table(title=f"trials: {states.count('complete')} done, {running} running, "
                            f"{states.count('pruned')} pruned, {states.count('failed')} failed "
                            f"of {self.trials} · {_clock(clock.elapsed())}{limit}{eta}")
        for column in ("target", "best trial", "dev accuracy", "p50 ms", "MB"):
            table.add_column(column)
        for target in self.targets:
            rows = target_points(results, target)
            best = chosen(rows, self.budgets)
            row = next((r for r in rows if r["trial"] == best), None)
            table.add_row(target, *(("-",) * 4 if row is None else (
                str(best), f"{row['accuracy']:.1%}", f"{row['p50_ms']:.2f}",
                f"{row['size_bytes'] / 1e6:.1f}")))
        return table

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
