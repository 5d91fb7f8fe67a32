"""Automatic persisted queries, Apollo's protocol: a client may send only the SHA-256 of a
document it sent before (`extensions.persistedQuery.sha256Hash`), and resends the whole
document when the server answers PERSISTED_QUERY_NOT_FOUND. Each process remembers a
bounded number of documents; a forgotten one costs the client one round trip."""

import collections
import hashlib
from typing import Any

from cross_web import HTTPException

__all__ = ["PersistedQueries", "PersistedQueryNotFound"]

_REMEMBERED = 1024


class PersistedQueryNotFound:
    """The hash names no document this process remembers: the client resends it."""


class PersistedQueries:
    def __init__(self, size: int = _REMEMBERED) -> None:
        self._documents: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._size = size

    def resolve(self, body: dict[str, Any]) -> str | PersistedQueryNotFound | None:
        """The document a request body asks to run: its `query`, or the one its persisted
        query hash names. Refuses (HTTPException 400) a hash that does not match the
        query sent with it."""
        query = body.get("query")
        extensions = body.get("extensions")
        persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
        digest = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
        if not isinstance(digest, str):
            return query if isinstance(query, str) else None
        if isinstance(query, str):
            if hashlib.sha256(query.encode()).hexdigest() != digest:
                raise HTTPException(400, "provided sha256Hash does not match the query")
            self._documents[digest] = query
            self._documents.move_to_end(digest)
            if len(self._documents) > self._size:
                self._documents.popitem(last=False)
            return query
        remembered = self._documents.get(digest)
        if remembered is None:
            return PersistedQueryNotFound()
        self._documents.move_to_end(digest)
        return remembered
