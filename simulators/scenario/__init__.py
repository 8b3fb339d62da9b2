"""Scenario files: a simulated run, scripted perturbations and the alert events it must raise.

- `spec`: the TOML format, parsed and checked (pure).
- `verdict`: expected against observed alert events, and the readable diff (pure).
- `results`: the verdict as JUnit XML and JSON (pure).
- `plan`: what a run does, worked out before it starts (pure); `observed`: the alert events
  read back from InfluxDB (pure).
- `nodes`: the run's edge agents; `runner`: plays a scenario through them and the real
  aggregator.
"""

__all__ = ["nodes", "observed", "plan", "results", "runner", "spec", "verdict"]
