"""Observability: counters for metrics, ALB's access and connection logs, written off the loop."""
