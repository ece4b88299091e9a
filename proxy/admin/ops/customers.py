"""End users (/end_user/*, also /customer/*) and budget tiers (/budget/*), in LiteLLM's shapes.

An end user is the body's `user` of a request, once created here; its limits are its budget
tier's (`budget_id`, or a tier made from `max_budget`... in the same call, as LiteLLM makes
one) and its spend its own. Unlike LiteLLM, an end user is not created on first sight: a
client cannot fill keys.db with made-up names, and an unknown `user` simply has no budget.
Updating the budget fields of an end user whose tier other end users share gives it a tier of
its own instead of changing theirs (LiteLLM changes the shared tier).
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from ...errors import BadRequest
from ..builders import create, updated
from ..errors import Conflict, EntityNotFound
from ..fields import (
    END_USER_ACTIVE,
    END_USER_STORED,
    END_USER_TIER,
    TIER_ACTIVE,
    TIER_STORED,
    Parsed,
    parse,
)
from ..records import END_USER, TIER, BudgetTier, EndUserRecord, Ref
from ..service import AdminService
from ..store.base import AlreadyExists

log = logging.getLogger("proxy.keys")


def parse_end_user(body: Any, *, update: bool = False) -> tuple[Parsed, Parsed]:
    """(end-user fields, budget-tier fields) of a /end_user/new|update body."""
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object.")
    tier_body = {k: body[k] for k in END_USER_TIER if k in body}
    rest = {k: v for k, v in body.items() if k not in END_USER_TIER}
    parsed = parse(rest, END_USER_ACTIVE, END_USER_STORED, update=update, what="an end user")
    tier = parse(tier_body, TIER_ACTIVE, update=update, what="an end user's budget")
    return parsed, tier


async def find(service: AdminService, user_id: Any, param: str = "end_user_id") -> EndUserRecord:
    if not isinstance(user_id, str) or not user_id:
        raise BadRequest(f"`{param}` is required.", param=param)
    rec = await service.find(END_USER, user_id)
    if rec is None:
        raise EntityNotFound(f"End User Id={user_id} does not exist in db", param=param)
    return rec


async def _tier(service: AdminService, budget_id: str) -> BudgetTier:
    tier = await service.find(TIER, budget_id)
    if tier is None:
        raise BadRequest(f"Budget {budget_id} does not exist: create it with /budget/new.", param="budget_id")
    return tier


async def new_end_user(service: AdminService, body: Any) -> dict[str, Any]:
    parsed, tier_fields = parse_end_user(body)
    user_id = parsed.get("user_id")
    if not user_id:
        raise BadRequest("`user_id` is required: the `user` your requests send.", param="user_id")
    if tier_fields.fields and parsed.get("budget_id"):
        raise BadRequest("Set either 'max_budget' or 'budget_id', not both.", param="budget_id")
    now = time.time()
    inserts: list[Any] = []
    if tier_fields.fields:
        inserts.append(create(BudgetTier, tier_fields, now, budget_id=str(uuid.uuid4())))
        parsed.fields["budget_id"] = inserts[0].budget_id
    rec = create(EndUserRecord, parsed, now)
    async with service.lock:
        if rec.budget_id and not inserts:
            await _tier(service, rec.budget_id)
        if await service.find(END_USER, user_id) is not None:
            raise Conflict(f"Customer already exists, passed user_id={user_id}. Please pass a new user_id.", param="user_id")
        try:
            held = await service.write(inserts=[*inserts, rec])
        except AlreadyExists:
            raise Conflict(f"Customer already exists, passed user_id={user_id}. Please pass a new user_id.", param="user_id") from None
    log.info("end user created: %s", user_id)
    return held[-1].info()


async def update_end_user(service: AdminService, body: Any) -> dict[str, Any]:
    parsed, tier_fields = parse_end_user(body, update=True)
    user_id = parsed.fields.pop("user_id", None)
    async with service.lock:
        rec = await find(service, user_id, "user_id")
        now = time.time()
        new = updated(rec, parsed, now)
        inserts: list[Any] = []
        updates: list[Any] = [new]
        if new.budget_id and "budget_id" in parsed.fields:
            await _tier(service, new.budget_id)
        if tier_fields.fields:
            current = service.registry.tiers.get(new.budget_id) if new.budget_id else None
            shared = current is not None and any(
                e.budget_id == current.budget_id and e.user_id != rec.user_id for e in service.registry.end_users.values()
            )
            if current is None or shared:
                base = Parsed(fields={k: getattr(current, k) for k in END_USER_TIER} if current else {})
                base.fields.update(tier_fields.fields)
                tier = create(BudgetTier, base, now, budget_id=str(uuid.uuid4()))
                inserts.append(tier)
                new.budget_id = tier.budget_id
            else:
                updates.append(updated(current, tier_fields, now))
        await service.write(inserts=inserts, updates=updates)
        held = service.registry.end_users[rec.user_id]
        if "spend" in parsed.fields:
            await service.set_spend(held, parsed.fields["spend"])
    return held.info()


async def delete_end_users(service: AdminService, user_ids: list[str]) -> dict[str, Any]:
    async with service.lock:
        missing = [u for u in user_ids if await service.find(END_USER, u) is None]
        if missing:
            raise EntityNotFound(f"End User Id(s)={', '.join(missing)} do not exist in db", param="user_ids")
        await service.write(deletes=[Ref(END_USER, u) for u in user_ids])
    return {"deleted_customers": len(user_ids), "message": f"Successfully deleted customers with ids: {user_ids}"}


async def block(service: AdminService, user_ids: list[str], blocked: bool) -> list[EndUserRecord]:
    """Block (creating unknown end users, as LiteLLM upserts them) or unblock end users."""
    now = time.time()
    async with service.lock:
        inserts, updates = [], []
        for user_id in user_ids:
            rec = await service.find(END_USER, user_id)
            if rec is None:
                if blocked:
                    inserts.append(EndUserRecord(user_id=user_id, blocked=True, created_at=now, updated_at=now))
            elif rec.blocked != blocked:
                updates.append(updated(rec, Parsed(fields={"blocked": blocked}), now))
        await service.write(inserts=inserts, updates=updates)
    return [service.registry.end_users[u] for u in user_ids if u in service.registry.end_users]


# -- budget tiers ----------------------------------------------------------------------------


async def new_budget(service: AdminService, body: Any) -> dict[str, Any]:
    parsed = parse(body, TIER_ACTIVE, TIER_STORED, what="a budget")
    tier = create(BudgetTier, parsed, time.time(), budget_id=parsed.get("budget_id") or str(uuid.uuid4()))
    async with service.lock:
        if await service.find(TIER, tier.budget_id) is not None:
            raise Conflict(f"Budget {tier.budget_id} already exists.", param="budget_id")
        held = await service.write(inserts=[tier])
    return held[0].info()


async def find_budget(service: AdminService, budget_id: Any) -> BudgetTier:
    if not isinstance(budget_id, str) or not budget_id:
        raise BadRequest("`budget_id` is required.", param="budget_id")
    tier = await service.find(TIER, budget_id)
    if tier is None:
        raise EntityNotFound(f"Budget {budget_id} not found", param="budget_id")
    return tier


async def update_budget(service: AdminService, body: Any) -> dict[str, Any]:
    parsed = parse(body, TIER_ACTIVE, TIER_STORED, update=True, what="a budget")
    budget_id = parsed.fields.pop("budget_id", None)
    async with service.lock:
        tier = await find_budget(service, budget_id)
        held = await service.write(updates=[updated(tier, parsed, time.time())])
    return held[0].info()


async def delete_budget(service: AdminService, budget_id: Any) -> dict[str, Any]:
    async with service.lock:
        tier = await find_budget(service, budget_id)
        users = [e.user_id for e in service.registry.end_users.values() if e.budget_id == tier.budget_id]
        if users:
            raise BadRequest(
                f"Budget {tier.budget_id} is used by end users {', '.join(users)}: give them another first.",
                param="id",
            )
        await service.write(deletes=[Ref(TIER, tier.budget_id)])
    return tier.info()
