"""Monitoring: feature drift between training and serving, feature staleness."""
