"""The Redis backend of EntityStore and SpendLedger (store/base.py): every gateway pointing at
one Redis shares keys, users, teams, members, end users, budget tiers and their spend.

Redis is the source of truth while configured; keys.db stays as this host's copy (redis_copy.py)
for a start while Redis is down and to reseed a Redis that lost its data. Writes are Lua
scripts (redis_scripts.py): one atomic step each, which bumps `version` (the change token) and
publishes it, so other hosts reload within milliseconds; their periodic token check is the
safety net. Spend increments are batches with an id: a batch whose answer was lost is asked
about before anything is resent, so nothing is added twice.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import StoreUnavailable
from ..records import MODEL, TIER, Ref, iso
from .base import AlreadyExists, Charge, DuplicateAlias, Missing, Snapshot
from .codecs import CODECS, Codec
from .redis_link import NETWORK_ERRORS, RedisLink
from .redis_scripts import APPLY, CHARGE, SAVE_GLOBAL, SEED

log = logging.getLogger("proxy.redis")

#: Kinds without a spend counter: budget tiers, run-time model changes.
UNSPENT = (TIER, MODEL)
#: Columns the ledger holds (spend, reset hashes), not the settings JSON.
LEDGER = ("spend", "budget_reset_at")
APPLIED_TTL = 24 * 3600


def spend_field(ref: Ref) -> str:
    return f"{ref.kind}:{ref.ident}"


def settings_json(rec: Any) -> str:
    codec = CODECS[rec.KIND]
    row = codec.to_row(rec)
    for column in LEDGER:
        row.pop(column, None)
    return json.dumps(row, sort_keys=True, separators=(",", ":"))


def record_from(codec: Codec, raw: str, spend: str | None, reset: str | None) -> Any:
    row = json.loads(raw)
    row["spend"] = float(spend or 0.0)
    row["budget_reset_at"] = iso(float(reset)) if reset else None
    return codec.from_row([row.get(c) for c in codec.columns])


def _num(value: float | None) -> str:
    return "" if value is None else repr(float(value))


@dataclass
class _Batch:
    """Spend increments on their way to Redis, under one id."""

    ident: str = field(default_factory=lambda: secrets.token_hex(8))
    charges: dict[Ref, Charge] = field(default_factory=dict)

    def add(self, c: Charge) -> None:
        old = self.charges.get(c.ref)
        delta = c.delta + (old.delta if old else 0.0)
        self.charges[c.ref] = Charge(c.ref, delta, c.now, c.next_reset, c.budget_duration, c.budget_reset_at)


class RedisStore:
    """EntityStore + SpendLedger over a RedisLink."""

    def __init__(self, link: RedisLink) -> None:
        self.link = link
        client = link.client
        self._apply = client.register_script(APPLY)
        self._charge = client.register_script(CHARGE)
        self._save_global = client.register_script(SAVE_GLOBAL)
        self._seed = client.register_script(SEED)
        self.dataset: str | None = None  # the data set this host knows; gone = Redis lost it
        self._token: object = None
        self._pending: _Batch | None = None  # never sent: merged freely
        self._suspect: _Batch | None = None  # sent, answer lost: asked about before a resend

    @property
    def p(self) -> str:
        return self.link.prefix

    def _unavailable(self, exc: BaseException | None = None) -> StoreUnavailable:
        if exc is not None:
            self.link.failed(exc)
        return StoreUnavailable(
            f"Redis ({self.link.public}) is unreachable: admin changes and keys this gateway has "
            "not seen yet must wait until it answers again."
        )

    def _require_up(self) -> None:
        if not self.link.up:
            raise self._unavailable()

    # -- data set -------------------------------------------------------------------------------
    async def read_dataset(self) -> str | None:
        return await self.link.client.get(self.p + "dataset")

    async def seed(
        self, snapshot: Snapshot, mode: str, *, minus: Mapping[Ref, float] | None = None
    ) -> tuple[int, int]:
        """Write a snapshot into Redis (see SEED's modes). Returns (written, kept); written is
        -1 when mode "seed" found a data set already there. `minus`: spend not to store (the
        spend book's increments not yet flushed, which it will add itself)."""
        minus = minus or {}
        dataset = secrets.token_hex(8)
        entities: dict[str, dict[str, str]] = {}
        spend: dict[str, str] = {}
        reset: dict[str, str] = {}
        aliases: dict[str, str] = {}
        for kind, records in snapshot.records.items():
            bucket = entities.setdefault(kind, {})
            for rec in records:
                bucket[rec.ident] = settings_json(rec)
                if kind in UNSPENT:
                    continue
                ref = Ref(kind, rec.ident)
                f = spend_field(ref)
                spend[f] = _num(rec.spend - minus.get(ref, 0.0))
                if rec.budget_reset_at is not None:
                    reset[f] = _num(rec.budget_reset_at)
                if getattr(rec, "key_alias", None):
                    aliases[rec.key_alias] = rec.key_hash
        duration = ""
        if snapshot.global_budget is not None:
            g_spend, g_duration, g_reset = snapshot.global_budget
            spend["global:global"] = _num(g_spend - minus.get(Ref("global", "global"), 0.0))
            if g_reset is not None:
                reset["global:global"] = _num(g_reset)
            duration = g_duration or ""
        data = json.dumps({"e": entities, "s": spend, "r": reset, "a": aliases, "g": duration})
        written, kept = await self._seed(args=[self.p, dataset, mode, data])
        self.dataset = await self.read_dataset()
        return int(written), int(kept)

    # -- EntityStore ----------------------------------------------------------------------------
    async def close(self) -> None:
        return None

    async def change_token(self) -> object:
        """Redis's `version`; while Redis is down, the last one (memory stays as it is)."""
        if not self.link.up:
            return self._token
        try:
            async with self.link.client.pipeline(transaction=False) as pipe:
                dataset, version = await pipe.get(self.p + "dataset").get(self.p + "version").execute()
        except NETWORK_ERRORS as exc:
            self.link.failed(exc)
            return self._token
        if dataset != self.dataset:
            self.link.failed(f"Redis at {self.link.public} no longer holds the gateway's data "
                             "(restarted without persistence, or flushed)")
            return self._token
        self._token = version
        return version

    async def load(self) -> Snapshot:
        self._require_up()
        kinds = list(CODECS)
        try:
            async with self.link.client.pipeline(transaction=True) as pipe:
                pipe.get(self.p + "dataset").get(self.p + "version")
                for kind in kinds:
                    pipe.hgetall(self.p + "e:" + kind)
                pipe.hgetall(self.p + "spend").hgetall(self.p + "reset").get(self.p + "gdur")
                dataset, version, *tables, spend, reset, gdur = await pipe.execute()
        except NETWORK_ERRORS as exc:
            raise self._unavailable(exc) from None
        if dataset is None or (self.dataset is not None and dataset != self.dataset):
            self.link.failed(f"Redis at {self.link.public} no longer holds the gateway's data")
            raise self._unavailable()
        self.dataset = dataset
        self._token = version
        records = {}
        for kind, table in zip(kinds, tables, strict=True):
            codec = CODECS[kind]
            rows = [record_from(codec, raw, spend.get(f"{kind}:{ident}"), reset.get(f"{kind}:{ident}"))
                    for ident, raw in table.items()]
            rows.sort(key=lambda r: (getattr(r, "created_at", 0.0) or 0.0, r.ident))
            records[kind] = rows
        g = "global:global"
        global_budget = None
        if g in spend:
            global_budget = (float(spend[g]), gdur, float(reset[g]) if reset.get(g) else None)
        return Snapshot(records=records, global_budget=global_budget)

    async def get(self, kind: str, ident: str) -> Any | None:
        self._require_up()
        f = spend_field(Ref(kind, ident))
        try:
            async with self.link.client.pipeline(transaction=True) as pipe:
                raw, spend, reset = await (
                    pipe.hget(self.p + "e:" + kind, ident).hget(self.p + "spend", f).hget(self.p + "reset", f).execute()
                )
        except NETWORK_ERRORS as exc:
            raise self._unavailable(exc) from None
        return None if raw is None else record_from(CODECS[kind], raw, spend, reset)

    async def insert(self, record: Any) -> None:
        await self.apply([record], [], [])

    async def update(self, record: Any) -> bool:
        try:
            await self.apply([], [record], [])
        except Missing:
            return False
        return True

    async def delete(self, kind: str, idents: Iterable[str]) -> int:
        refs = [Ref(kind, i) for i in idents]
        present = 0
        for ref in refs:
            present += await self.get(ref.kind, ref.ident) is not None
        await self.apply([], [], refs)
        return present

    async def apply(self, inserts: Sequence[Any], updates: Sequence[Any], deletes: Sequence[Ref]) -> None:
        self._require_up()
        ops = {
            "d": [[r.kind, r.ident] for r in deletes],
            "u": [[r.KIND, r.ident, settings_json(r), _num(getattr(r, "budget_reset_at", None)),
                   getattr(r, "key_alias", None) or ""] for r in updates],
            "i": [[r.KIND, r.ident, settings_json(r), "" if r.KIND in UNSPENT else _num(r.spend),
                   _num(getattr(r, "budget_reset_at", None)), getattr(r, "key_alias", None) or ""]
                  for r in inserts],
        }
        try:
            outcome, detail = await self._apply(args=[self.p, json.dumps(ops)])
        except NETWORK_ERRORS as exc:
            raise self._unavailable(exc) from None
        if outcome == "missing":
            raise Missing(detail)
        if outcome == "exists":
            raise AlreadyExists(detail)
        if outcome == "alias":
            raise DuplicateAlias(detail)

    # -- SpendLedger ------------------------------------------------------------------------------
    async def charge(self, charges: Sequence[Charge]) -> dict[Ref, tuple[float, float | None]]:
        """Add the increments; while Redis is down they wait here (never returned to the spend
        book, so never counted twice) and {} is returned: memory keeps the local totals."""
        if charges:
            self._pending = self._pending or _Batch()
            for c in charges:
                self._pending.add(c)
        if not self.link.up:
            return {}
        try:
            return await self.push_outbox()
        except NETWORK_ERRORS as exc:
            self.link.failed(exc)
            return {}

    async def push_outbox(self) -> dict[Ref, tuple[float, float | None]]:
        """Resolve a batch whose answer was lost, then send what waits (reconciliation)."""
        if self._suspect is not None:
            applied = await self.link.client.exists(self.p + "applied:" + self._suspect.ident)
            if not applied:
                merged = self._suspect
                for c in (self._pending.charges.values() if self._pending else ()):
                    merged.add(c)
                merged.ident = secrets.token_hex(8)
                self._pending = merged
            self._suspect = None
        if self._pending is None:
            return {}
        batch, self._pending = self._pending, None
        payload = []
        for c in batch.charges.values():
            item = {"k": c.ref.kind, "i": c.ref.ident, "d": _num(c.delta), "now": _num(c.now)}
            for name, value in (("nr", c.next_reset), ("bra", c.budget_reset_at)):
                if value is not None:
                    item[name] = _num(value)
            if c.budget_duration:
                item["bd"] = c.budget_duration
            payload.append(item)
        try:
            out = await self._charge(args=[self.p, batch.ident, APPLIED_TTL, json.dumps(payload)])
        except NETWORK_ERRORS:
            self._suspect = batch
            raise
        totals: dict[Ref, tuple[float, float | None]] = {}
        for i in range(0, len(out), 3):
            kind, _, ident = out[i].partition(":")
            totals[Ref(kind, ident)] = (float(out[i + 1]), float(out[i + 2]) if out[i + 2] else None)
        return totals

    def drop_outbox(self) -> None:
        """After reseeding Redis from memory: memory already holds these increments."""
        self._pending = self._suspect = None

    async def spend_totals(self) -> dict[Ref, tuple[float, float | None]]:
        """Every stored spend (a catch-up after pub/sub may have missed some)."""
        async with self.link.client.pipeline(transaction=True) as pipe:
            spend, reset = await pipe.hgetall(self.p + "spend").hgetall(self.p + "reset").execute()
        totals = {}
        for f, value in spend.items():
            kind, _, ident = f.partition(":")
            totals[Ref(kind, ident)] = (float(value), float(reset[f]) if reset.get(f) else None)
        return totals

    async def set_spend(self, ref: Ref, spend: float) -> None:
        self._require_up()
        try:
            async with self.link.client.pipeline(transaction=True) as pipe:
                pipe.hset(self.p + "spend", spend_field(ref), _num(spend))
                pipe.incr(self.p + "version")
                _, version = await pipe.execute()
                await self.link.client.publish(self.p + "changes", version)
        except NETWORK_ERRORS as exc:
            raise self._unavailable(exc) from None

    async def save_global(self, spend: float, budget_duration: str | None, reset_at: float | None) -> None:
        if not self.link.up:
            return  # a period started while Redis is down is stored by the next charge
        try:
            await self._save_global(args=[self.p, _num(spend), budget_duration or "", _num(reset_at)])
        except NETWORK_ERRORS as exc:
            self.link.failed(exc)
