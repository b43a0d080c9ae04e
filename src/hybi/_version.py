"""The version of hybi, in one place."""

__version__ = "0.1.0"
