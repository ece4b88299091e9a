-- Virtual keys. Never the key itself: its SHA-256 (key_hash) and a display form (sk-…abcd).
-- Times are ISO-8601 UTC text ('2025-01-31T12:00:00.000Z'); money is USD.
CREATE TABLE IF NOT EXISTS keys (
    key_hash TEXT PRIMARY KEY,                    -- sha256 hex of the raw key
    key_name TEXT NOT NULL,                       -- display form, e.g. sk-…abcd
    key_alias TEXT,
    user_id TEXT,                                 -- becomes request_log.user_id
    team_id TEXT,
    models TEXT NOT NULL DEFAULT '[]',            -- JSON list of model_name; [] = every model
    max_budget REAL,                              -- USD per budget_duration; NULL = unlimited
    budget_duration TEXT,                         -- 30s, 1h, 1d, 7d, 30d; NULL = never resets
    budget_reset_at TEXT,                         -- when spend next returns to 0
    spend REAL NOT NULL DEFAULT 0,                -- USD since the last reset
    expires_at TEXT,                              -- NULL = never expires
    rpm_limit INTEGER,
    tpm_limit INTEGER,
    max_parallel_requests INTEGER,
    metadata TEXT NOT NULL DEFAULT '{}',          -- JSON object
    blocked INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
-- Aliases name keys in the CLI and the report, so two keys may not share one.
CREATE UNIQUE INDEX IF NOT EXISTS idx_keys_alias ON keys (key_alias) WHERE key_alias IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_keys_user ON keys (user_id);

-- Gateway-wide budgets (litellm_settings.max_budget); one row named 'global'.
CREATE TABLE IF NOT EXISTS budgets (
    name TEXT PRIMARY KEY,
    spend REAL NOT NULL DEFAULT 0,
    budget_duration TEXT,
    budget_reset_at TEXT,
    updated_at TEXT NOT NULL
);
