-- The guide's table, exactly: user scripts and the guide's SQL rely on these names and units.
-- IF NOT EXISTS so a database written by an older gateway (guide columns only) is adopted as is.
CREATE TABLE IF NOT EXISTS request_log (
    id INTEGER PRIMARY KEY,
    timestamp TEXT NOT NULL,                      -- request start, UTC 'YYYY-MM-DD HH:MM:SS.fff'
    user_id TEXT,
    model TEXT NOT NULL DEFAULT '',               -- model_name the client asked for
    messages TEXT,                                -- request messages/input as JSON
    response TEXT,                                -- response text, or the error message returned
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    total_tokens INTEGER NOT NULL DEFAULT 0,
    cost REAL NOT NULL DEFAULT 0,                 -- USD
    latency REAL NOT NULL DEFAULT 0,              -- seconds, received to last byte sent
    status_code INTEGER NOT NULL DEFAULT 0        -- HTTP status returned to the client
);
