-- Which model group answered (after model_group_alias, wildcards and fallbacks) and how many
-- upstream calls the request took (other deployments and fallback models each count one).
ALTER TABLE request_log ADD COLUMN model_group TEXT;
ALTER TABLE request_log ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
