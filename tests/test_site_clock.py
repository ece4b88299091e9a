"""The report's clock: its windows end just after the build moment, so a request logged in the
same second (even the same millisecond) as the build is in every table; SOURCE_DATE_EPOCH
keeps builds reproducible."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from proxy.logdb.record import RequestRecord, utc_timestamp
from sitegen.cli import main
from sitegen.data import Clock
from tests.site_fixtures import NOW, write_records


def test_windows_end_one_millisecond_after_the_build_moment() -> None:
    assert Clock.at(NOW).now == datetime(2025, 12, 31, 14, 30, 0, 1000, tzinfo=UTC)
    assert Clock.from_environment({"SOURCE_DATE_EPOCH": str(NOW)}) == Clock.at(NOW)
    # The wall clock keeps its fractions of a second (it was rounded down to the second).
    assert Clock.from_environment({}, wall=lambda: NOW + 0.7).now.microsecond == 701_000
    assert Clock.at(NOW + 0.7).epoch == NOW  # file times stay whole seconds


def _request(epoch: float, request_id: str) -> RequestRecord:
    return RequestRecord(timestamp=utc_timestamp(epoch), request_id=request_id,
                         endpoint="/v1/chat/completions", model="gpt-4o-mini", prompt_tokens=10,
                         completion_tokens=5, total_tokens=15, cost=0.001, latency=0.5,
                         upstream_latency=0.49, status_code=200, cost_status="priced")


def _rows(out: Path, table: str) -> list[dict]:
    return json.loads((out / "data" / f"{table}.json").read_text())["rows"]


@pytest.mark.parametrize("clock", ["source_date_epoch", "wall"])
def test_a_request_logged_in_the_second_of_the_build_is_in(
    clock: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "litellm.db"
    moment = NOW + (0.7 if clock == "wall" else 0)
    # An hour earlier, in the build's own second (with SOURCE_DATE_EPOCH: its very millisecond),
    # and just after the build (not yet happened: in no table).
    write_records(db, [_request(NOW - 3600, "earlier"), _request(moment - 0.4 if clock == "wall"
                                                                    else moment, "same-second"),
                       _request(moment + 0.2, "after")])
    if clock == "wall":
        monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
        monkeypatch.setattr(time, "time", lambda: moment)
    else:
        monkeypatch.setenv("SOURCE_DATE_EPOCH", str(NOW))
    out = tmp_path / "public"
    assert main(["build", "--db", str(db), "--out", str(out), "-q",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    assert _rows(out, "todays_stats")[0]["requests"] == 2
    assert [r["timestamp"][:19] for r in _rows(out, "recent_requests")] == [
        utc_timestamp(moment)[:19], utc_timestamp(NOW - 3600)[:19]]
    assert sum(r["requests_per_hour"] for r in _rows(out, "hourly_throughput")) == 2
