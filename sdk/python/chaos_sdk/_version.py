"""The version of the chaos-sdk distribution (pyproject.toml reads it from here)."""

__version__ = "0.1.0"
