"""Signed access tokens: ``base64url(json payload) "." base64url(HMAC-SHA256(secret, payload part))``.

Stateless on purpose: any replica that knows the secret can check a token, and there is nothing to store.
The one place tokens are issued, found in a request (``token_from``) and checked (``verify``, ``claims``,
``allows``); REST, the subscriber sockets and the ingest sockets all use these.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, cast

from service.core.settings import Settings

Role = Literal["agent", "supervisor", "ingest"]
ROLES: tuple[Role, ...] = ("agent", "supervisor", "ingest")

log = logging.getLogger("callwatch.auth")


class AuthError(Exception):
    """The request carries no usable credential; the message is safe to show the client."""


@dataclass(frozen=True, slots=True)
class Claims:
    role: Role
    agent_id: str | None
    exp: int
    teams: tuple[str, ...] | None = None
    """A supervisor scoped to these teams sees only their agents (None: every agent)."""


_B64URL = re.compile(r"[A-Za-z0-9_-]+")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: str, body: str) -> str:
    return _b64(hmac.new(secret.encode(), body.encode("ascii"), hashlib.sha256).digest())


def issue(secret: str, role: Role, agent_id: str | None = None, ttl_s: int = 12 * 3600,
          now: float | None = None, teams: tuple[str, ...] | None = None) -> str:
    if not secret:
        raise ValueError("cannot sign a token without a secret")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if role == "agent" and not agent_id:
        raise ValueError("an agent token needs an agent id")
    exp = int((time.time() if now is None else now) + ttl_s)
    payload: dict[str, object] = {"role": role, "exp": exp}
    if agent_id:
        payload["agent_id"] = agent_id
    if teams is not None:
        payload["teams"] = list(teams)
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_sign(secret, body)}"


def verify(secret: str, token: str, now: float | None = None) -> Claims:
    body, dot, sig = token.strip().partition(".")
    # Anything outside base64url is forged or mangled; it must not reach .encode("ascii") as a 500.
    if not dot or not body or not sig or not _B64URL.fullmatch(body) or not _B64URL.fullmatch(sig):
        raise AuthError("malformed token")
    # compare_digest on the encoded forms: the time taken does not depend on where they differ.
    if not hmac.compare_digest(_sign(secret, body).encode(), sig.encode("ascii", "replace")):
        raise AuthError("bad token signature")
    try:
        payload = json.loads(_unb64(body))
    except (ValueError, binascii.Error, RecursionError):
        raise AuthError("malformed token") from None
    if not isinstance(payload, dict):
        raise AuthError("malformed token")
    role, exp, agent_id = payload.get("role"), payload.get("exp"), payload.get("agent_id")
    if (role not in ROLES or not isinstance(exp, int) or isinstance(exp, bool)
            or not (agent_id is None or isinstance(agent_id, str))):
        raise AuthError("malformed token")
    if exp < (time.time() if now is None else now):
        raise AuthError("token expired")
    if role == "agent" and not agent_id:
        raise AuthError("agent token without agent id")
    teams = payload.get("teams")
    if teams is not None and not (isinstance(teams, list) and all(isinstance(t, str) for t in teams)):
        raise AuthError("malformed token")
    return Claims(role=cast(Role, role), agent_id=agent_id, exp=exp,
                  teams=None if teams is None else tuple(teams))


MISSING = "missing token: send Authorization: Bearer <token>"


def token_from(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """``Authorization: Bearer`` first; ``?token=`` for browsers, whose websockets cannot set headers.
    ``headers`` are looked up by lower-case name (Starlette's headers, or a dict with lower-case keys)."""
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return query.get("token") or None


def claims(secret: str, headers: Mapping[str, str], query: Mapping[str, str]) -> Claims:
    """The verified claims of a request's token; AuthError (``MISSING``, or why the token is refused) if none."""
    token = token_from(headers, query)
    if not token:
        raise AuthError(MISSING)
    return verify(secret, token)


def allows(secret: str, token: str | None, role: Role) -> bool:
    """Whether ``token`` is a valid token of ``role``."""
    if not token:
        return False
    try:
        return verify(secret, token).role == role
    except AuthError:
        return False


def ensure_secret(settings: Settings) -> Settings:
    """Use the configured secret, else one persisted in the data dir, else create and persist one."""
    if settings.secret:
        return settings
    path = settings.data_dir / "secret"
    if path.exists():
        secret = path.read_text().strip()
        log.info("using the token secret from %s (set CALLWATCH_SECRET to override)", path)
    else:
        secret = secrets.token_urlsafe(32)
        _write_private(path, secret)
        log.warning("CALLWATCH_SECRET is not set: generated a token secret and saved it to %s", path)
    return replace(settings, secret=secret)


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.write_text(text + "\n")
