"""The Logs page: the newest requests (report.logs_rows) and, besides, the newest errors, as data
for the page's search, filters, export and request view (site_templates/static/logs.js).

Both lists are read newest first by index (the timestamp index, and the partial index of
failed requests), so the cost does not grow with the log. The page loads its data as scripts
beside it, not with fetch(), which browsers refuse from file://:

  data/logs.js               window.shinLogs = {rows: [...], ...}: one summary per request
  data/logs/detail-<n>.js    shinLogs.detail(<n>, {...}): the full stored request, response,
                             tokens, pricing and latency split of 200 requests, loaded when
                             one of them is opened

All text is JSON with <, >, & and ' escaped. No key or key hash is written; an api_base is shown
without credentials or query.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from proxy.routing.providers import public_api_base

from ..catalogue import Column, TableDef, Window
from ..render import safe_json

if TYPE_CHECKING:
    from ..data import Reader, Table

C = Column
CHUNK = 200
PREVIEW = 200
#: Summary fields, in the order the page and its exports show them (when the log has them).
SUMMARY = ("id", "timestamp", "model", "user_id", "key_alias", "team_id", "status_code", "stream",
           "prompt_tokens", "completion_tokens", "total_tokens", "cost", "latency", "error_type",
           "request_id", "endpoint")
DETAIL = ("messages", "response", "cached_tokens", "reasoning_tokens", "tokens_estimated",
          "cost_status", "upstream_latency", "time_to_first_token", "provider", "upstream_model",
          "model_group", "api_base", "attempts", "metadata", "host")
NEWEST = "SELECT {columns} FROM request_log WHERE timestamp < :end ORDER BY timestamp DESC LIMIT :n"
NEWEST_ERRORS = """
SELECT {columns} FROM request_log WHERE status_code >= 400 AND timestamp < :end
ORDER BY timestamp DESC LIMIT :n
"""
HOW_PRICED = {
    "priced": "genai-prices' price for the upstream model × the tokens",
    "config": "config.yaml's input_cost_per_token/output_cost_per_token × the tokens",
    "unpriced": "no price known for this model: logged as $0",
    "none": "no usage to price (the request failed or was refused)",
}


def _columns(reader: Reader, names: tuple[str, ...]) -> list[str]:
    return [c for c in names if c in reader.columns]


def _read(reader: Reader, sql: str, bounds: dict[str, str]) -> list[dict[str, object]]:
    columns = ", ".join(_columns(reader, SUMMARY + DETAIL))
    return reader.query(sql.format(columns=columns), {"end": bounds["end"], "n": reader.sources.logs_rows})


def _summary(row: dict[str, Any]) -> dict[str, object]:
    out = {k: row.get(k) for k in SUMMARY}
    out["timestamp"] = str(row["timestamp"])[:23]
    out["stream"] = bool(row.get("stream"))
    out["prompt"] = _preview(_prompt_text(row.get("messages")))
    out["answer"] = _preview(row.get("response"))
    return out


def _preview(text: object) -> str | None:
    if text is None:
        return None
    text = " ".join(str(text).split())
    return text if len(text) <= PREVIEW else text[:PREVIEW] + "…"


def _prompt_text(messages: object) -> str | None:
    """The last user message's text (what a search for a prompt looks for), else the raw JSON."""
    if not isinstance(messages, str):
        return None
    try:
        parsed = json.loads(messages)
    except ValueError:
        return messages
    if isinstance(parsed, list):
        for message in reversed(parsed):
            if isinstance(message, dict) and message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, list):
                    content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
                return str(content)
    return messages


def recent_rows(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> list[dict[str, object]]:
    return [_with_detail(r) for r in _read(reader, NEWEST, bounds)]


def error_rows(reader: Reader, spec: TableDef, bounds: dict[str, str]) -> list[dict[str, object]]:
    return [_with_detail(r) for r in _read(reader, NEWEST_ERRORS, bounds)]


def _with_detail(row: dict[str, Any]) -> dict[str, object]:
    out = _summary(row)
    out["_detail"] = _detail(row)  # kept out of the CSV/JSON (not a column), written by files()
    return out


def _detail(row: dict[str, Any]) -> dict[str, object]:
    detail = {k: row.get(k) for k in DETAIL if k in row}
    if detail.get("api_base"):
        detail["api_base"] = public_api_base(str(detail["api_base"]))
    latency, upstream = row.get("latency"), row.get("upstream_latency")
    detail["gateway_latency"] = (round(float(latency) - float(upstream), 6)
                                 if latency is not None and upstream is not None else None)
    status = row.get("cost_status")
    detail["how_priced"] = HOW_PRICED.get(str(status), None) if status else None
    if row.get("tokens_estimated"):
        detail["how_priced"] = (detail["how_priced"] or "") + " (tokens counted by the gateway: the upstream reported no usage)"
    return detail


def files(tables: dict[str, Table], datasette_url: str | None) -> dict[str, str]:
    """data/logs.js and its detail chunks, from the two tables."""
    merged: dict[object, dict[str, object]] = {}
    for name in ("recent_requests_log", "recent_errors_log"):
        table = tables.get(name)
        for row in table.rows if table is not None else []:
            merged.setdefault(row["id"], row)
    rows = sorted(merged.values(), key=lambda r: (str(r["timestamp"]), int(r["id"])), reverse=True)  # type: ignore[call-overload]
    out: dict[str, str] = {}
    summaries = []
    for i, row in enumerate(rows):
        summaries.append({k: v for k, v in row.items() if k != "_detail"} | {"chunk": i // CHUNK})
    for start in range(0, len(rows), CHUNK):
        chunk = {str(r["id"]): r["_detail"] for r in rows[start:start + CHUNK]}
        out[f"data/logs/detail-{start // CHUNK}.js"] = (
            f"window.shinLogs.detail({start // CHUNK}, {safe_json(chunk)});\n")
    recent = tables.get("recent_requests_log")
    meta = {
        "rows": summaries,
        "fields": list(SUMMARY) + ["prompt", "answer"],
        "datasette": f"{datasette_url.rstrip('/')}/litellm/request_log/" if datasette_url else None,
        "end": recent.end if recent is not None else None,
    }
    out["data/logs.js"] = f"window.shinLogs = {safe_json(meta)};\n"
    return out


LIST_COLUMNS = (
    C("timestamp", "Time (UTC)", "ts"), C("model", "Model"), C("user_id", "User", "label"),
    C("key_alias", "Key", "label"), C("status_code", "Status", "code"),
    C("total_tokens", "Tokens", "int"), C("cost", "Cost", "usd"), C("latency", "Latency", "sec"),
    C("request_id", "Request id", "label"), C("prompt", "Prompt (first 200 characters)", "label"),
    C("answer", "Response or error (first 200 characters)", "label"),
)
TABLES = (
    TableDef("recent_requests_log", "Recent requests", "", LIST_COLUMNS, Window("all"),
             compute=recent_rows, show_rows=50),
    TableDef("recent_errors_log", "Recent errors", "", LIST_COLUMNS, Window("all"),
             compute=error_rows, show_rows=50, empty="No failed requests logged."),
)
