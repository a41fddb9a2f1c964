"""sQuid: identity — DIDs, keys, sub-identities, authentication."""
