"""Simulated sensors, fleets and replays that stand in for hardware in tests and demos."""
