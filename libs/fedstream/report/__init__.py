"""`fedstream report --html`: one self-contained HTML file with plots, for people who would rather look than read.

Four small modules (and the page's template), so the pictures can be tested without a database and the queries without a browser:
``model`` (plain frozen data), ``load`` (PostgreSQL views → model), ``plots`` (model → PNG bytes) and
``page`` (model + PNGs → one HTML string, images inlined as base64).
"""

from fedstream.report.load import NoFederation, load_report
from fedstream.report.model import EpsilonPoint, ParticipantHealth, ReportData, RoundPoint
from fedstream.report.page import render_report

__all__ = [
    "EpsilonPoint", "NoFederation", "ParticipantHealth", "ReportData", "RoundPoint", "load_report", "render_report",
]
