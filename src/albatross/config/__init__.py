"""Configuration in ALB's terms: load and validate (``load``), the model (``model``)."""

from albatross.config.load import load, parse
from albatross.config.model import Config

__all__ = ["Config", "load", "parse"]
