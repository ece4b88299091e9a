-- Columns beyond the guide's. ALTER (not a new CREATE) so older guide-only databases gain them.
ALTER TABLE request_log ADD COLUMN request_id TEXT;
ALTER TABLE request_log ADD COLUMN endpoint TEXT;            -- e.g. /v1/chat/completions
ALTER TABLE request_log ADD COLUMN stream INTEGER NOT NULL DEFAULT 0;
ALTER TABLE request_log ADD COLUMN key_hash TEXT;            -- SHA-256 of the virtual key; never the key
ALTER TABLE request_log ADD COLUMN key_alias TEXT;
ALTER TABLE request_log ADD COLUMN team_id TEXT;
ALTER TABLE request_log ADD COLUMN provider TEXT;            -- e.g. openai, azure, ollama
ALTER TABLE request_log ADD COLUMN upstream_model TEXT;      -- litellm_params.model
ALTER TABLE request_log ADD COLUMN api_base TEXT;
ALTER TABLE request_log ADD COLUMN time_to_first_token REAL; -- seconds; streams only
ALTER TABLE request_log ADD COLUMN upstream_latency REAL;    -- seconds spent waiting on the upstream
ALTER TABLE request_log ADD COLUMN error_type TEXT;          -- OpenAI error type, NULL on success
ALTER TABLE request_log ADD COLUMN cached_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE request_log ADD COLUMN reasoning_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE request_log ADD COLUMN tokens_estimated INTEGER NOT NULL DEFAULT 0; -- 1: upstream gave no usage
ALTER TABLE request_log ADD COLUMN cost_status TEXT NOT NULL DEFAULT 'priced';  -- priced|config|unpriced|none
ALTER TABLE request_log ADD COLUMN client_ip TEXT;
ALTER TABLE request_log ADD COLUMN metadata TEXT;            -- JSON: tags/metadata sent by the client

-- Serves every time-windowed GROUP BY of the report and the guide without touching the table.
CREATE INDEX IF NOT EXISTS idx_request_log_time_cover ON request_log (
    timestamp, model, user_id, key_alias, status_code,
    prompt_tokens, completion_tokens, total_tokens, cost, latency
);
CREATE INDEX IF NOT EXISTS idx_request_log_cost ON request_log (cost);
CREATE INDEX IF NOT EXISTS idx_request_log_failed ON request_log (timestamp) WHERE status_code >= 400;
CREATE INDEX IF NOT EXISTS idx_request_log_request_id ON request_log (request_id);
CREATE INDEX IF NOT EXISTS idx_request_log_key_hash ON request_log (key_hash, timestamp);
