"""The admin entities in memory: keys, users, teams, members, end users, budget tiers."""

from .base import END_USER, GLOBAL, KEY, MEMBER, MODEL, TEAM, TIER, USER, Ref, epoch, iso
from .entities import BudgetTier, EndUserRecord, MemberRecord, TeamRecord, UserRecord
from .key import KeyRecord
from .model import ModelRecord

Record = KeyRecord | UserRecord | TeamRecord | MemberRecord | EndUserRecord | BudgetTier | ModelRecord

__all__ = [
    "END_USER", "GLOBAL", "KEY", "MEMBER", "MODEL", "TEAM", "TIER", "USER", "BudgetTier", "EndUserRecord",
    "KeyRecord", "MemberRecord", "ModelRecord", "Record", "Ref", "TeamRecord", "UserRecord", "epoch", "iso",
]
