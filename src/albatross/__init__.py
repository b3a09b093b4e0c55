"""Albatross: a self-hosted Layer-7 load balancer that behaves like AWS Application Load Balancer."""

__version__ = "0.1.0"
__all__ = ["__version__"]
