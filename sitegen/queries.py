"""Every SQL statement of the report, as named constants with :named parameters.

Time windows are half-open, `timestamp >= :start AND timestamp < :end`, with both bounds
computed from the build's clock (SOURCE_DATE_EPOCH or the wall clock), never SQL's 'now': the
same database and epoch give the same site. Comparing the raw `timestamp` text (not DATE(...))
keeps every windowed query a range scan of idx_request_log_time_cover.

Percentiles are nearest-rank: the value at rank ceil(p * n) in ascending order, with
ceil(p * n) written in integer arithmetic as (p100 * n + 99) / 100.

Latency percentiles (here, in datasette/metadata.yml and the p95 alert) are over the requests
that reached an upstream provider, `upstream_latency IS NOT NULL`: successes and upstream
failures (timeouts, provider errors, hang-ups after the call), not what the gateway refused
itself (400, 401, 403, 404, 413, 429), which would pull the percentiles toward 0. A log written
before upstream_latency existed counts every request: LATENCY_POPULATION's NATURAL LEFT JOIN
supplies the column (as 0) only where request_log lacks it; where it has it, the join is on
that column and keeps each row once, as it is.
"""

#: FROM and WHERE of the requests latency percentiles are taken over (see above).
LATENCY_POPULATION = "request_log NATURAL LEFT JOIN (SELECT 0 AS upstream_latency) AS guide_only"
REACHED_UPSTREAM = "upstream_latency IS NOT NULL"

# -- log-wide facts ------------------------------------------------------------------------

LOG_EXTENT = """
SELECT COUNT(*) AS requests, MIN(timestamp) AS first, MAX(timestamp) AS last
FROM request_log WHERE timestamp < :end
"""

# -- overview ------------------------------------------------------------------------------

PERIOD_TOTALS = """
SELECT COUNT(*) AS requests,
       COALESCE(SUM(total_tokens), 0) AS tokens,
       ROUND(COALESCE(SUM(cost), 0), 6) AS cost,
       COALESCE(SUM(status_code >= 400), 0) AS errors
FROM request_log
WHERE timestamp >= :start AND timestamp < :end
"""

#: How many requests of a window latency percentiles count, and the latency at one rank
#: among them, counted from the top (:offset = n - rank): SQLite's bounded sorter then keeps
#: the top 5 % of the rows, not 95 %.
LATENCY_COUNT = f"""
SELECT COUNT(*) AS n FROM {LATENCY_POPULATION}
WHERE timestamp >= :start AND timestamp < :end AND {REACHED_UPSTREAM}
"""
LATENCY_AT_RANK = f"""
SELECT latency FROM {LATENCY_POPULATION}
WHERE timestamp >= :start AND timestamp < :end AND {REACHED_UPSTREAM}
ORDER BY latency DESC LIMIT 1 OFFSET :offset
"""

#: The guide's dashboard.py "today" block, plus monitor.sh's errors in the last hour.
TODAYS_STATS = """
SELECT COUNT(*) AS requests,
       COALESCE(SUM(total_tokens), 0) AS tokens,
       ROUND(COALESCE(SUM(cost), 0), 6) AS cost,
       COALESCE(SUM(status_code >= 400), 0) AS errors,
       (SELECT COUNT(*) FROM request_log
         WHERE timestamp >= :hour_start AND timestamp < :end AND status_code >= 400)
         AS errors_last_hour
FROM request_log
WHERE timestamp >= :start AND timestamp < :end
"""

TODAYS_TOP_MODELS = """
SELECT model, COUNT(*) AS requests, ROUND(SUM(cost), 6) AS cost
FROM request_log
WHERE timestamp >= :start AND timestamp < :end
GROUP BY model
ORDER BY requests DESC, model
LIMIT 5
"""

TOP_MODELS = """
SELECT model,
       COUNT(*) AS requests,
       SUM(total_tokens) AS tokens,
       ROUND(SUM(cost), 6) AS cost,
       ROUND(100.0 * SUM(status_code >= 400) / COUNT(*), 2) AS error_rate
FROM request_log
WHERE timestamp >= :start AND timestamp < :end
GROUP BY model
ORDER BY requests DESC, model
LIMIT 5
"""

RECENT_REQUESTS = """
SELECT timestamp, model, total_tokens, cost
FROM request_log
WHERE timestamp < :end
ORDER BY timestamp DESC, id DESC
LIMIT 10
"""

# -- cost ----------------------------------------------------------------------------------

#: Calendar days from DATE(:start) to DATE(:end), zero-filled so a quiet day shows as $0.
DAILY_COST_TREND = """
WITH RECURSIVE days(date) AS (
    SELECT DATE(:start)
    UNION ALL SELECT DATE(date, '+1 day') FROM days WHERE date < DATE(:end)
), daily AS (
    SELECT DATE(timestamp) AS date, COUNT(*) AS requests, SUM(cost) AS cost
    FROM request_log
    WHERE timestamp >= :start AND timestamp < :end
    GROUP BY DATE(timestamp)
)
SELECT days.date, COALESCE(daily.requests, 0) AS requests,
       ROUND(COALESCE(daily.cost, 0), 6) AS daily_cost
FROM days LEFT JOIN daily USING (date)
ORDER BY days.date
"""

DAILY_COST_BY_MODEL = """
SELECT DATE(timestamp) AS date, model, COUNT(*) AS requests, ROUND(SUM(cost), 6) AS cost
FROM request_log
WHERE timestamp >= :start AND timestamp < :end
GROUP BY DATE(timestamp), model
ORDER BY date, model
"""

COST_BY_MODEL = """
SELECT model,
       COUNT(*) AS requests,
       SUM(prompt_tokens) AS prompt_tokens,
       SUM(completion_tokens) AS completion_tokens,
       ROUND(SUM(cost), 6) AS total_cost,
       ROUND(AVG(cost), 8) AS avg_cost
FROM request_log
WHERE timestamp >= :start AND timestamp < :end
GROUP BY model
ORDER BY total_cost DESC, model
"""

TOP_USERS_BY_COST = """
SELECT user_id,
       COUNT(*) AS requests,
       SUM(total_tokens) AS tokens,
       ROUND(SUM(cost), 6) AS total_cost
FROM request_log
WHERE timestamp >= :start AND timestamp < :end
GROUP BY user_id
ORDER BY total_cost DESC, user_id
LIMIT 25
"""

COST_BY_KEY = """
SELECT key_alias,
       COUNT(*) AS requests,
       SUM(total_tokens) AS tokens,
       ROUND(SUM(cost), 6) AS total_cost
FROM request_log
WHERE timestamp >= :start AND timestamp < :end
GROUP BY key_alias
ORDER BY total_cost DESC, key_alias
LIMIT 25
"""

COST_BY_TEAM = """
SELECT team_id,
       COUNT(*) AS requests,
       COUNT(DISTINCT key_hash) AS keys,
       SUM(total_tokens) AS tokens,
       ROUND(SUM(cost), 6) AS total_cost
FROM request_log
WHERE timestamp >= :start AND timestamp < :end
GROUP BY team_id
ORDER BY total_cost DESC, team_id
LIMIT 25
"""

#: The guide's query, bounded by the build clock. The unary + keeps the planner off the
#: timestamp index (a full scan plus sort at 1M rows) so it walks idx_request_log_cost instead.
MOST_EXPENSIVE_REQUESTS = """
SELECT timestamp, model, user_id, total_tokens, cost,
       substr(messages, 1, 100) AS request_preview
FROM request_log
WHERE +timestamp < :end
ORDER BY cost DESC, timestamp DESC, id DESC
LIMIT 20
"""

# -- usage ---------------------------------------------------------------------------------

USAGE_BY_MODEL = """
SELECT model,
       COUNT(*) AS requests,
       SUM(prompt_tokens) AS prompt_tokens,
       SUM(completion_tokens) AS completion_tokens,
       SUM(total_tokens) AS total_tokens,
       ROUND(SUM(cost), 6) AS total_cost
FROM request_log
WHERE timestamp >= :start AND timestamp < :end
GROUP BY model
ORDER BY total_cost DESC, model
"""

USAGE_BY_USER = """
SELECT user_id,
       COUNT(*) AS requests,
       SUM(total_tokens) AS total_tokens,
       ROUND(SUM(cost), 6) AS total_cost
FROM request_log
WHERE timestamp >= :start AND timestamp < :end
GROUP BY user_id
ORDER BY total_cost DESC, user_id
"""

USAGE_BY_KEY = """
SELECT key_alias,
       COUNT(*) AS requests,
       COUNT(DISTINCT user_id) AS users,
       SUM(total_tokens) AS total_tokens,
       ROUND(SUM(cost), 6) AS total_cost
FROM request_log
WHERE timestamp >= :start AND timestamp < :end
GROUP BY key_alias
ORDER BY requests DESC, key_alias
"""

TOKEN_EFFICIENCY = """
SELECT model,
       ROUND(AVG(prompt_tokens), 1) AS avg_input,
       ROUND(AVG(completion_tokens), 1) AS avg_output,
       ROUND(AVG(total_tokens), 1) AS avg_total,
       ROUND(1.0 * SUM(completion_tokens) / MAX(SUM(prompt_tokens), 1), 3) AS output_per_input
FROM request_log
WHERE timestamp >= :start AND timestamp < :end
GROUP BY model
ORDER BY model
"""

DAILY_TOKENS_BY_MODEL = """
SELECT DATE(timestamp) AS date, model,
       SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens,
       SUM(total_tokens) AS total_tokens
FROM request_log
WHERE timestamp >= :start AND timestamp < :end
GROUP BY DATE(timestamp), model
ORDER BY date, model
"""

# -- performance ---------------------------------------------------------------------------

LATENCY_BY_MODEL = """
SELECT model,
       COUNT(*) AS requests,
       ROUND(AVG(latency), 4) AS avg_latency,
       ROUND(MIN(latency), 4) AS min_latency,
       ROUND(MAX(latency), 4) AS max_latency
FROM request_log
WHERE timestamp >= :start AND timestamp < :end
GROUP BY model
ORDER BY avg_latency, model
"""

LATENCY_PERCENTILES = f"""
WITH ranked AS (
    SELECT model, latency,
           ROW_NUMBER() OVER (PARTITION BY model ORDER BY latency) AS rank,
           COUNT(*) OVER (PARTITION BY model) AS n
    FROM {LATENCY_POPULATION}
    WHERE timestamp >= :start AND timestamp < :end AND {REACHED_UPSTREAM}
)
SELECT model, n AS requests,
       ROUND(MAX(CASE WHEN rank = (50 * n + 99) / 100 THEN latency END), 4) AS p50,
       ROUND(MAX(CASE WHEN rank = (95 * n + 99) / 100 THEN latency END), 4) AS p95,
       ROUND(MAX(CASE WHEN rank = (99 * n + 99) / 100 THEN latency END), 4) AS p99
FROM ranked
GROUP BY model
ORDER BY model
"""

DAILY_LATENCY_PERCENTILES = f"""
WITH ranked AS (
    SELECT DATE(timestamp) AS date, model, latency,
           ROW_NUMBER() OVER (PARTITION BY DATE(timestamp), model ORDER BY latency) AS rank,
           COUNT(*) OVER (PARTITION BY DATE(timestamp), model) AS n
    FROM {LATENCY_POPULATION}
    WHERE timestamp >= :start AND timestamp < :end AND {REACHED_UPSTREAM}
)
SELECT date, model, n AS requests,
       ROUND(MAX(CASE WHEN rank = (50 * n + 99) / 100 THEN latency END), 4) AS p50,
       ROUND(MAX(CASE WHEN rank = (95 * n + 99) / 100 THEN latency END), 4) AS p95,
       ROUND(MAX(CASE WHEN rank = (99 * n + 99) / 100 THEN latency END), 4) AS p99
FROM ranked
GROUP BY date, model
ORDER BY date, model
"""

TTFT_BY_MODEL = """
WITH ranked AS (
    SELECT model, time_to_first_token AS ttft,
           ROW_NUMBER() OVER (PARTITION BY model ORDER BY time_to_first_token) AS rank,
           COUNT(*) OVER (PARTITION BY model) AS n
    FROM request_log
    WHERE timestamp >= :start AND timestamp < :end
      AND stream = 1 AND status_code < 400 AND time_to_first_token IS NOT NULL
)
SELECT model, n AS streams,
       ROUND(AVG(ttft), 4) AS avg_ttft,
       ROUND(MAX(CASE WHEN rank = (50 * n + 99) / 100 THEN ttft END), 4) AS p50_ttft,
       ROUND(MAX(CASE WHEN rank = (95 * n + 99) / 100 THEN ttft END), 4) AS p95_ttft
FROM ranked
GROUP BY model
ORDER BY model
"""

#: The guide's hourly throughput, zero-filled over the clock hours of the window.
HOURLY_THROUGHPUT = """
WITH RECURSIVE hours(hour) AS (
    SELECT strftime('%Y-%m-%d %H:00:00', :start)
    UNION ALL SELECT datetime(hour, '+1 hour') FROM hours
    WHERE datetime(hour, '+1 hour') < :end
), hourly AS (
    SELECT strftime('%Y-%m-%d %H:00:00', timestamp) AS hour,
           COUNT(*) AS requests, SUM(status_code >= 400) AS errors
    FROM request_log
    WHERE timestamp >= :start AND timestamp < :end
    GROUP BY hour
)
SELECT hours.hour, COALESCE(hourly.requests, 0) AS requests_per_hour,
       COALESCE(hourly.errors, 0) AS errors
FROM hours LEFT JOIN hourly USING (hour)
ORDER BY hours.hour
"""

#: The guide's request volume by hour of today, from 00 to the current hour.
REQUEST_VOLUME_BY_HOUR = """
WITH RECURSIVE hours(h) AS (
    SELECT 0 UNION ALL SELECT h + 1 FROM hours
    WHERE h < CAST(strftime('%H', :end, '-0.001 seconds') AS INTEGER)
), counted AS (
    SELECT CAST(strftime('%H', timestamp) AS INTEGER) AS h, COUNT(*) AS requests
    FROM request_log
    WHERE timestamp >= :start AND timestamp < :end
    GROUP BY h
)
SELECT printf('%02d', hours.h) AS hour, COALESCE(counted.requests, 0) AS requests
FROM hours LEFT JOIN counted USING (h)
ORDER BY hours.h
"""

# -- errors --------------------------------------------------------------------------------

ERROR_RATES = """
SELECT model,
       COUNT(*) AS total_requests,
       SUM(CASE WHEN status_code >= 400 THEN 1 ELSE 0 END) AS errors,
       ROUND(100.0 * SUM(CASE WHEN status_code >= 400 THEN 1 ELSE 0 END) / COUNT(*), 2)
         AS error_rate
FROM request_log
WHERE timestamp >= :start AND timestamp < :end
GROUP BY model
ORDER BY error_rate DESC, model
"""

STATUS_CODES_DAILY = """
SELECT DATE(timestamp) AS date, status_code, COUNT(*) AS requests
FROM request_log
WHERE timestamp >= :start AND timestamp < :end
GROUP BY DATE(timestamp), status_code
ORDER BY date, status_code
"""

ERROR_TYPES = """
SELECT error_type, status_code, COUNT(*) AS requests, MAX(timestamp) AS last_seen
FROM request_log
WHERE timestamp >= :start AND timestamp < :end AND status_code >= 400
GROUP BY error_type, status_code
ORDER BY requests DESC, error_type, status_code
"""

FAILED_REQUESTS = """
SELECT timestamp, model, user_id, status_code,
       substr(response, 1, 200) AS error_message
FROM request_log
WHERE status_code >= 400 AND timestamp < :end
ORDER BY timestamp DESC, id DESC
LIMIT :limit
"""

# -- pricing coverage ----------------------------------------------------------------------

COST_STATUS_SUMMARY = """
SELECT cost_status,
       COUNT(*) AS requests,
       SUM(total_tokens) AS tokens,
       SUM(tokens_estimated) AS estimated_token_requests,
       ROUND(SUM(cost), 6) AS cost
FROM request_log
WHERE timestamp >= :start AND timestamp < :end
GROUP BY cost_status
ORDER BY requests DESC, cost_status
"""

UNPRICED_MODELS = """
SELECT model,
       COUNT(*) AS requests,
       SUM(total_tokens) AS tokens,
       SUM(tokens_estimated) AS estimated_token_requests,
       MIN(timestamp) AS first_seen,
       MAX(timestamp) AS last_seen
FROM request_log
WHERE timestamp >= :start AND timestamp < :end AND cost_status = 'unpriced'
GROUP BY model
ORDER BY requests DESC, model
"""

ESTIMATED_TOKENS = """
SELECT model,
       COUNT(*) AS requests,
       SUM(total_tokens) AS estimated_tokens,
       ROUND(SUM(cost), 6) AS cost_from_estimates
FROM request_log
WHERE timestamp >= :start AND timestamp < :end AND tokens_estimated = 1
GROUP BY model
ORDER BY requests DESC, model
"""

#: Works on guide-only databases too: successful requests that used tokens but cost $0.
ZERO_COST_MODELS = """
SELECT model,
       COUNT(*) AS requests,
       SUM(total_tokens) AS tokens
FROM request_log
WHERE timestamp >= :start AND timestamp < :end
  AND status_code < 400 AND cost = 0 AND total_tokens > 0
GROUP BY model
ORDER BY requests DESC, model
"""
