"""Who is calling and may they: the bearer token (401), the role (403), and for privileged actions a TOTP
code not used before (401). The ports reach handlers through ``request.app.state.ports``."""

# No `from __future__ import annotations`: FastAPI reads the dependency annotations of the closures below at runtime.
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from fedstream.api.auth import Principal, User, token_hash, totp_step
from fedstream.api.ports import EventPublisher, ReadStore, UserDirectory
from schemas.access import ApiRole


@dataclass
class ApiPorts:
    users: UserDirectory
    store: ReadStore
    publisher: EventPublisher
    clock: Callable[[], float] = field(default=time.time)


def ports(request: Request) -> ApiPorts:
    return request.app.state.ports


bearer = HTTPBearer(auto_error=False, description="a token from `fedstream api user add`")


def unauthorised(detail: str, scheme: str = "Bearer") -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": scheme})


async def authenticated(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    p: Annotated[ApiPorts, Depends(ports)],
) -> Principal:
    if credentials is None:
        raise unauthorised("a bearer token is required")
    user = await p.users.by_token_hash(token_hash(credentials.credentials))
    if user is None or user.disabled:
        raise unauthorised("unknown or disabled token")
    request.state.user = user
    return Principal(user.user_id, user.role, user.tenant)


def allow(*roles: ApiRole) -> Callable:
    async def role_check(who: Annotated[Principal, Depends(authenticated)]) -> Principal:
        if who.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {who.role.value} may not do this")
        return who

    return role_check


def privileged(*roles: ApiRole) -> Callable:
    """A role check, then a TOTP code (header X-TOTP) that has not been used before."""

    async def second_factor(
        request: Request,
        who: Annotated[Principal, Depends(allow(*roles))],
        p: Annotated[ApiPorts, Depends(ports)],
        x_totp: Annotated[str | None, Header(description="current TOTP code (RFC 6238, 6 digits)")] = None,
    ) -> Principal:
        user: User = request.state.user
        if x_totp is None:
            raise unauthorised("this action needs a TOTP code in X-TOTP", scheme="TOTP")
        step = totp_step(user.totp_secret, x_totp, p.clock())
        if step is None or not await p.users.spend_totp_step(user.user_id, step):
            raise unauthorised("wrong, expired or already used TOTP code", scheme="TOTP")
        return who

    return second_factor
