"""User operations (/user/*, `python -m proxy users ...`), in LiteLLM's shapes.

A user groups keys: its budget and limits apply to all of them together, and its `models`
bound theirs. /user/new also creates a key for the user unless `auto_create_key` is false, as
LiteLLM does; deleting a user deletes its keys and team memberships, as LiteLLM does.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from ...errors import BadRequest, PermissionDenied
from ...server.auth import Principal
from ..builders import build_key, create, updated
from ..errors import EntityNotFound
from ..fields import (
    KEY_ACTIVE,
    USER_ACTIVE,
    USER_SPECIAL,
    USER_STORED,
    Field,
    Parsed,
    parse,
    str_map,
    text,
)
from ..records import KEY, MEMBER, TEAM, USER, MemberRecord, Ref, UserRecord
from ..service import AdminService
from ..store.base import AlreadyExists, DuplicateAlias, Missing
from .keys import owners

log = logging.getLogger("proxy.keys")

#: The fields of /user/new that describe the key it creates.
AUTO_KEY = {"key_alias": Field(text), "aliases": Field(str_map, {}), "team_id": Field(text)}


class UserExists(BadRequest):
    status = 409


def parse_user(body: Any, *, update: bool = False) -> Parsed:
    return parse(body, USER_ACTIVE, USER_STORED, USER_SPECIAL, update=update, what="a user")


async def find(service: AdminService, user_id: str) -> UserRecord:
    rec = await service.find(USER, user_id)
    if rec is None:
        raise EntityNotFound(f"User {user_id} not found", param="user_id")
    return rec


async def new(service: AdminService, parsed: Parsed) -> dict[str, Any]:
    special = parsed.special
    now = time.time()
    user = create(UserRecord, parsed, now, user_id=parsed.get("user_id") or str(uuid.uuid4()))
    memberships = await _team_memberships(service, user.user_id, special)
    key_parsed = _key_fields(special)
    key_parsed.fields["user_id"] = user.user_id
    raw, key = build_key(key_parsed, now)
    auto_key = special.get("auto_create_key", True) is not False
    async with service.lock:
        if await service.find(USER, user.user_id) is not None:
            raise UserExists(f"User with id {user.user_id} already exists", param="user_id")
        if key.team_id:
            await owners(service, key, {"team_id"})
        try:
            held = await service.write(inserts=[user, *memberships, *([key] if auto_key else [])])
        except DuplicateAlias:
            raise BadRequest(f"key_alias `{key.key_alias}` is already used by another key.", param="key_alias") from None
        except AlreadyExists:
            raise UserExists(f"User with id {user.user_id} already exists", param="user_id") from None
    log.info("user created: %s", user.user_id)
    user = held[0]
    info = user.info(service.registry.teams_of(user.user_id))
    if not auto_key:
        return {**info, "key": ""}
    key = held[-1]
    return {**key.info(), **info, "key": raw, "token_id": key.key_hash}


def _key_fields(special: dict[str, Any]) -> Parsed:
    fields = {**AUTO_KEY, "duration": KEY_ACTIVE["duration"]}
    body = {k: special[k] for k in fields if special.get(k) is not None}
    return parse(body, fields, what="the key /user/new creates")


async def _team_memberships(service: AdminService, user_id: str, special: dict[str, Any]) -> list[MemberRecord]:
    wanted: list[tuple[str, str, float | None]] = []
    teams = special.get("teams") or []
    if not isinstance(teams, list):
        raise BadRequest("`teams` must be a list of team ids or {team_id, max_budget_in_team, user_role}.", param="teams")
    for item in teams:
        if isinstance(item, str):
            wanted.append((item, "user", None))
        elif isinstance(item, dict) and isinstance(item.get("team_id"), str):
            role = item.get("user_role", "user")
            budget = item.get("max_budget_in_team")
            if role not in ("user", "admin") or (budget is not None and not isinstance(budget, (int, float))):
                raise BadRequest("`teams[].user_role` is user or admin; max_budget_in_team a number.", param="teams")
            wanted.append((item["team_id"], role, None if budget is None else float(budget)))
        else:
            raise BadRequest("`teams` must be a list of team ids or {team_id, max_budget_in_team, user_role}.", param="teams")
    if isinstance(special.get("team_id"), str):
        wanted.append((special["team_id"], "user", None))
    out = []
    now = time.time()
    for team_id, role, budget in dict.fromkeys(wanted):
        if await service.find(TEAM, team_id) is None:
            raise BadRequest(f"Team doesn't exist in db. Team={team_id}. Create team via `/team/new` call.", param="teams")
        out.append(MemberRecord(team_id=team_id, user_id=user_id, role=role, max_budget_in_team=budget, created_at=now))
    return out


async def update(service: AdminService, body: Any) -> UserRecord:
    parsed = parse_user(body, update=True)
    user_id = parsed.fields.pop("user_id", None) or await _by_email(service, body)
    async with service.lock:
        rec = await find(service, user_id)
        try:
            held = (await service.write(updates=[updated(rec, parsed, time.time())]))[0]
        except Missing:
            raise EntityNotFound(f"User {user_id} not found", param="user_id") from None
        if "spend" in parsed.fields:
            await service.set_spend(held, parsed.fields["spend"])
    log.info("user updated: %s: %s", user_id, ", ".join(sorted(parsed.fields)))
    return held


async def _by_email(service: AdminService, body: Any) -> str:
    email = body.get("user_email") if isinstance(body, dict) else None
    match = [u for u in service.registry.users.values() if email and u.user_email == email]
    if not match:
        raise BadRequest("Send the `user_id` (or the `user_email`) of the user to update.", param="user_id")
    return match[0].user_id


async def delete(service: AdminService, user_ids: list[str]) -> list[str]:
    """Delete the users, their keys and their team memberships: all of them, or none."""
    async with service.lock:
        for user_id in user_ids:
            await find(service, user_id)
        registry = service.registry
        refs = [Ref(USER, u) for u in user_ids]
        for user_id in user_ids:
            refs += [Ref(KEY, k.key_hash) for k in registry.keys_of(user_id=user_id)]
            refs += [Ref(MEMBER, m.ident) for m in registry.members.values() if m.user_id == user_id]
        await service.write(deletes=refs)
    log.info("users deleted: %s", ", ".join(user_ids))
    return user_ids


def info(service: AdminService, caller: Principal, user_id: str | None) -> dict[str, Any]:
    """/user/info: the master key reads any user; a key reads its own user."""
    if not caller.is_admin:
        if user_id is not None and user_id != caller.user_id:
            raise PermissionDenied("You may only read your own user's info.", param="user_id")
        user_id = caller.user_id
    if not user_id:
        raise BadRequest("Pass ?user_id=...", param="user_id")
    registry = service.registry
    rec = registry.users.get(user_id)
    if rec is None:
        raise EntityNotFound(f"User {user_id} not found", param="user_id")
    teams = registry.teams_of(user_id)
    return {
        "user_id": user_id,
        "user_info": rec.info(teams),
        "keys": [k.info() for k in sorted(registry.keys_of(user_id=user_id), key=lambda k: k.created_at)],
        "teams": [registry.teams[t].info(registry.members_of(t)) for t in teams if t in registry.teams],
    }


def listing(service: AdminService, *, page: int, page_size: int, user_ids: list[str] | None, role: str | None,
            team_id: str | None) -> dict[str, Any]:
    registry = service.registry
    users = sorted(registry.users.values(), key=lambda u: (u.created_at, u.user_id))
    if user_ids:
        users = [u for u in users if u.user_id in user_ids]
    if role:
        users = [u for u in users if u.user_role == role]
    if team_id:
        users = [u for u in users if registry.member(team_id, u.user_id) is not None]
    chunk = users[(page - 1) * page_size : page * page_size]
    return {
        "users": [
            {**u.info(registry.teams_of(u.user_id)), "key_count": len(registry.keys_of(user_id=u.user_id))}
            for u in chunk
        ],
        "total": len(users),
        "page": page,
        "page_size": page_size,
        "total_pages": max(1, -(-len(users) // page_size)),
    }

