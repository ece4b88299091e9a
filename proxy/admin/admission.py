"""The admin RequestHook: a request is admitted only when the gateway budget, its end user
(the body's `user`), its key, the key's user, team and team membership all allow it, and is
then charged to all of them at once.

Admission reads memory only (the registry and the spend book): no store read per request.
Budgets are checked level by level and the first one exhausted refuses with a 429 that names
it; rate limits (key, user, team, end user, and the key's per-model limits) are acquired all
or none, so a refused request holds no slot anywhere.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import BadRequest, PermissionDenied
from . import budgets
from .records import KEY, EndUserRecord, KeyRecord, Ref
from .registry import Registry
from .spendbook import GLOBAL_REF, SpendBook
from .store.base import RateCounter

if TYPE_CHECKING:  # the CLI imports this package without the gateway's runtime
    from ..accounting.exchange import Exchange
    from ..logdb.record import RequestRecord

#: hook_state entry: the rate-limit subjects whose slots this request holds.
HOOK_STATE = "admin.subjects"
GLOBAL_SUFFIX = " (the gateway's litellm_settings.max_budget)"
MAX_SUBJECTS = 10_000


@dataclass(frozen=True, slots=True)
class Subject:
    """One set of rate limits a request counts against."""

    ref: Ref
    label: str
    rpm_limit: int | None
    tpm_limit: int | None
    max_parallel_requests: int | None

    @property
    def limited(self) -> bool:
        return self.rpm_limit is not None or self.tpm_limit is not None or self.max_parallel_requests is not None


def subject(rec: Any, what: str) -> Subject:
    return Subject(Ref(rec.KIND, rec.ident), f"{what} `{rec.label}`", rec.rpm_limit, rec.tpm_limit, rec.max_parallel_requests)


def end_user_id(ex: Exchange) -> str | None:
    user = ex.body.get("user") if ex.body else None
    return user if isinstance(user, str) and user else None


class Admission:
    def __init__(self, registry: Registry, book: SpendBook, counter: RateCounter) -> None:
        self.registry = registry
        self.book = book
        self.counter = counter
        #: id(record) -> (record, its limits and label, its Subject): a request's subjects are
        #: nearly always those of the request before; rebuilt when the record or its limits change.
        self._subjects: dict[int, tuple[Any, tuple[Any, ...], Subject]] = {}

    async def admit(self, ex: Exchange) -> None:
        now = time.time()
        book = self.book
        book.roll(book.global_budget, GLOBAL_REF, now)
        budgets.check(book.global_budget, suffix=GLOBAL_SUFFIX)
        subjects: list[Subject] = []

        end_user = self._end_user(ex)
        if end_user is not None:
            if end_user.blocked:
                raise PermissionDenied(
                    f"End user `{end_user.user_id}` is blocked (POST /end_user/unblock to allow it).",
                    param="user",
                )
            if self._over(end_user, now):
                budgets.check(end_user, scope=f"End User={end_user.user_id}")

        principal = ex.principal
        key = self.registry.keys.get(principal.key_hash) if principal and principal.key_hash else None
        if key is not None:
            cap = key.effective_max_budget(now)
            if self._over(key, now, cap):
                budgets.check(key, suffix=f" (key `{key.label}`)", cap=cap)
            _enforce_params(key, ex.body or {})
            subjects.append(self._subject(key, "key"))
            subjects.extend(_model_limits(key, ex.model))
            user = self.registry.users.get(key.user_id) if key.user_id else None
            team = self.registry.teams.get(key.team_id) if key.team_id else None
            member = self.registry.member(key.team_id, key.user_id)
            if user is not None:
                if self._over(user, now):
                    budgets.check(user, scope=f"User={user.user_id}")
                subjects.append(self._subject(user, "user"))
            if team is not None:
                if self._over(team, now):
                    budgets.check(team, scope=f"Team={team.team_id}")
                subjects.append(self._subject(team, "team"))
            if member is not None and self._over(member, now):
                budgets.check(member, scope=f"User={member.user_id} in Team={member.team_id}")
        if end_user is not None:
            subjects.append(self._subject(end_user, "end user"))

        held = [s for s in subjects if s.limited]
        if held:
            await self.counter.acquire(held)
            ex.hook_state[HOOK_STATE] = held

    def complete(self, ex: Exchange, record: RequestRecord) -> None:
        held: list[Subject] | None = ex.hook_state.pop(HOOK_STATE, None)
        if held:
            self.counter.release([s.ref for s in held])
            self.counter.add_tokens(held, record.total_tokens)
        cost = record.cost or 0.0
        if cost <= 0:
            return
        now = time.time()
        book = self.book
        book.charge(book.global_budget, GLOBAL_REF, cost, now)
        for rec in self._charged(ex, record):
            book.charge(rec, Ref(rec.KIND, rec.ident), cost, now)

    def _charged(self, ex: Exchange, record: RequestRecord) -> list[Any]:
        found: list[Any] = []
        key = self.registry.charged_key(record.key_hash) if record.key_hash else None
        if key is not None:
            found.append(key)
            found.append(self.registry.users.get(key.user_id) if key.user_id else None)
            found.append(self.registry.teams.get(key.team_id) if key.team_id else None)
            found.append(self.registry.member(key.team_id, key.user_id))
        found.append(self._end_user(ex))
        return [rec for rec in found if rec is not None]

    def _end_user(self, ex: Exchange) -> EndUserRecord | None:
        ident = end_user_id(ex)
        return self.registry.end_users.get(ident) if ident else None

    def _subject(self, rec: Any, what: str) -> Subject:
        found = self._subjects.get(id(rec))
        shape = (rec.rpm_limit, rec.tpm_limit, rec.max_parallel_requests, rec.ident, rec.label)
        if found is not None and found[0] is rec and found[1] == shape:
            return found[2]
        if len(self._subjects) >= MAX_SUBJECTS:
            self._subjects.clear()  # records replaced by updates: start over rather than grow
        made = self._subjects[id(rec)] = (rec, shape, subject(rec, what))
        return made[2]

    def _over(self, rec: Any, now: float, cap: float | None = None) -> bool:
        """Roll `rec`'s budget period; True when its spend reached its cap (`cap` overrides
        max_budget): the caller then raises through budgets.check, which names the budget
        (the message is only built for a refusal)."""
        self.book.roll(rec, Ref(rec.KIND, rec.ident), now)
        cap = rec.max_budget if cap is None else cap
        return cap is not None and rec.spend >= cap


def _model_limits(key: KeyRecord, model: str) -> list[Subject]:
    rpm = key.model_rpm_limit.get(model)
    tpm = key.model_tpm_limit.get(model)
    if rpm is None and tpm is None:
        return []
    return [Subject(model_ref(key, model), f"key `{key.label}` on model `{model}`", rpm, tpm, None)]


def model_ref(key: KeyRecord, model: str) -> Ref:
    """What a key's per-model limits count against."""
    return Ref(KEY, f"{key.key_hash}/{model}")


def _enforce_params(key: KeyRecord, body: dict[str, Any]) -> None:
    """LiteLLM's enforced_params: each must be in the request (`metadata.x` inside metadata)."""
    for param in key.enforced_params:
        head, _, tail = param.partition(".")
        value = body.get(head)
        if value is None or (tail and not (isinstance(value, dict) and tail in value)):
            raise BadRequest(
                f"BadRequest please pass param={param} in request body. This is a required param",
                param=param,
            )

