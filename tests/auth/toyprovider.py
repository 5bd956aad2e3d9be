"""A toy identity provider: what adding a provider takes, and nothing else.

This module is the "one new module"; ``tests/auth/test_provider_seam.py`` adds the registry line
(``provider.register("toy", "tests.auth.toyprovider:PROVIDER")``) and the config section
(:class:`ToyConfig` under ``auth.toy``, as a real provider declares it in the schema).

It mints unsigned JWT-shaped tokens itself and remembers every call, so a test can see which of
the product's steps went through it.  Annotations are not postponed: the config loader reads the
section's annotations as types.
"""
# ruff: noqa: I002, FA100, UP006, UP035  -- as ood_k8s/config: a section's annotations must be types

import base64
import json
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Set

from ood_k8s.auth.provider import Claims, Issuer
from ood_k8s.auth.tokencache import Tokens
from ood_k8s.config import section, setting
from ood_k8s.core.errors import CredentialError

if TYPE_CHECKING:
    from ood_k8s.config import Config
    from ood_k8s.core.identity import Identity
    from ood_k8s.doctor.report import Check, Context

LIFETIME = 600  # seconds an ID token of the toy lasts


@section
class ToyConfig:
    realm: str = setting("toys", "Realm of the toy provider: the last part of its issuer URL.")
    client_id: str = setting("toy-portal", "The audience of its ID tokens.")
    refresh_token_days: int = setting(7, "How long its refresh tokens last.")


def _jwt(claims: Dict[str, Any]) -> str:
    def part(data: Dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part(claims)}.toy"


class ToyProvider:
    mode = "toy"
    title = "Toy"
    manages_users = True

    def __init__(self) -> None:
        self.calls: List[str] = []
        self.users: Set[str] = set()

    def issuer(self, cfg: "Config") -> Issuer:
        return Issuer(f"https://toy.example/{cfg.auth.toy.realm}", cfg.auth.toy.client_id, None)

    def claims(self, cfg: "Config") -> Claims:
        return Claims("toy:user", "toy:teams")

    def fingerprint(self, cfg: "Config") -> Any:
        return [self.mode, cfg.auth.toy.realm]

    def config_problems(self, cfg: "Config") -> List[str]:
        return [] if cfg.auth.toy.realm else ["auth.toy.realm: missing, expected a value when auth.mode is toy"]

    def hook_exports(self, cfg: "Config") -> List[str]:
        return []

    def portal_tokens(self, cfg: "Config", env: Mapping[str, str], *, clock: Callable[[], float]) -> Optional[Tokens]:
        return None

    def mint(self, cfg: "Config", username: str, *, clock: Callable[[], float],
             sleep: Callable[[float], None]) -> Tokens:
        self.calls.append(f"mint {username}")
        now = clock()
        issuer = self.issuer(cfg)
        token = _jwt({"iss": issuer.url, "aud": issuer.client_id, "exp": now + LIFETIME, "toy:user": username})
        return Tokens(token, now + LIFETIME, f"refresh-{username}", now + cfg.auth.toy.refresh_token_days * 86400,
                      self.mode, issuer.url, issuer.client_id, "", cfg.auth.id_token_margin, now)

    def refresh(self, tokens: Tokens, *, clock: Callable[[], float], sleep: Callable[[float], None]) -> Tokens:
        self.calls.append(f"refresh {tokens.refresh_token}")
        if tokens.refresh_token.startswith("revoked"):
            raise CredentialError("the toy revoked it")
        now = clock()
        token = _jwt({"iss": tokens.issuer, "aud": tokens.client_id, "exp": now + LIFETIME, "refreshed": now})
        return tokens.replace(id_token=token, id_expires_at=now + LIFETIME, updated_at=now)

    def ensure_user(self, cfg: "Config", ident: "Identity", *, dry_run: bool = False) -> List[str]:
        self.calls.append(f"ensure_user {ident.username} dry_run={dry_run}")
        if ident.username in self.users:
            return []
        if not dry_run:
            self.users.add(ident.username)
        return [f"created toy user {ident.username}"]

    def user_state(self, cfg: "Config", username: str) -> str:
        return "PLAYING" if username in self.users else "missing"

    def delete_user(self, cfg: "Config", username: str) -> bool:
        self.calls.append(f"delete_user {username}")
        found = username in self.users
        self.users.discard(username)
        return found

    def doctor_checks(self, ctx: "Context") -> "List[Check]":
        from ood_k8s.doctor.report import Check

        self.calls.append("doctor_checks")
        return [Check("Toy realm", True, ctx.cfg.auth.toy.realm)]


PROVIDER = ToyProvider()
