"""Why a token was refused, in the words of the person holding it: "this token expired at
...", "this token is for healthai, not travelai", rather than PyJWT's own messages. Only
wording lives here; the checks are PyJWT's, made in `auth.py`."""

import time
from datetime import UTC, datetime
from typing import Any

import jwt

__all__ = ["NOT_A_JWT", "refusal", "shown"]

NOT_A_JWT = "this token is not a JWT (three base64url parts separated by dots)"


def refusal(
    error: jwt.PyJWTError, token: str, audience: str, issuer: str | None, key: tuple[str, str]
) -> str:
    """The refusal of `token`, which PyJWT rejected with `error` when checking it for
    `audience` and `issuer` against `key`: what it is in the user's terms, and its
    algorithm."""
    described, algorithm = key
    claims = _unverified_claims(token)
    if isinstance(error, jwt.ExpiredSignatureError):
        return f"this token expired at {_instant(claims.get('exp'))}"
    if isinstance(error, jwt.ImmatureSignatureError):
        if _number(claims.get("nbf")) > time.time():
            return f"this token is not valid before {_instant(claims.get('nbf'))}"
        return f"this token was issued in the future, at {_instant(claims.get('iat'))}"
    if isinstance(error, jwt.MissingRequiredClaimError):
        return _missing(error.claim, audience, issuer)
    if isinstance(error, jwt.InvalidAudienceError):
        return _wrong_audience(claims.get("aud"), audience)
    if isinstance(error, jwt.InvalidIssuerError):
        given = claims.get("iss")
        if not isinstance(given, str):
            return "this token's iss claim is not a string"
        return f"this token was issued by {shown(given)}, not {issuer}"
    if isinstance(error, jwt.InvalidAlgorithmError):
        return (
            f"this token is signed with {shown(_algorithm(token))}, and {described} "
            f"verifies {algorithm} tokens only"
        )
    if isinstance(error, jwt.InvalidSignatureError):
        return f"this token's signature does not verify with {described}"
    if isinstance(error, jwt.DecodeError):
        return NOT_A_JWT
    return f"this token is not valid: {error}"


def shown(value: str) -> str:
    """A value from a token, shown in a refusal: short and printable (refusals are logged)."""
    if len(value) <= 80 and value.isprintable():
        return value
    return repr(value[:80]) + "..."


def _missing(claim: str, audience: str, issuer: str | None) -> str:
    if claim == "aud":
        return f"this token has no aud claim; this app's tokens carry aud {audience}"
    if claim == "iss":
        return f"this token has no iss claim; tokens must be issued by {issuer}"
    if claim == "exp":
        return "this token has no exp claim; every token must expire"
    return f"this token has no {claim} claim"


def _wrong_audience(given: object, audience: str) -> str:
    if isinstance(given, str):
        return f"this token is for {shown(given)}, not {audience}"
    if isinstance(given, list) and all(isinstance(a, str) for a in given):
        named = ", ".join(shown(a) for a in given[:5])
        if audience in given:  # refused only where one audience is required
            return (
                f"this token is for several audiences ({named}); a token signed with the "
                f"ledger's secret must be for {audience} alone"
            )
        return f"this token is for {named}, not {audience}"
    return "this token's aud claim is neither a string nor a list of strings"


def _unverified_claims(token: str) -> dict[str, Any]:
    """The claims of a token PyJWT refused, to say why; never trusted for anything else."""
    try:
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return claims


def _algorithm(token: str) -> str:
    try:
        return str(jwt.get_unverified_header(token).get("alg"))
    except jwt.PyJWTError:
        return "an unknown algorithm"


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _instant(value: object) -> str:
    """A NumericDate claim as UTC, `2026-05-01T10:00:00Z`."""
    try:
        return datetime.fromtimestamp(_number(value), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return str(value)
