"""Admin state and its API: virtual keys, users, teams, end users, budgets, rate limits, spend
(keys.db beside the log).

  records/   the entities in memory and their LiteLLM shapes
  store/     the interfaces (base.py: EntityStore, SpendLedger, RateCounter) and their SQLite /
             in-memory implementations; codecs.py maps records to keys.db rows
  registry   every entity in memory (the request path reads only this)
  spendbook  spend in memory, flushed to the ledger as increments
  admission  the RequestHook: budgets and limits at every level, charging
  access     model allow-lists: wildcards and access groups
  budgets    budget periods and checks      fields / builders  request bodies → records
  service    AdminService: lifecycle, sync, writes      auth  master key + virtual keys
  ops/       operations shared by routes/ (HTTP) and cli/ (python -m proxy keys|users|teams)
  spend      read-only spend queries of the request log     setup  setup_keys(app)
"""

from __future__ import annotations

from typing import Any

__all__ = ["setup_keys"]


def __getattr__(name: str) -> Any:
    # Lazy, so `python -m proxy keys ...` starts without the gateway's runtime (pricing tables).
    if name == "setup_keys":
        from .setup import setup_keys

        return setup_keys
    raise AttributeError(name)
