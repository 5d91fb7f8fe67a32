"""The per-request cost of the token check, alone: a remembered token (the hot path), and the
first verification of a token with each kind of key (HS256, an RS256 or ES256 PEM, the
identity provider's JWKS served from 127.0.0.1). No database, no HTTP request to the app.

    python -m bench.auth [--tokens N] [--hits N] [--repeats N]

It runs any checkout of graphql_ledger (`PYTHONPATH=<checkout> python -m bench.auth`),
whether its `authenticate` is a plain or an async method, so a change can be compared
with the code before it; scenarios an older checkout lacks are skipped.
"""

import argparse
import asyncio
import inspect
import json
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from graphql_ledger.auth import authenticator_for
from graphql_ledger.config import Settings

__all__ = ["main"]

SECRET = "a-benchmark-secret-of-more-than-32-bytes"
APP = "healthai"


def claims() -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "alice", "aud": APP, "exp": now + 3600, "jti": uuid.uuid4().hex}


@contextmanager
def jwks_server(document: bytes) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(document)))
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    finally:
        server.shutdown()
        server.server_close()


async def per_call(authenticator: Any, headers: list[str]) -> float:
    """Microseconds per authenticate() over `headers`, called in order."""
    check = authenticator.authenticate
    if inspect.iscoroutinefunction(check):
        started = time.perf_counter()
        for header in headers:
            await check(header)
    else:
        started = time.perf_counter()
        for header in headers:
            check(header)
    return (time.perf_counter() - started) / len(headers) * 1e6


def pem_file(directory: Path, key: Any) -> Path:
    path = directory / f"{uuid.uuid4().hex}.pem"
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


async def measure(tokens: int, hits: int, repeats: int) -> list[tuple[str, float]]:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    directory = Path(tempfile.mkdtemp(prefix="bench-auth-"))
    setups: list[tuple[str, Settings, Callable[[dict[str, Any]], str]]] = [
        ("HS256 secret", Settings(jwt_secret=SECRET), lambda c: jwt.encode(c, SECRET)),
        (
            "RS256 PEM",
            Settings(jwt_public_key=pem_file(directory, rsa_key)),
            lambda c: jwt.encode(c, rsa_key, algorithm="RS256"),
        ),
        (
            "ES256 PEM",
            Settings(jwt_public_key=pem_file(directory, ec_key)),
            lambda c: jwt.encode(c, ec_key, algorithm="ES256"),
        ),
    ]
    keys = [
        RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True) | {"kid": "r", "alg": "RS256"},
        ECAlgorithm.to_jwk(ec_key.public_key(), as_dict=True) | {"kid": "e"},
    ]
    results: list[tuple[str, float]] = []
    with jwks_server(json.dumps({"keys": keys}).encode()) as url:
        if "jwks_url" in Settings.__dataclass_fields__:
            setups += [
                (
                    "JWKS RS256",
                    Settings(jwks_url=url),
                    lambda c: jwt.encode(c, rsa_key, algorithm="RS256", headers={"kid": "r"}),
                ),
                (
                    "JWKS ES256",
                    Settings(jwks_url=url),
                    lambda c: jwt.encode(c, ec_key, algorithm="ES256", headers={"kid": "e"}),
                ),
            ]
        for name, settings, sign in setups:
            authenticator: Any = authenticator_for(settings, APP)
            if hasattr(authenticator, "start"):
                await authenticator.start()
            # The best of several rounds: the machine's other work only ever adds time.
            first, remembered = [], []
            for _ in range(repeats):
                fresh = [f"Bearer {sign(claims())}" for _ in range(tokens)]
                first.append(await per_call(authenticator, fresh))
                remembered.append(await per_call(authenticator, [fresh[0]] * hits))
            results.append((f"{name}: first verification", min(first)))
            results.append((f"{name}: remembered token", min(remembered)))
            if hasattr(authenticator, "stop"):
                await authenticator.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=1000, help="distinct tokens per round")
    parser.add_argument("--hits", type=int, default=200_000, help="checks of one token")
    parser.add_argument("--repeats", type=int, default=5, help="rounds; the best is shown")
    args = parser.parse_args()
    results = asyncio.run(measure(args.tokens, args.hits, args.repeats))
    print("| check | µs per request |")
    print("|---|---|")
    for name, micros in results:
        print(f"| {name} | {micros:.2f} |")


if __name__ == "__main__":
    main()
