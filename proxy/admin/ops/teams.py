"""Team operations (/team/*, `python -m proxy teams ...`), in LiteLLM's shapes.

A team's budget and limits apply to all its keys together; its `models` bound each key's, and
its `model_aliases` route its keys' requests. Members are users (created when unknown, as
LiteLLM does); `max_budget_in_team` caps what one member spends through the team's keys.
Deleting a team deletes its keys and memberships, as LiteLLM does.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from ...errors import BadRequest
from ..builders import create, updated
from ..errors import Conflict, EntityNotFound
from ..fields import TEAM_ACTIVE, TEAM_SPECIAL, TEAM_STORED, Parsed, parse
from ..records import KEY, MEMBER, TEAM, MemberRecord, Ref, TeamRecord, UserRecord
from ..records.base import member_ident
from ..service import AdminService
from ..store.base import AlreadyExists, Missing

log = logging.getLogger("proxy.keys")
ROLES = ("admin", "user")


def parse_team(body: Any, *, update: bool = False) -> Parsed:
    return parse(body, TEAM_ACTIVE, TEAM_STORED, TEAM_SPECIAL, update=update, what="a team")


async def find(service: AdminService, team_id: Any) -> TeamRecord:
    if not isinstance(team_id, str) or not team_id:
        raise BadRequest("`team_id` is required.", param="team_id")
    rec = await service.find(TEAM, team_id)
    if rec is None:
        raise EntityNotFound(f"Team not found, passed team_id={team_id}", param="team_id")
    return rec


def response(service: AdminService, team: TeamRecord) -> dict[str, Any]:
    return team.info(service.registry.members_of(team.team_id))


async def new(service: AdminService, parsed: Parsed) -> dict[str, Any]:
    now = time.time()
    team = create(TeamRecord, parsed, now, team_id=parsed.get("team_id") or str(uuid.uuid4()))
    wanted = _initial_members(parsed.special)
    async with service.lock:
        if await service.find(TEAM, team.team_id) is not None:
            raise Conflict(f"Team id = {team.team_id} already exists. Please use a different team id.", param="team_id")
        users, members = await _members(service, team.team_id, wanted, None)
        try:
            held = await service.write(inserts=[team, *users, *members])
        except AlreadyExists:
            raise Conflict(f"Team id = {team.team_id} already exists. Please use a different team id.", param="team_id") from None
    log.info("team created: %s", team.team_id)
    return response(service, held[0])


def _initial_members(special: dict[str, Any]) -> list[dict[str, Any]]:
    wanted = list(_member_list(special.get("members_with_roles") or [], "members_with_roles"))
    for name, role in (("admins", "admin"), ("members", "user")):
        ids = special.get(name) or []
        if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
            raise BadRequest(f"`{name}` must be a list of user ids.", param=name)
        wanted += [{"user_id": i, "role": role} for i in ids]
    return wanted


def _member_list(value: Any, param: str) -> list[dict[str, Any]]:
    items = value if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, dict) or not (isinstance(item.get("user_id"), str) or isinstance(item.get("user_email"), str)):
            raise BadRequest(f"`{param}`: each member needs a user_id or a user_email.", param=param)
        if item.get("role", "user") not in ROLES:
            raise BadRequest(f"`{param}`: role is admin or user.", param=param)
    return items


async def _members(
    service: AdminService, team_id: str, wanted: list[dict[str, Any]], budget: float | None
) -> tuple[list[UserRecord], list[MemberRecord]]:
    """(users to create, memberships to create) for `wanted` members of a team."""
    now = time.time()
    users: dict[str, UserRecord] = {}
    members: dict[str, MemberRecord] = {}
    for item in wanted:
        user_id, email = item.get("user_id"), item.get("user_email")
        if not user_id:
            found = next((u for u in service.registry.users.values() if u.user_email == email), None)
            user_id = found.user_id if found else str(uuid.uuid4())
        if user_id not in users and await service.find("user", user_id) is None:
            users[user_id] = UserRecord(user_id=user_id, user_email=email, created_at=now, updated_at=now)
        members[user_id] = MemberRecord(
            team_id=team_id, user_id=user_id, role=item.get("role", "user"), user_email=email,
            max_budget_in_team=budget, created_at=now,
        )
    return list(users.values()), list(members.values())


async def update(service: AdminService, body: Any) -> dict[str, Any]:
    parsed = parse_team(body, update=True)
    team_id = parsed.fields.pop("team_id", None)
    async with service.lock:
        rec = await find(service, team_id)
        try:
            held = (await service.write(updates=[updated(rec, parsed, time.time())]))[0]
        except Missing:
            raise EntityNotFound(f"Team not found, passed team_id={team_id}", param="team_id") from None
    log.info("team updated: %s: %s", team_id, ", ".join(sorted(parsed.fields)))
    return {"team_id": held.team_id, "data": response(service, held)}


async def delete(service: AdminService, team_ids: list[str]) -> list[str]:
    """Delete the teams, their keys and memberships: all of them, or none."""
    async with service.lock:
        for team_id in team_ids:
            await find(service, team_id)
        registry = service.registry
        refs = [Ref(TEAM, t) for t in team_ids]
        for team_id in team_ids:
            refs += [Ref(KEY, k.key_hash) for k in registry.keys_of(team_id=team_id)]
            refs += [Ref(MEMBER, m.ident) for m in registry.members_of(team_id)]
        await service.write(deletes=refs)
    log.info("teams deleted: %s", ", ".join(team_ids))
    return team_ids


async def member_add(service: AdminService, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object.")
    budget = body.get("max_budget_in_team")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float)) or budget < 0):
        raise BadRequest("`max_budget_in_team` must be a number of USD >= 0.", param="max_budget_in_team")
    wanted = _member_list(body.get("member"), "member")
    async with service.lock:
        team = await find(service, body.get("team_id"))
        users, members = await _members(service, team.team_id, wanted, None if budget is None else float(budget))
        for m in members:
            if service.registry.members.get(m.ident) is not None:
                raise BadRequest(f"User={m.user_id} already in team={team.team_id}.", param="member")
        held = await service.write(inserts=[*users, *members])
    registry = service.registry
    return {
        **response(service, team),
        "updated_users": [
            registry.users[m.user_id].info(registry.teams_of(m.user_id)) for m in members if m.user_id in registry.users
        ],
        "updated_team_memberships": [m.info() for m in held[len(users):]],
    }


async def _member(service: AdminService, body: Any) -> tuple[TeamRecord, MemberRecord]:
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object.")
    team = await find(service, body.get("team_id"))
    user_id, email = body.get("user_id"), body.get("user_email")
    member = None
    if isinstance(user_id, str):
        member = service.registry.members.get(member_ident(team.team_id, user_id))
    elif isinstance(email, str):
        member = next((m for m in service.registry.members_of(team.team_id) if m.user_email == email), None)
    else:
        raise BadRequest("Send the member's `user_id` or `user_email`.", param="user_id")
    if member is None:
        raise EntityNotFound(f"User is not a member of team {team.team_id}.", param="user_id")
    return team, member


async def member_delete(service: AdminService, body: Any) -> dict[str, Any]:
    async with service.lock:
        team, member = await _member(service, body)
        await service.write(deletes=[Ref(MEMBER, member.ident)])
    return response(service, team)


async def member_update(service: AdminService, body: Any) -> dict[str, Any]:
    async with service.lock:
        team, member = await _member(service, body)
        role = body.get("role", member.role)
        budget = body.get("max_budget_in_team", member.max_budget_in_team)
        if role not in ROLES:
            raise BadRequest("`role` is admin or user.", param="role")
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float)) or budget < 0):
            raise BadRequest("`max_budget_in_team` must be a number of USD >= 0.", param="max_budget_in_team")
        new = MemberRecord(
            team_id=member.team_id, user_id=member.user_id, role=role, user_email=member.user_email,
            max_budget_in_team=None if budget is None else float(budget), created_at=member.created_at,
        )
        await service.write(updates=[new])
    return {"team_id": team.team_id, "user_id": member.user_id, "user_email": member.user_email,
            "max_budget_in_team": new.max_budget_in_team}


async def block(service: AdminService, body: Any, blocked: bool) -> dict[str, Any]:
    team_id = body.get("team_id") if isinstance(body, dict) else None
    async with service.lock:
        rec = await find(service, team_id)
        new = updated(rec, Parsed(fields={"blocked": blocked}), time.time())
        held = (await service.write(updates=[new]))[0]
    return response(service, held)


def info(service: AdminService, team_id: str) -> dict[str, Any]:
    registry = service.registry
    team = registry.teams.get(team_id)
    if team is None:
        raise EntityNotFound(f"Team not found, passed team_id={team_id}", param="team_id")
    members = registry.members_of(team_id)
    return {
        "team_id": team_id,
        "team_info": team.info(members),
        "keys": [k.info() for k in sorted(registry.keys_of(team_id=team_id), key=lambda k: k.created_at)],
        "team_memberships": [m.info() for m in members],
    }


def listing(service: AdminService, user_id: str | None) -> list[dict[str, Any]]:
    registry = service.registry
    teams = sorted(registry.teams.values(), key=lambda t: (t.created_at, t.team_id))
    if user_id:
        teams = [t for t in teams if registry.member(t.team_id, user_id) is not None]
    return [{**response(service, t), "keys": [k.info() for k in registry.keys_of(team_id=t.team_id)]} for t in teams]
