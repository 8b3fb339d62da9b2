"""`envnet report`: the programme's KPIs computed from what InfluxDB holds."""

__all__ = ["bloom", "noise", "water"]
