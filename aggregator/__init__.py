"""The envnet aggregator: intake, storage, alerts and metrics."""
