"""Virtual keys, budgets, rate limits and the spend API (keys.db beside the request log).

  store.py    keys.db schema, migrations, SQL         cache.py   in-memory keys, invalidation
  record.py   a key in memory, its display forms       fields.py  validation of key settings
  budgets.py  per-key and gateway budgets, resets      limits.py  rpm / tpm / parallel limits
  service.py  the running state and its keys.db thread auth.py    master key + virtual keys
  spend.py    read-only spend queries on litellm.db    routes.py  /key/* and /spend/*
  setup.py    setup_keys(app)                          cli.py     python -m proxy keys ...
"""

from .setup import setup_keys

__all__ = ["setup_keys"]
