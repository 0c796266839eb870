"""Watching the model in service: drift, triggers, outliers, Prometheus metrics and the audit log."""
