"""Grafana as code for envnet: the committed assets and the builder that generates them."""
