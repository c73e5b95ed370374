from edgecompress.reports.html import pareto_svg
from edgecompress.reports.pareto import dominates, pareto_front


def _row(target, fmt, latency, accuracy, size=1_000_000):
    return {"target": target, "format": fmt, "scheme": "fp32", "p50_ms": latency,
            "accuracy": accuracy, "size_bytes": size, "budgets": {"latency_ms": 20.0}}


ROWS = [_row("x86-cpu", "onnx", 16.0, 0.82),      # dominated by the phone's 5 ms / 0.82
        _row("arm64-phone", "tflite", 5.0, 0.82),  # front
        _row("rpi5", "tflite", 3.0, 0.79),         # front: fastest
        _row("npu-int8", "onnx", 4.0, 0.78),       # dominated by rpi5
        _row("edgetpu", "tflite", None, 0.80)]     # no latency: never on the front


def test_dominates_needs_strictly_better_on_one_axis():
    assert dominates((5.0, 0.82), (16.0, 0.82))
    assert not dominates((5.0, 0.82), (5.0, 0.82))
    assert not dominates((3.0, 0.79), (5.0, 0.82))


def test_pareto_front_keeps_exactly_the_non_dominated_rows():
    assert pareto_front(ROWS) == [1, 2]


def test_svg_draws_every_measured_row_rings_the_front_and_draws_budgets():
    svg = pareto_svg(ROWS, pareto_front(ROWS), teacher_accuracy=0.819)
    assert svg.count('class="point"') == 4
    assert svg.count('class="pareto"') == 2
    assert svg.count('class="budget"') == 5  # one per target, measured or not
    assert svg.count("<rect x=") >= 2  # TFLite rows are squares


def test_svg_says_so_when_nothing_is_measured():
    assert "No artifact" in pareto_svg([_row("x86-cpu", "onnx", None, None)], [], None)
