"""What a `--workers` worker knows about its place: `app[WORKER]` (absent in a single process)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: Inside the supervisor's private run directory (created fresh, removed at exit).
METRICS_DIR = "metrics"
LIMITS_DB = "limits.db"


@dataclass(frozen=True)
class WorkerInfo:
    index: int  # 1..count; a restarted worker keeps its index
    count: int
    run_dir: Path

    @property
    def primary(self) -> bool:
        """Worker 1 alone runs what must run once per gateway: retention prunes, WAL
        checkpoints and budget alerts (the others would repeat them)."""
        return self.index == 1

    @property
    def metrics_dir(self) -> Path:
        return self.run_dir / METRICS_DIR

    @property
    def limits_path(self) -> Path:
        return self.run_dir / LIMITS_DB
