"""Open report.html in headless Chromium: the plot and the table must really render."""

import shutil
import subprocess

import numpy as np
import pytest

from edgecompress.reports import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                                                         "(.ci/run installs it)")


def _chromium(tmp_path, *args) -> subprocess.CompletedProcess:
    profile = tmp_path / "chromium-profile"
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120, check=True)


def test_report_html_dom_has_the_plot_points_and_the_table_rows(run_dir, tmp_path):
    write_report(run_dir)
    dom = _chromium(tmp_path, "--dump-dom", (run_dir / "report.html").as_uri()).stdout
    assert '<svg id="pareto"' in dom
    assert dom.count('class="point"') == 1
    assert dom.count('class="pareto"') == 1
    assert '<table id="artifacts">' in dom and "<td class=\"l\">x86-cpu</td>" in dom


def test_report_html_screenshot_shows_a_coloured_plot(run_dir, tmp_path):
    from PIL import Image

    write_report(run_dir)
    shot = tmp_path / "report.png"
    _chromium(tmp_path, "--window-size=1100,900", f"--screenshot={shot}",
              (run_dir / "report.html").as_uri())
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    non_white = np.any(pixels < 240, axis=2).mean()
    # the only saturated colours on the page are the markers and budget lines of the plot
    saturated = (pixels.max(axis=2) - pixels.min(axis=2) > 60).sum()
    assert non_white > 0.01
    assert saturated > 200


def test_report_html_dom_has_the_per_class_and_data_sections(run_dir, tmp_path):
    import json

    from tests.reports.test_report_sections import TEACHER

    path = run_dir / "teacher" / "eval.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **TEACHER,
                                "truncated": {"max_length": 128, "rows": 5, "share": 0.25}}))
    write_report(run_dir)
    dom = _chromium(tmp_path, "--dump-dom", (run_dir / "report.html").as_uri()).stdout
    assert '<table id="classes">' in dom and "<h2>Per class</h2>" in dom
    assert '<ul id="data">' in dom and "longer than 128 tokens" in dom
    assert dom.count('class="point"') == 1  # the plot is unchanged by the new sections
