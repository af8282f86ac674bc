"""A small OpenID Connect provider for the login tests, run in a thread on a free port.

It implements what Ortspuls uses of a real provider: the discovery document, the authorization
endpoint (it approves at once as the user the test chose, like a provider with a live session),
the token endpoint (client_secret_basic, authorization code with PKCE S256) and the key set.
ID tokens are RS256-signed JWTs (joserfc). Switches let tests send a wrong nonce, a token signed
by a key that is not published, or a token for another audience.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import uvicorn
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route


@dataclass
class Provider:
    port: int
    client_id: str = "ortspuls-test"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    # The user the authorization endpoint approves: the ID token's claims (sub, email, …).
    user: dict[str, Any] = field(default_factory=dict)
    wrong_nonce: bool = False
    foreign_key: bool = False
    wrong_audience: bool = False
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(
        2048, parameters={"kid": "test-1", "use": "sig", "alg": "RS256"}, private=True))
    other_key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(
        2048, parameters={"kid": "test-1", "use": "sig", "alg": "RS256"}, private=True))
    token_requests: int = 0
    server: uvicorn.Server | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self, **user: Any) -> None:
        self.user = user
        self.wrong_nonce = self.foreign_key = self.wrong_audience = False

    # -- endpoints ------------------------------------------------------------------------------

    async def discovery(self, request: Request) -> Response:
        return JSONResponse({
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        })

    async def jwks(self, request: Request) -> Response:
        return JSONResponse({"keys": [self.key.as_dict(private=False)]})

    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        if q.get("client_id") != self.client_id or q.get("response_type") != "code":
            return JSONResponse({"error": "unauthorized_client"}, status_code=400)
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return JSONResponse({"error": "invalid_request", "error_description": "PKCE"},
                                status_code=400)
        if "openid" not in (q.get("scope") or "").split():
            return JSONResponse({"error": "invalid_scope"}, status_code=400)
        code = secrets.token_urlsafe(24)
        self.codes[code] = {"redirect_uri": q["redirect_uri"], "nonce": q.get("nonce"),
                            "challenge": q["code_challenge"], "user": dict(self.user)}
        target = q["redirect_uri"] + "?" + urlencode({"code": code, "state": q.get("state")})
        return RedirectResponse(target, status_code=302)

    async def token(self, request: Request) -> Response:
        self.token_requests += 1
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Basic "):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        if client_id != self.client_id or secret != self.client_secret:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        form = dict(parse_qsl((await request.body()).decode()))
        grant = self.codes.pop(form.get("code", ""), None)
        if form.get("grant_type") != "authorization_code" or grant is None \
                or form.get("redirect_uri") != grant["redirect_uri"]:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(
            hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        if challenge != grant["challenge"]:
            return JSONResponse({"error": "invalid_grant", "error_description": "PKCE"},
                                status_code=400)
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": "someone-else" if self.wrong_audience
                  else self.client_id, "iat": now, "exp": now + 300,
                  "nonce": "not-the-nonce" if self.wrong_nonce else grant["nonce"],
                  **grant["user"]}
        key = self.other_key if self.foreign_key else self.key
        id_token = jwt.encode({"alg": "RS256", "kid": "test-1"}, claims, key)
        return JSONResponse({"access_token": secrets.token_urlsafe(16), "token_type": "Bearer",
                             "expires_in": 300, "id_token": id_token})

    # -- running --------------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/.well-known/openid-configuration", self.discovery),
            Route("/jwks", self.jwks),
            Route("/authorize", self.authorize),
            Route("/token", self.token, methods=["POST"]),
        ])

    def start(self) -> None:
        config = uvicorn.Config(self.app(), host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="off")
        self.server = uvicorn.Server(config)
        thread = threading.Thread(target=self.server.run, daemon=True, name="oidc-provider")
        thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the test OpenID provider did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
