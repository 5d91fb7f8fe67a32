"""The identity provider's signing keys (LEDGER_JWKS_URL), fetched with PyJWT's JWKS client
in a thread, off the event loop, and kept by `kid`. Verifying a token with them is
`auth.py`'s business; this module only decides when the set is fetched again."""

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import jwt

__all__ = ["ProviderKeys"]

logger = logging.getLogger(__name__)

# A fetch that takes longer is abandoned: no request waits longer than this for keys.
FETCH_TIMEOUT = 5.0
# Refreshes for a token of an unknown `kid` are at most this often, whatever the TTL: a
# client sending made-up key ids must not turn the ledger into a load on the provider.
UNKNOWN_KID_INTERVAL = 10.0
# The background refresh runs this early in the TTL, so requests never wait for it.
_EARLY = 0.9


class ProviderKeys:
    """The keys of one JSON Web Key Set, refreshed every `ttl` seconds and, at most every
    10 s, when a token names a key the set does not hold.

    Requests read the keys without waiting (`key()`); a refresh runs in a thread, and
    every caller that needs one while it runs shares it. `generation` changes whenever a
    refresh removes or changes a key, so tokens remembered as verified can be forgotten.
    A failed fetch keeps the keys already held: the provider being unreachable does not
    stop tokens it signed before from working.
    """

    def __init__(
        self,
        url: str,
        ttl: float,
        clock: Callable[[], float],
        *,
        fetch_timeout: float = FETCH_TIMEOUT,
    ) -> None:
        self.url = url
        self._ttl = ttl
        self._clock = clock
        self._client = jwt.PyJWKClient(url, cache_jwk_set=False, timeout=fetch_timeout)
        self._keys: dict[str, jwt.PyJWK] = {}
        self._documents: dict[str, str] = {}
        self.generation = 0
        self._checked_at = clock()
        self._unknown_kid_at: float | None = None
        self._inflight: asyncio.Task[None] | None = None
        self._background: asyncio.Task[None] | None = None

    @property
    def empty(self) -> bool:
        return not self._keys

    def key(self, kid: str) -> jwt.PyJWK | None:
        return self._keys.get(kid)

    def due(self) -> bool:
        """Whether the set is older than its TTL: refreshed before it is used again."""
        return self._clock() - self._checked_at >= self._ttl

    async def start(self) -> None:
        """Fetches the set once, then refreshes it in the background until `stop()`."""
        await self.refresh()
        if self.empty:
            logger.error(
                "no signing key could be fetched from %s: requests get 503 until it answers",
                self.url,
            )
        self._background = asyncio.create_task(self._refresh_periodically())

    async def stop(self) -> None:
        """Ends the background refresh and abandons a fetch in flight (its thread ends
        within the fetch timeout, its answer unused)."""
        for task in (self._background, self._inflight):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._background = None

    async def refresh(self) -> None:
        """Fetches the set, or waits for the fetch already running."""
        if self._inflight is None:
            self._inflight = asyncio.create_task(self._fetch())
        # Shielded: a request that goes away must not cancel the fetch others wait for.
        await asyncio.shield(self._inflight)

    async def refresh_for_unknown(self) -> None:
        """A refresh for a token whose `kid` the set lacks, unless one ran in the last 10 s
        (counted apart from the TTL's refreshes)."""
        if self._inflight is None:
            now = self._clock()
            last = self._unknown_kid_at
            if last is not None and now - last < UNKNOWN_KID_INTERVAL:
                return
            self._unknown_kid_at = now
        await self.refresh()

    async def _refresh_periodically(self) -> None:
        while True:
            wait = self._checked_at + self._ttl * _EARLY - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
            else:
                await self.refresh()  # a failed one counts too: retried a TTL later

    async def _fetch(self) -> None:
        try:
            document = await asyncio.to_thread(self._client.fetch_data)
            self._replace(_usable_keys(document))
        except Exception as error:  # any failure keeps the keys held
            logger.warning(
                "the signing keys at %s could not be fetched (%s): %d cached keys stay in use",
                self.url,
                _reason(error),
                len(self._keys),
            )
        finally:
            self._checked_at = self._clock()
            self._inflight = None

    def _replace(self, keys: dict[str, tuple[jwt.PyJWK, str]]) -> None:
        documents = {kid: document for kid, (_, document) in keys.items()}
        if any(documents.get(kid) != document for kid, document in self._documents.items()):
            self.generation += 1  # a key was removed or changed
        added = documents.keys() - self._documents.keys()
        removed = self._documents.keys() - documents.keys()
        if added or removed:
            logger.info(
                "signing keys from %s: %d (added %s; removed %s)",
                self.url,
                len(documents),
                ", ".join(sorted(added)) or "none",
                ", ".join(sorted(removed)) or "none",
            )
        self._keys = {kid: key for kid, (key, _) in keys.items()}
        self._documents = documents


def _usable_keys(document: Any) -> dict[str, tuple[jwt.PyJWK, str]]:
    """The signing keys of a JWKS document by `kid`, each with its canonical JSON (which
    tells a changed key from the same one). Keys for encryption, without a `kid`, or of a
    type PyJWT cannot use are left out, as PyJWT's own PyJWKSet leaves them."""
    members = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(members, list):
        raise ValueError("the document is not a JSON Web Key Set (no keys list)")
    keys: dict[str, tuple[jwt.PyJWK, str]] = {}
    for member in members:
        if not isinstance(member, dict) or member.get("use", "sig") != "sig":
            continue
        kid = member.get("kid")
        if not isinstance(kid, str) or not kid:
            continue
        try:
            keys[kid] = (jwt.PyJWK(member), json.dumps(member, sort_keys=True))
        except jwt.PyJWTError:
            continue
    if not keys:
        raise ValueError("the key set holds no signing key with a kid")
    return keys


def _reason(error: Exception) -> str:
    if isinstance(error, jwt.PyJWKClientConnectionError):
        return f"unreachable: {error.__cause__ or error}"
    return str(error)
