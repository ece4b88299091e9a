"""The admin entities in memory: keys, users, teams, members, end users, budget tiers."""

from .base import END_USER, GLOBAL, KEY, MEMBER, TEAM, TIER, USER, Ref, epoch, iso
from .entities import BudgetTier, EndUserRecord, MemberRecord, TeamRecord, UserRecord
from .key import KeyRecord

Record = KeyRecord | UserRecord | TeamRecord | MemberRecord | EndUserRecord | BudgetTier

__all__ = [
    "END_USER", "GLOBAL", "KEY", "MEMBER", "TEAM", "TIER", "USER", "BudgetTier", "EndUserRecord",
    "KeyRecord", "MemberRecord", "Record", "Ref", "TeamRecord", "UserRecord", "epoch", "iso",
]
