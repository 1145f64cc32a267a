"""The caller's identity: a response belongs to the API key that created it.

Keys are never stored: a response's owner is a digest of its key. The auth middleware
(:mod:`outlast.http.auth`) puts the caller's owner in the ASGI scope under :data:`OWNER_SCOPE_KEY`;
without configured keys every caller is the same (empty) owner.
"""

from __future__ import annotations

import hashlib

OWNER_SCOPE_KEY = "outlast.owner"


def owner_of(key: str) -> str:
    """The owner id of an API key: a digest, so keys themselves are never kept."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]
