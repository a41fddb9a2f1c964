"""Python client for a node's HTTP API."""

from anarq.sdk.client import ApiError, Client

__all__ = ["ApiError", "Client"]
