-- Models changed at run time (issue 14): deployments added by /model/new, and /model/update's
-- changes to config.yaml's deployments (the changed fields only, and the on/off switch).
-- Applied to the router of every gateway process on keys.db (admin/deployments.py).
CREATE TABLE IF NOT EXISTS models (
    model_id TEXT PRIMARY KEY,                    -- the deployment id (model_info.id)
    model_name TEXT,                              -- NULL: a config deployment keeps its name
    litellm_params TEXT NOT NULL DEFAULT '{}',    -- JSON; api_key as sent (os.environ/NAME kept)
    model_info TEXT NOT NULL DEFAULT '{}',        -- JSON
    origin TEXT NOT NULL DEFAULT 'api',           -- api: added by /model/new; config: overrides
    enabled INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
