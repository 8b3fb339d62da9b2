"""Period reports of the programme's targets (`envnet report`), computed from what InfluxDB
holds.

- `request`: the period (local dates, inclusive), the node selection (ids, a group of the
  stored inventory) and local-day arithmetic; `settings`: agg.toml [report], the evaluation
  rules no verified standard fixes (UNVERIFIED ones marked, docs/standards.md §2.7).
- `queries` (pure InfluxQL builders and answer parsers) and `fetch` (the HTTP shell).
- `air` (good-air days, AQI categories, exceedance days, means, O3 evaluation value; pure,
  numpy) and `air_render` (JSON, CSV, text, HTML sections).
- `water` (GB 3838-2002 site classes per sample day, per site and per group), `noise`
  (GB 3096-2008 day and night compliance per zone class) and `bloom` (days above each WHO
  chlorophyll-a level per site): pure, numpy, each with its JSON, CSV, text and HTML.
- `water_source` (raw water readings, also read by the bloom KPIs), `noise_source` (stored
  day and night periods) and `bloom_source` (chlorophyll-a readings): their queries, parsers
  and HTTP shells.
- `html_page`: the self-contained HTML page that every kind contributes sections to.
- `kinds`: the kind → builder table (`KINDS`) and `run_report`, what `envnet report` calls.
"""

__all__ = [
    "air",
    "air_render",
    "bloom",
    "bloom_source",
    "fetch",
    "html_page",
    "kinds",
    "noise",
    "noise_source",
    "queries",
    "request",
    "settings",
    "water",
    "water_source",
]
