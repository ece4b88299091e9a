"""Which upstream serves a request, and the calls to it.

router (groups, aliases, wildcards, run-time changes) · strategies (the order deployments are
tried) · cooldowns (per-deployment state) · fallbacks (retries and fallback models) · upstream
(one call) · providers (who speaks OpenAI's API, where) · target (a deployment resolved) ·
probe (/health's per-deployment check) · info (/model/info shapes)
"""
