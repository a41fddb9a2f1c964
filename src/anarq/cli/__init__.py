"""The `anarq` command."""
