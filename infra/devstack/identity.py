"""The local stack's identity provider and API Gateway's JWT authorizer.

`LocalIssuer` makes an RSA key at start-up, publishes it as a JWKS and mints tokens with it, so
that `python -m infra.devstack token --sub consumer-1` prints a token the running stack accepts.
`JwtAuthorizer` checks a request's token the way an HTTP API's JWT authorizer does: RS256 only,
signed by the JWKS key its `kid` names, `iss` equal to the issuer, `aud` (or `client_id` when
there is no `aud`) one of the audiences, `exp` after now, `nbf` and `iat` not after now, and at
least one of the route's scopes when the route names any (and only then `scopes` in the context;
it is null elsewhere). A refusal is API Gateway's: `401` (or
`403` for a missing scope) with `{"message": ...}` and a `www-authenticate` header, before any
function runs."""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# The scope that lets a token act for any consumer and change consumers and restaurants. The
# functions check the same name (shared::platform::identity::OPERATOR_SCOPE); the template's Cognito
# resource server defines it.
OPERATOR_SCOPE = "orders/operator"
DEFAULT_AUDIENCE = "orders-api"
TOKEN_SECONDS = 12 * 3600


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _uint(number: int) -> str:
    return b64url(number.to_bytes((number.bit_length() + 7) // 8, "big"))


def _from_uint(text: str) -> int:
    return int.from_bytes(b64url_decode(text), "big")


def encode(header: dict[str, Any], claims: dict[str, Any], sign) -> str:
    """A compact JWS; `sign` turns the signing input into the signature bytes."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64url(sign(signing_input.encode()))}"


class LocalIssuer:
    """An issuer whose private key lives in a file of the stack's state folder (mode 0600)."""

    def __init__(self, url: str, key: rsa.RSAPrivateKey, kid: str):
        self.url = url
        self.key = key
        self.kid = kid

    @classmethod
    def create(cls, url: str) -> LocalIssuer:
        return cls(url, rsa.generate_private_key(public_exponent=65537, key_size=2048),
                   uuid.uuid4().hex[:16])

    def save(self, path: Path) -> None:
        pem = self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as f:
            json.dump({"issuer": self.url, "kid": self.kid, "key": pem.decode()}, f)

    @classmethod
    def load(cls, path: Path) -> LocalIssuer:
        saved = json.loads(path.read_text())
        key = serialization.load_pem_private_key(saved["key"].encode(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return cls(saved["issuer"], key, saved["kid"])

    def jwks(self) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()
        return {"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
                          "n": _uint(numbers.n), "e": _uint(numbers.e)}]}

    def discovery(self) -> dict[str, Any]:
        return {"issuer": self.url, "jwks_uri": f"{self.url}/.well-known/jwks.json",
                "id_token_signing_alg_values_supported": ["RS256"]}

    def claims(self, subject: str, audience: str, scopes: list[str],
               seconds: int = TOKEN_SECONDS) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {"iss": self.url, "sub": subject, "aud": audience, "iat": now,
                                  "nbf": now, "exp": now + seconds, "jti": str(uuid.uuid4())}
        if scopes:
            claims["scope"] = " ".join(scopes)
        return claims

    def sign(self, claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
        header = header or {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        return encode(header, claims,
                      lambda data: self.key.sign(data, padding.PKCS1v15(), hashes.SHA256()))

    def token(self, subject: str, audience: str, scopes: Sequence[str] = (),
              seconds: int = TOKEN_SECONDS) -> str:
        return self.sign(self.claims(subject, audience, list(scopes), seconds))


class Refused(Exception):
    """API Gateway's answer to a request its authorizer refused."""

    def __init__(self, status: int, description: str):
        super().__init__(description)
        self.status = status
        self.description = description

    def headers(self) -> dict[str, str]:
        error = "insufficient_scope" if self.status == 403 else "invalid_token"
        return {"www-authenticate":
                f'Bearer scope="" error="{error}" error_description="{self.description}"'}

    def body(self) -> dict[str, str]:
        return {"message": "Forbidden" if self.status == 403 else "Unauthorized"}


@dataclass
class JwtAuthorizer:
    issuer: str
    audiences: list[str]
    jwks: dict[str, Any]
    identity_source: str = "$request.header.Authorization"

    def __post_init__(self) -> None:
        # The key set's public keys, built once rather than for every request.
        self.keys = {key["kid"]: rsa.RSAPublicNumbers(_from_uint(key["e"]), _from_uint(key["n"])).public_key()
                     for key in self.jwks["keys"] if key.get("kty") == "RSA" and "kid" in key}
        prefix = "$request.header."
        if not self.identity_source.startswith(prefix):
            raise ValueError(f"identity source {self.identity_source}: only a header is emulated")
        self.header = self.identity_source[len(prefix):].lower()

    def authorize(self, headers: dict[str, str], route_scopes: list[str]) -> dict[str, Any]:
        """The `authorizer` of the request context (`{"jwt": {"claims", "scopes"}}`), or raises
        `Refused`."""
        token = headers.get(self.header, "").strip()
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        if not token:
            raise Refused(401, "no token in the identity source")
        claims = self._verified_claims(token)
        scopes = _scopes(claims)
        if route_scopes and not set(route_scopes) & set(scopes):
            raise Refused(403, "the token has none of the route's scopes")
        # `scopes` is filled only on a route that declares AuthorizationScopes; elsewhere it is
        # null and the scopes are only in the `scope` claim (docs/conformance.md, "JWT authorizer").
        return {"jwt": {"claims": {name: _claim_text(value) for name, value in claims.items()
                                   if value is not None},
                        "scopes": scopes if route_scopes else None}}

    def _verified_claims(self, token: str) -> dict[str, Any]:
        try:
            header_part, claims_part, signature_part = token.split(".")
            header = json.loads(b64url_decode(header_part))
            claims = json.loads(b64url_decode(claims_part))
            signature = b64url_decode(signature_part)
        except ValueError:
            raise Refused(401, "the token is not a well-formed JWT") from None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise Refused(401, "the token is not a well-formed JWT")
        if header.get("alg") != "RS256":
            raise Refused(401, f"signing algorithm {header.get('alg')!r} is not supported")
        public = self.keys.get(header.get("kid"))
        if public is None:
            raise Refused(401, "the token's kid names no key of the issuer")
        try:
            public.verify(signature, f"{header_part}.{claims_part}".encode(), padding.PKCS1v15(),
                          hashes.SHA256())
        except InvalidSignature:
            raise Refused(401, "the token's signature does not verify") from None
        if claims.get("iss") != self.issuer:
            raise Refused(401, "the token does not have a valid issuer")
        audience = claims["aud"] if "aud" in claims else claims.get("client_id")
        audiences = audience if isinstance(audience, list) else [audience]
        if not set(self.audiences) & {a for a in audiences if isinstance(a, str)}:
            raise Refused(401, "the token does not have a valid audience")
        now = time.time()
        if not _number(claims.get("exp")) or claims["exp"] <= now:
            raise Refused(401, "the token has expired")
        for name in ("nbf", "iat"):
            if name in claims and (not _number(claims[name]) or claims[name] > now):
                raise Refused(401, f"the token is not valid yet ({name})")
        return claims


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _scopes(claims: dict[str, Any]) -> list[str]:
    value = claims.get("scope", claims.get("scp", ""))
    if isinstance(value, list):
        return [s for s in value if isinstance(s, str)]
    return str(value).split()


def _claim_text(value: Any) -> str:
    """Claims reach the function as strings, as API Gateway passes them: lists as `[a b]`,
    objects as compact JSON, null claims left out (docs/conformance.md, "JWT authorizer")."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + " ".join(_claim_text(v) for v in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    return json.dumps(value, separators=(",", ":")) if isinstance(value, dict) else str(value)


def token_for(state: dict[str, Any], subject: str | None = None, operator: bool = False,
              seconds: int = TOKEN_SECONDS) -> str:
    """A token for the stack whose state file holds `state`: `subject`'s, or an operator's."""
    identity = state["identity"]
    issuer = LocalIssuer.load(Path(identity["keyFile"]))
    if operator:
        return issuer.token(subject or "operator", identity["audience"],
                            [identity["operatorScope"]], seconds)
    if not subject:
        raise ValueError("a consumer's token needs its subject (the consumerId)")
    return issuer.token(subject, identity["audience"], [], seconds)
