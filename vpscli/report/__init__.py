"""Review pages a clinician opens in a browser: ``vps report`` and ``vps segment --report``
(:mod:`vpscli.report.render`)."""

from vpscli.report.render import INDEX_NAME, REPORT_NAME, render_report, write_index, write_report

__all__ = ["INDEX_NAME", "REPORT_NAME", "render_report", "write_index", "write_report"]
