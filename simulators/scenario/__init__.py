"""Scenario files: a simulated run, scripted perturbations and the alert events it must raise.

- `spec`: the TOML format, parsed and checked (pure).
- `verdict`: expected against observed alert events, and the readable diff (pure).
- `results`: the verdict as JUnit XML and JSON (pure).
- `runner`: plays a scenario through real edge agents and the real aggregator.
"""

__all__ = ["results", "runner", "spec", "verdict"]
