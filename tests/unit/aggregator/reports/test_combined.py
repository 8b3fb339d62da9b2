"""`envnet report all`: the kinds that apply, together, and the ones that do not, said."""

from __future__ import annotations

from typing import Any

import pytest

from aggregator.reports.html_page import Section
from aggregator.reports.kinds import CombinedReport
from aggregator.reports.request import ReportUsageError


class Part:
    def __init__(self, kind: str) -> None:
        self.kind = kind

    def to_json(self) -> dict[str, Any]:
        return {self.kind: {"valid_days": 1}}

    def to_csv(self) -> str:
        return "a,b\n"

    def to_text(self) -> str:
        return f"{self.kind} table\n"

    def html_sections(self) -> list[Section]:
        return [Section(f"{self.kind} title", "<p>x</p>")]


def combined() -> CombinedReport:
    return CombinedReport(
        (("water", Part("water")), ("noise", Part("noise"))),
        (("air", "no selected node has an air_zone <here>"),),
    )


def test_the_parts_are_joined_and_what_was_not_reported_is_said() -> None:
    report = combined()
    assert report.to_json() == {
        "water": {"valid_days": 1},
        "noise": {"valid_days": 1},
        "not_reported": {"air": "no selected node has an air_zone <here>"},
    }
    assert report.to_text() == (
        "water table\n\nnoise table\n\nair: not reported: no selected node has an air_zone <here>\n"
    )
    sections = report.html_sections()
    assert [s.title for s in sections] == ["water title", "noise title", "Not reported"]
    assert "&lt;here&gt;" in sections[-1].body


def test_csv_needs_one_kind() -> None:
    with pytest.raises(ReportUsageError, match="one kind"):
        combined().to_csv()
