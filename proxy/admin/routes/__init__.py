"""The admin HTTP API in LiteLLM's shapes: keys, users and teams, end users and budgets, spend,
models."""

from __future__ import annotations

from aiohttp import web

from . import customers, keys, models, spend, users
from .common import ADMIN

__all__ = ["ADMIN", "add_routes"]


def add_routes(app: web.Application) -> None:
    for module in (keys, users, customers, spend, models):
        module.add_routes(app)
