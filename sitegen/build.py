"""One build: read the log (SQL aggregates only), write the site to a temporary folder, swap."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .alerts.state import active_alerts
from .cache import locate
from .charts import chart_spec
from .data import Clock, Reader, Table, open_readonly
from .plan import site_plan
from .progress import Progress
from .publish import publish, staging
from .render import SiteContext, SiteWriter
from .sources import Sources


@dataclass(frozen=True)
class BuildOptions:
    db: Path
    out: Path
    title: str = "Shin Gateway"
    datasette_url: str | None = None
    alerts_state: Path | None = None  # `sitegen alerts` state file: firing alerts go on the overview
    sources: Sources = Sources()  # keys.db, the gateway budget, report.breakdowns
    cache_dir: Path | None = None  # the report cache's folder; None: this build only, in memory
    rollups: bool = True  # False: every table from the raw rows (--no-rollups)


@dataclass(frozen=True)
class BuildResult:
    rows: int
    pages: int
    charts: int
    tables: int
    files: int
    seconds: float


def build_site(options: BuildOptions, clock: Clock, progress: Progress) -> BuildResult:
    progress.stage(f"reading {options.db} (read-only), now = {clock.label}")
    plan = site_plan(options.sources.breakdowns)
    conn = open_readonly(options.db)
    try:
        cache = locate(conn, options.db, options.cache_dir) if options.cache_dir else None
        reader = Reader(conn, clock, sources=options.sources, cache=cache, rollups=options.rollups)
        extent = reader.extent()
        progress.stage(f"querying {len(plan.tables)} tables over {extent['requests']:,} logged requests")
        tables: dict[str, Table] = {}
        for i, spec in enumerate(plan.tables, 1):
            progress.step(i, len(plan.tables), spec.name)
            tables[spec.name] = reader.table(spec)
        reader.finish()
    finally:
        conn.close()

    charts = plan.charts()
    progress.stage(f"drawing {len(charts)} charts")
    specs = {
        name: chart_spec(name, tables[table], tables)
        for name, table in sorted(charts.items())
        if tables[table].recorded and tables[table].rows
    }

    context = SiteContext(
        title=options.title,
        generated=clock.label,
        extent=extent,
        pages=plan.pages,
        tables=tables,
        specs=specs,
        datasette_url=options.datasette_url,
        alerts=active_alerts(options.alerts_state) if options.alerts_state else [],
        notices=reader.notices,
    )
    with staging(options.out) as tmp:
        progress.stage(f"writing {len(plan.pages)} pages, data files and assets")
        writer = SiteWriter(tmp, context)
        writer.assets()
        for table in tables.values():
            writer.data(table)
        for name, spec in specs.items():
            writer.chart(name, spec)
        for page in plan.pages:
            writer.page(page)
            writer.files(page)
        progress.stage(f"publishing to {options.out}")
        publish(tmp, options.out, epoch=clock.epoch)

    return BuildResult(
        rows=int(extent["requests"]),  # type: ignore[call-overload]
        pages=len(plan.pages),
        charts=len(specs),
        tables=len(tables),
        files=len(context.written),
        seconds=progress.elapsed,
    )
