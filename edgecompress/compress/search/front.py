"""What a search found, per target: every trial's point, the Pareto front over (accuracy, p50
latency, size), the trial chosen under the budgets, and the nearest trials when none meets them.

Pure functions over trial results (trial.py's result JSON), so the rules are tested directly.
"""

from __future__ import annotations

from dataclasses import dataclass

MB = 1e6


@dataclass(frozen=True)
class Budgets:
    """Per-target limits: p50 latency (ms), file size (MB), accuracy drop vs the teacher
    (points, paired, on the search's split). None: unlimited."""

    latency_ms: float | None = None
    size_mb: float | None = None
    max_drop: float | None = None

    def __post_init__(self) -> None:
        for name in ("latency_ms", "size_mb", "max_drop"):
            value = getattr(self, name)
            if value is not None and (value < 0 or (value == 0 and name != "max_drop")):
                raise ValueError(f"budget {name} must be positive, got {value}")

    def any(self) -> bool:
        return any(v is not None for v in (self.latency_ms, self.size_mb, self.max_drop))

    def excess(self, row: dict) -> tuple[float, float, float]:
        """How far `row` is over each budget (<= 0: within), in the budget's own units."""
        return (_over(row["p50_ms"], self.latency_ms), _over(row["size_bytes"] / MB, self.size_mb),
                _over(-row["delta"], self.max_drop))

    def meets(self, row: dict) -> bool:
        return all(e <= 0 for e in self.excess(row))

    def distance(self, row: dict) -> float:
        """Relative excess summed over budgets: 0 within them; ranks the nearest misses."""
        limits = (self.latency_ms, self.size_mb, max(self.max_drop or 0.0, 1.0))
        return sum(max(e, 0.0) / (limit or 1.0) for e, limit in zip(self.excess(row), limits))


def _over(value: float, limit: float | None) -> float:
    return 0.0 if limit is None else float(value) - float(limit)


REFUSED_EXCESS = 1e3  # a refused or pruned target misses every budget by far


def constraints(result: dict, targets: tuple[str, ...], budgets: Budgets) -> list[float]:
    """Optuna constraint values (<= 0 feasible): three per target, in target order."""
    values = []
    for target in targets:
        row = (result.get("targets") or {}).get(target)
        measured = row is not None and "refused" not in row
        values += list(budgets.excess(row)) if measured else [REFUSED_EXCESS] * 3
    return values


def measured_rows(result: dict) -> dict[str, dict]:
    return {t: row for t, row in (result.get("targets") or {}).items() if "refused" not in row}


def objectives(result: dict) -> tuple[float, float, float] | None:
    """(accuracy, p50 ms, MB) averaged over the measured targets; None when none was."""
    rows = list(measured_rows(result).values())
    if not rows:
        return None
    n = len(rows)
    return (sum(r["accuracy"] for r in rows) / n, sum(r["p50_ms"] for r in rows) / n,
            sum(r["size_bytes"] for r in rows) / n / MB)


def _point(row: dict) -> tuple[float, float, float]:
    return row["accuracy"], -row["p50_ms"], -row["size_bytes"]


def _dominates(a: tuple, b: tuple) -> bool:
    return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))


def target_points(results: list[dict], target: str) -> list[dict]:
    """Every finished trial's row for `target` (with its trial number), in trial order."""
    rows = []
    for result in results:
        row = measured_rows(result).get(target)
        if result.get("state") == "complete" and row is not None:
            rows.append({"trial": result["number"], **row})
    return rows


def front(rows: list[dict]) -> list[int]:
    """Trial numbers no other row beats on accuracy, latency and size at once."""
    points = [_point(r) for r in rows]
    return [r["trial"] for i, r in enumerate(rows)
            if not any(_dominates(q, points[i]) for j, q in enumerate(points) if j != i)]


def _rank(rows: list[dict]) -> tuple[float, float, float]:
    """Sort key of a trial over its rows: more accurate first, ties to faster, then smaller."""
    n = len(rows)
    return (sum(r["accuracy"] for r in rows) / n, -sum(r["p50_ms"] for r in rows) / n,
            -sum(r["size_bytes"] for r in rows) / n)


def chosen(rows: list[dict], budgets: Budgets) -> int | None:
    """The most accurate trial within the budgets (ties: faster, then smaller)."""
    within = [r for r in rows if budgets.meets(r)]
    if not within:
        return None
    return max(within, key=lambda r: _rank([r]))["trial"]


def nearest(rows: list[dict], budgets: Budgets, k: int = 3) -> list[int]:
    """The `k` trials closest to meeting the budgets."""
    ranked = sorted(rows, key=lambda r: (budgets.distance(r), -r["accuracy"]))
    return [r["trial"] for r in ranked[:k]]


def joint_best(results: list[dict], targets: tuple[str, ...], budgets: Budgets) -> int | None:
    """The trial within the budgets on every target with the best mean accuracy (ties as
    `chosen`: faster, then smaller, so with one target it is the chosen trial)."""
    ranked = []
    for result in results:
        rows = measured_rows(result)
        if result.get("state") != "complete" or set(targets) - set(rows):
            continue
        if all(budgets.meets(rows[t]) for t in targets):
            ranked.append((_rank([rows[t] for t in targets]), result["number"]))
    return max(ranked, key=lambda item: item[0])[1] if ranked else None
