-- Users, teams, team members, end users and budget tiers beside the keys (issue 11), and the
-- LiteLLM key fields keys gained. Times are ISO-8601 UTC text, money USD, lists and objects JSON.

-- Keys: per-key model aliases and the LiteLLM fields that act; `extras` holds LiteLLM fields
-- stored and returned but not acted on (guardrails, permissions, tags...).
ALTER TABLE keys ADD COLUMN aliases TEXT NOT NULL DEFAULT '{}';
ALTER TABLE keys ADD COLUMN soft_budget REAL;
ALTER TABLE keys ADD COLUMN enforced_params TEXT NOT NULL DEFAULT '[]';
ALTER TABLE keys ADD COLUMN model_rpm_limit TEXT NOT NULL DEFAULT '{}';
ALTER TABLE keys ADD COLUMN model_tpm_limit TEXT NOT NULL DEFAULT '{}';
ALTER TABLE keys ADD COLUMN temp_budget_increase REAL;
ALTER TABLE keys ADD COLUMN temp_budget_expiry TEXT;
ALTER TABLE keys ADD COLUMN extras TEXT NOT NULL DEFAULT '{}';
CREATE INDEX IF NOT EXISTS idx_keys_team ON keys (team_id);

CREATE TABLE IF NOT EXISTS users (
    user_id TEXT PRIMARY KEY,
    user_alias TEXT,
    user_email TEXT,
    user_role TEXT,
    models TEXT NOT NULL DEFAULT '[]',            -- [] = every model
    max_budget REAL,
    soft_budget REAL,
    budget_duration TEXT,
    budget_reset_at TEXT,
    spend REAL NOT NULL DEFAULT 0,                -- USD since the last reset, all the user's keys
    rpm_limit INTEGER,
    tpm_limit INTEGER,
    max_parallel_requests INTEGER,
    metadata TEXT NOT NULL DEFAULT '{}',
    blocked INTEGER NOT NULL DEFAULT 0,
    extras TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS teams (
    team_id TEXT PRIMARY KEY,
    team_alias TEXT,
    models TEXT NOT NULL DEFAULT '[]',            -- bounds every key of the team
    max_budget REAL,
    soft_budget REAL,
    budget_duration TEXT,
    budget_reset_at TEXT,
    spend REAL NOT NULL DEFAULT 0,                -- USD since the last reset, all the team's keys
    rpm_limit INTEGER,
    tpm_limit INTEGER,
    max_parallel_requests INTEGER,
    metadata TEXT NOT NULL DEFAULT '{}',
    blocked INTEGER NOT NULL DEFAULT 0,
    model_aliases TEXT NOT NULL DEFAULT '{}',
    extras TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS team_members (
    team_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    role TEXT NOT NULL DEFAULT 'user',            -- 'admin' or 'user'
    user_email TEXT,
    max_budget_in_team REAL,
    spend REAL NOT NULL DEFAULT 0,                -- what the user spent through the team's keys
    budget_reset_at TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX IF NOT EXISTS idx_team_members_user ON team_members (user_id);

-- /budget/new rows: limits end users share (LiteLLM's budget table).
CREATE TABLE IF NOT EXISTS budget_tiers (
    budget_id TEXT PRIMARY KEY,
    max_budget REAL,
    soft_budget REAL,
    budget_duration TEXT,
    rpm_limit INTEGER,
    tpm_limit INTEGER,
    max_parallel_requests INTEGER,
    extras TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- The request body's `user` (LiteLLM's customers), once created by /end_user/new or /block.
CREATE TABLE IF NOT EXISTS end_users (
    user_id TEXT PRIMARY KEY,
    alias TEXT,
    blocked INTEGER NOT NULL DEFAULT 0,
    budget_id TEXT,                               -- budget_tiers.budget_id
    spend REAL NOT NULL DEFAULT 0,
    budget_reset_at TEXT,
    allowed_model_region TEXT,
    default_model TEXT,
    extras TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Keys made before users and teams existed keep their user_id and team_id: give each a row
-- (no limits, spend counted from now), as /key/generate now does for a new user_id.
INSERT OR IGNORE INTO users (user_id, created_at, updated_at)
SELECT user_id, MIN(created_at), MIN(created_at) FROM keys WHERE user_id IS NOT NULL GROUP BY user_id;
INSERT OR IGNORE INTO teams (team_id, created_at, updated_at)
SELECT team_id, MIN(created_at), MIN(created_at) FROM keys WHERE team_id IS NOT NULL GROUP BY team_id;
