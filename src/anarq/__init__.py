"""AnarQ&Q — a sovereign digital infrastructure node."""

__version__ = "0.1.0"
