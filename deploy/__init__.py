"""Deployment assets as code: Grafana dashboards, data sources and alert rules (`grafana`),
beside the example configurations, mosquitto, systemd and Pi installer files."""

__all__ = ["grafana"]
