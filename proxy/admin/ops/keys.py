"""Key operations, shared by the HTTP API (routes/keys.py) and the CLI (cli/keys.py)."""

from __future__ import annotations

import logging
import time
from typing import Any

from ...errors import BadRequest, PermissionDenied
from ...server.auth import Principal
from ..builders import build_key, custom_key, regenerated_key, updated_key
from ..errors import KeyNotFound
from ..fields import Parsed
from ..records import KEY, TEAM, USER, KeyRecord, Ref, UserRecord
from ..records.key import key_hash_of
from ..service import AdminService
from ..store.base import DuplicateAlias, Missing

log = logging.getLogger("proxy.keys")


async def find(service: AdminService, ref: str) -> KeyRecord:
    rec = await service.lookup(key_hash_of(ref))
    if rec is None:
        raise KeyNotFound("Key not found: no such key (it may have been deleted).", param="key")
    return rec


async def owners(service: AdminService, rec: KeyRecord, changed: set[str]) -> list[Any]:
    """Records a key's owners need: a new user_id becomes a user (as LiteLLM upserts one); a
    team_id must name a team that exists."""
    new: list[Any] = []
    if rec.team_id and "team_id" in changed and await service.find(TEAM, rec.team_id) is None:
        raise BadRequest(
            f"Team doesn't exist in db. Team={rec.team_id}. Create team via `/team/new` call.", param="team_id"
        )
    if rec.user_id and "user_id" in changed and await service.find(USER, rec.user_id) is None:
        now = time.time()
        new.append(UserRecord(user_id=rec.user_id, created_at=now, updated_at=now))
    return new


async def generate(service: AdminService, parsed: Parsed) -> tuple[str, KeyRecord]:
    raw = custom_key(parsed.special["key"]) if parsed.special.get("key") is not None else None
    raw, rec = build_key(parsed, time.time(), raw)
    async with service.lock:
        if await service.lookup(rec.key_hash) is not None:
            raise BadRequest("This key already exists.", param="key")
        inserts = await owners(service, rec, {"user_id", "team_id"})
        try:
            held = await service.write(inserts=[*inserts, rec])
        except DuplicateAlias:
            raise BadRequest(f"key_alias `{rec.key_alias}` is already used by another key.", param="key_alias") from None
    log.info("key created: %s (%s)", rec.label, rec.key_hash[:12])
    return raw, held[-1]


async def update(service: AdminService, ref: str, parsed: Parsed) -> KeyRecord:
    async with service.lock:
        rec = await find(service, ref)
        new = updated_key(rec, parsed, time.time())
        inserts = await owners(service, new, set(parsed.fields))
        try:
            held = (await service.write(inserts=inserts, updates=[new]))[-1]
        except DuplicateAlias:
            raise BadRequest(f"key_alias `{new.key_alias}` is already used by another key.", param="key_alias") from None
        except Missing:
            service.registry.remove(KEY, rec.key_hash)
            raise KeyNotFound("Key not found: it was deleted meanwhile.", param="key") from None
        if "spend" in parsed.fields:  # an admin setting spend outright (e.g. back to 0)
            await service.set_spend(held, parsed.fields["spend"])
    log.info("key updated: %s (%s): %s", held.label, held.key_hash[:12], ", ".join(sorted(parsed.fields)))
    return held


async def delete(service: AdminService, refs: list[str]) -> list[KeyRecord]:
    """Delete every key of `refs` or, when any is unknown, none of them."""
    async with service.lock:
        found = [await service.lookup(key_hash_of(r)) for r in refs]
        missing = sum(1 for rec in found if rec is None)
        if missing:
            raise KeyNotFound(f"{missing} of {len(refs)} keys not found; nothing was deleted.", param="keys")
        records = [rec for rec in found if rec is not None]
        await service.write(deletes=[Ref(KEY, rec.key_hash) for rec in records])
    for rec in records:
        log.info("key deleted: %s (%s)", rec.label, rec.key_hash[:12])
    return records


async def regenerate(service: AdminService, ref: str, parsed: Parsed) -> tuple[str, KeyRecord]:
    """A new secret for the key: same settings, spend and budget period; the old one stops
    working at once. Fields in the body update the key as /key/update would."""
    if parsed.special.get("new_master_key") is not None:
        raise BadRequest(
            "The master key is general_settings.master_key in config.yaml: change it there and restart.",
            param="new_master_key",
        )
    new_key = parsed.special.get("new_key")
    raw = custom_key(new_key, "new_key") if new_key is not None else None
    async with service.lock:
        await service.flush()  # the old row's spend is complete before it moves
        rec = await find(service, ref)
        now = time.time()
        raw, fresh = build_key(Parsed(), now, raw)
        if await service.lookup(fresh.key_hash) is not None:
            raise BadRequest("This key already exists.", param="new_key")
        new = regenerated_key(updated_key(rec, parsed, now), raw, now)
        new.spend, new.budget_reset_at = rec.spend, rec.budget_reset_at
        inserts = await owners(service, new, set(parsed.fields))
        try:
            held = (await service.write(inserts=[*inserts, new], deletes=[Ref(KEY, rec.key_hash)]))[-1]
        except DuplicateAlias:
            raise BadRequest(f"key_alias `{new.key_alias}` is already used by another key.", param="key_alias") from None
        service.registry.rename_key(rec.key_hash, held.key_hash)
        if "spend" in parsed.fields:
            await service.set_spend(held, parsed.fields["spend"])
    log.info("key regenerated: %s (%s -> %s)", held.label, rec.key_hash[:12], held.key_hash[:12])
    return raw, held


async def readable(service: AdminService, caller: Principal, ref: str | None) -> KeyRecord:
    """/key/info: the master key reads any key; a key reads itself and its user's keys.
    An unknown key is 404; another user's key is 403, as in LiteLLM."""
    if caller.is_admin:
        if not ref:
            raise BadRequest("Pass the key (or its hash) as ?key=...", param="key")
        return await find(service, ref)
    if not ref or key_hash_of(ref) == caller.key_hash:
        return await find(service, caller.key_hash or "")
    rec = await find(service, ref)
    if caller.user_id is None or rec.user_id != caller.user_id:
        raise PermissionDenied("You are not allowed to access this key's info: it is not yours.", param="key")
    return rec

