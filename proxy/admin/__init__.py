"""Admin state and its API: virtual keys, budgets, rate limits, spend (keys.db beside the log).

  store.py    keys.db schema, migrations, SQL       cache.py    in-memory keys, invalidation
  record.py   a key in memory, its display forms    fields.py   validation of key settings
  budgets.py  per-key and gateway budgets, resets   limits.py   rpm / tpm / parallel limits
  service.py  running state, its keys.db thread     auth.py     master key + virtual keys
  spend.py    read-only spend queries (litellm.db)  routes.py   /key/* and /spend/*
  setup.py    setup_keys(app)                       cli.py      python -m proxy keys ...
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
