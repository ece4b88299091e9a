"""What one callback message carries: events grouped so a burst becomes one message.

Groups are keyed by bounded values only (configured model, status, error type, key alias), and
their number is capped, so memory stays flat however many requests fail between two messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

FAILURE, SUCCESS, SLOW, BUDGET = "failure", "success", "slow", "budget"
UNKNOWN_MODEL = "(unknown model)"
MAX_ERROR_CHARS = 300
MAX_GROUPS = 50
OVERFLOW = "(other)"


@dataclass(slots=True)
class Event:
    """One finished request as the callbacks see it (no prompt, no response, no user id)."""

    kind: str
    at: float  # epoch seconds, request start
    request_id: str
    model: str  # a configured model_name or UNKNOWN_MODEL
    status: int
    key_alias: str | None
    latency: float
    cost: float
    total_tokens: int
    error_type: str | None = None
    error: str | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "kind": self.kind, "timestamp": self.at, "request_id": self.request_id,
            "model": self.model, "status_code": self.status, "key_alias": self.key_alias,
            "latency": round(self.latency, 6), "cost": self.cost,
            "total_tokens": self.total_tokens, "error_type": self.error_type, "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class BudgetAlert:
    scope: str  # "key" or "gateway"
    label: str  # "key team-a", "the gateway"
    key_alias: str | None
    level: float  # 0.85, 0.95 or 1.0
    spend: float
    max_budget: float

    def as_json(self) -> dict[str, object]:
        return {
            "kind": BUDGET, "scope": self.scope, "key_alias": self.key_alias,
            "threshold_percent": round(self.level * 100), "spend": round(self.spend, 6),
            "max_budget": self.max_budget,
        }


@dataclass(slots=True)
class Group:
    count: int = 0
    first: float = 0.0
    last: float = 0.0
    error: str | None = None  # the first error message of the group, as a sample
    request_id: str = ""
    max_latency: float = 0.0
    cost: float = 0.0
    tokens: int = 0


@dataclass
class Batch:
    """Everything waiting for one channel's next message."""

    max_events: int = 1000
    groups: dict[str, dict[tuple, Group]] = field(
        default_factory=lambda: {FAILURE: {}, SUCCESS: {}, SLOW: {}}
    )
    budgets: list[BudgetAlert] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    unlisted: int = 0  # counted in the groups, but beyond max_events in `events`
    lost: int = 0  # never seen: the queue was full (counted so the message can say so)

    @property
    def empty(self) -> bool:
        return not self.budgets and not any(self.groups.values()) and not self.lost

    def count(self, kind: str) -> int:
        return sum(g.count for g in self.groups[kind].values())

    def add(self, event: Event) -> None:
        if event.kind == FAILURE:
            key: tuple = (event.model, event.status, event.error_type or "", event.key_alias or "")
        else:
            key = (event.model, event.key_alias or "")
        groups = self.groups[event.kind]
        group = groups.get(key)
        if group is None:
            if len(groups) >= MAX_GROUPS:
                key = (OVERFLOW,) * len(key)
                group = groups.get(key)
            if group is None:
                group = groups[key] = Group(first=event.at, error=event.error, request_id=event.request_id)
        group.count += 1
        group.last = event.at
        group.max_latency = max(group.max_latency, event.latency)
        group.cost += event.cost
        group.tokens += event.total_tokens
        if len(self.events) < self.max_events:
            self.events.append(event)
        else:
            self.unlisted += 1

    def sorted_groups(self, kind: str) -> list[tuple[tuple, Group]]:
        return sorted(self.groups[kind].items(), key=lambda item: (-item[1].count, item[0]))


def short_error(message: str | None) -> str | None:
    if message is None or len(message) <= MAX_ERROR_CHARS:
        return message
    return message[:MAX_ERROR_CHARS] + "…"
