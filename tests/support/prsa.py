"""Small station files in the PRSA format (UCI Beijing Multi-Site Air-Quality Data), written
by the tests themselves so that replay tests run where ../shared/data is absent."""

from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path

from simulators.replay_csv import COLUMNS


def write_prsa(path: Path, first: date, days: int, hours: int | None = None) -> None:
    """Hourly rows in the PRSA format, with a few NA values, as the station files have:
    `days` days from `first`, or only the first `hours` hours of them."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for n in range(days * 24 if hours is None else min(hours, days * 24)):
            day, hour = first + timedelta(days=n // 24), n % 24
            values = [
                str(40 + n % 17),  # PM2.5
                str(70 + n % 23),  # PM10
                str(5 + n % 7),  # SO2
                str(30 + n % 11),  # NO2
                str(800 + 10 * (n % 13)),  # CO, ug/m3
                str(50 + n % 19),  # O3
                f"{5 + n % 9 / 2:.1f}",  # TEMP
                f"{1015 + n % 5:.1f}",  # PRES
                f"{-3 + n % 4:.1f}",  # DEWP
            ]
            if n % 10 == 3:
                values[n % 6] = "NA"
            if n % 17 == 5:
                values[8] = "NA"  # DEWP: no rh
            row = [n + 1, day.year, day.month, day.day, hour, *values, "0.0", "NW", "2.1", "X"]
            writer.writerow(row)
