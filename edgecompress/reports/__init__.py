"""What people read: reports built from the JSON that a run directory holds."""

from edgecompress.reports.report import build_report, render_markdown, write_report

__all__ = ["build_report", "render_markdown", "write_report"]
