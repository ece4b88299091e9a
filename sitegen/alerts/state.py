"""Alert state between runs: a small JSON file beside the log database (never inside it: the
log is only ever written by the gateway).

    {"version": 1, "alerts": {"<ident>": {"rule", "status": "firing"|"resolved", "message",
      "value", "since", "last_notified", "resolved_at"}}}

Times are UTC 'YYYY-MM-DD HH:MM:SS'. Written atomically (temporary file + rename), so a crash
mid-write leaves the previous state. `active_alerts()` is what the report's overview shows.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import SitegenError

VERSION = 1
KEEP_RESOLVED = 7 * 86400  # resolved alerts stay listed this long, then are forgotten


class StateError(SitegenError):
    """The state file exists but cannot be read or written."""


@dataclass
class AlertRecord:
    rule: str
    status: str  # "firing" or "resolved"
    message: str
    value: float | None
    since: str
    last_notified: str | None = None
    resolved_at: str | None = None


def default_state_path(db: Path) -> Path:
    """`litellm.db` → `litellm-alerts.json` in the same folder."""
    return db.with_name(f"{db.stem}-alerts.json")


def stamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


def epoch(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def load(path: Path) -> dict[str, AlertRecord]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise StateError(f"{path}: cannot read the alert state ({exc}); fix or delete it") from None
    alerts = raw.get("alerts") if isinstance(raw, dict) else None
    if not isinstance(alerts, dict):
        raise StateError(f"{path}: not an alert state file (no 'alerts' mapping)")
    records = {}
    fields = set(AlertRecord.__dataclass_fields__)
    for ident, entry in alerts.items():
        if isinstance(entry, dict) and {"rule", "status", "message", "since"} <= set(entry):
            records[ident] = AlertRecord(**{k: v for k, v in entry.items() if k in fields})
    return records


def save(path: Path, records: dict[str, AlertRecord], now: float) -> None:
    keep = {
        ident: rec for ident, rec in sorted(records.items())
        if rec.status == "firing" or (epoch(rec.resolved_at) or now) > now - KEEP_RESOLVED
    }
    document = {"version": VERSION, "alerts": {k: asdict(v) for k, v in keep.items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=2, sort_keys=True)
            out.write("\n")
        os.replace(tmp, path)
    except OSError as exc:
        raise StateError(f"{path}: cannot write the alert state ({exc})") from None


def active_alerts(state_path: str | Path) -> list[dict[str, Any]]:
    """Firing alerts for the report's overview: [{ident, rule, message, value, since,
    last_notified}], oldest first. A missing or unreadable file means none."""
    try:
        records = load(Path(state_path))
    except StateError:
        return []
    active = [
        {"ident": ident, "rule": rec.rule, "message": rec.message, "value": rec.value,
         "since": rec.since, "last_notified": rec.last_notified}
        for ident, rec in records.items() if rec.status == "firing"
    ]
    return sorted(active, key=lambda a: (a["since"], a["ident"]))
