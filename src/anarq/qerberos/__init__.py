"""Qerberos — the audit log and the guard at the door."""
