"""Period reports of the programme's targets (`envnet report`), computed from what InfluxDB
holds.

- `request`: the period (local dates, inclusive), the node selection (ids, a group of the
  stored inventory) and local-day arithmetic; `settings`: agg.toml [report], the evaluation
  rules no verified standard fixes (UNVERIFIED ones marked, docs/standards.md §2.7).
- `queries` (pure InfluxQL builders and answer parsers) and `fetch` (the HTTP shell).
- `air` (good-air days, AQI categories, exceedance days, means, O3 evaluation value; pure,
  numpy) and `air_render` (JSON, CSV, text, HTML sections).
- `html_page`: the self-contained HTML page that every kind contributes sections to.
- `kinds`: the kind → builder table (`KINDS`; water, noise and bloom not built yet) and
  `run_report`, what `envnet report` calls.
"""

__all__ = ["kinds", "request", "settings"]
