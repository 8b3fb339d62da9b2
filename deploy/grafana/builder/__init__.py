"""Generates every JSON file under deploy/grafana/ from typed Python.

Run `python -m deploy.grafana.builder` after editing anything here; `--check` fails when the
committed JSON is stale (tests/unit/deploy/grafana/test_assets.py runs the same check). The JSON
files are the deliverable that `envnet grafana push` reads; this package is only needed to change
them.
"""
