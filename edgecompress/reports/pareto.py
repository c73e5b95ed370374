"""The Pareto front over latency and accuracy, across every target and format of a run."""

from __future__ import annotations


def _point(row: dict) -> tuple[float, float] | None:
    latency, accuracy = row.get("p50_ms"), row.get("accuracy")
    if latency is None or accuracy is None:
        return None
    return float(latency), float(accuracy)


def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """True when `a` (latency, accuracy) is no worse than `b` on both and better on one."""
    return a[0] <= b[0] and a[1] >= b[1] and (a[0] < b[0] or a[1] > b[1])


def pareto_front(rows: list[dict]) -> list[int]:
    """Indices of rows that no other row dominates (lower latency and higher accuracy).

    Rows without a latency or an accuracy are never on the front.
    """
    points = [_point(row) for row in rows]
    front = []
    for i, p in enumerate(points):
        if p is None:
            continue
        if not any(q is not None and dominates(q, p) for j, q in enumerate(points) if j != i):
            front.append(i)
    return front
