"""Deployment artifacts: Grafana dashboard generator, Prometheus rules."""
