"""Writing the site into a folder: pages (Jinja2), data files (CSV, JSON), chart specs, assets.

All request text reaches the HTML through Jinja's autoescape, and the embedded chart specs
through `safe_json`, which escapes <, > and & (as Jinja's tojson does) so no string from a
request can close the <script> element holding it.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import jinja2
from markupsafe import Markup

from proxy.resources import data_path

from .analysis import decomposition, forecast, speed
from .catalogue import Column, Page, Section
from .data import Table

MARKER = ".shin-report"
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "'": "\\u0027"}
#: Longer tables show this many rows, the rest behind a "Show all" button (site.js); without
#: JavaScript, and in print, every row shows.
FOLD_AFTER = 10
# Spreadsheets run cells starting with these as formulas: prefix such text with a quote.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def dumps(value: object) -> str:
    """Deterministic JSON: sorted keys, ASCII only (U+2028 and friends escaped too)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=True, separators=(",", ":"))


def safe_json(value: object) -> Markup:
    text = dumps(value)
    for char, escaped in _JSON_ESCAPES.items():
        text = text.replace(char, escaped)
    return Markup(text)


def cell(value: object, kind: str = "text") -> str:
    """A value as shown in an HTML table (the CSV and JSON keep the raw value)."""
    if value is None:
        return "(not set)" if kind == "label" else "—"
    if kind == "usd_delta":
        amount = float(value)  # type: ignore[arg-type]
        sign = "+" if amount > 0 else "−" if amount < 0 else "±"
        return sign + cell(abs(amount), "usd")
    if kind == "ms":
        return f"{float(value) * 1000:,.1f} ms"  # type: ignore[arg-type]
    if kind == "int":
        return f"{int(value):,}"  # type: ignore[call-overload]
    if kind == "usd":
        amount = float(value)  # type: ignore[arg-type]
        if amount < 0:
            return "−" + cell(-amount, "usd")
        return f"${amount:,.2f}" if amount >= 1 or amount == 0 else f"${amount:,.4f}"
    if kind == "sec":
        return f"{float(value):.3f} s"  # type: ignore[arg-type]
    if kind == "pct":
        return f"{float(value):.2f}%"  # type: ignore[arg-type]
    if kind == "num":
        return f"{float(value):,.2f}"  # type: ignore[arg-type]
    if kind == "change":
        number = float(value)  # type: ignore[arg-type]
        return f"{'+' if number > 0 else '−' if number < 0 else '±'}{abs(number):.1f}%"
    return str(value)


def csv_text(table: Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    keys = [c.key for c in table.spec.columns]
    writer.writerow(keys)
    for row in table.rows:
        values = []
        for key in keys:
            value = row.get(key)
            if value is None:
                value = ""
            elif isinstance(value, str) and value.startswith(_FORMULA_START):
                value = "'" + value
            values.append(value)
        writer.writerow(values)
    return out.getvalue()


def json_document(table: Table) -> dict[str, object]:
    spec = table.spec
    return {
        "name": spec.name,
        "title": spec.title,
        "window": {"label": spec.window.label, "start": table.start, "end": table.end},
        "columns": [c.key for c in spec.columns],
        "recorded": table.recorded,
        "missing_columns": list(table.missing),
        **({"unavailable": table.unavailable} if table.unavailable else {}),
        # Keys starting with "_" are a page's own (e.g. the Logs page's request details).
        "rows": [{k: v for k, v in row.items() if not k.startswith("_")} for row in table.rows],
    }


#: Tables whose section opens with a sentence computed from their rows.
LEADS: dict[str, Callable[[list[dict[str, object]]], str]] = {
    "gateway_overhead": speed.overhead_summary,
    "month_forecast": forecast.summary,
}


@dataclass
class SiteContext:
    """Everything the templates need besides the page itself."""

    title: str
    generated: str
    extent: dict[str, object]
    pages: tuple[Page, ...]
    tables: dict[str, Table]
    specs: dict[str, dict[str, object]]
    datasette_url: str | None = None
    alerts: list[dict[str, object]] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # how the tables were read (data.Reader)

    def columns(self, table: str, keys: list[str]) -> list[Column]:
        """Some of a table's columns, in the order given."""
        by_key = {c.key: c for c in self.tables[table].spec.columns}
        return [by_key[k] for k in keys]

    def lead(self, table: Table) -> str:
        """The sentence a table's section opens with, if it has one (LEADS)."""
        explain = LEADS.get(table.name)
        return explain(table.rows) if explain and table.rows else ""

    def datasette_link(self, table: Table) -> str | None:
        """The guide's canned query for this table, else the table's own SQL with the same
        window, as an ad-hoc Datasette query (it binds :named parameters from the URL)."""
        if not self.datasette_url:
            return None
        base = f"{self.datasette_url.rstrip('/')}/litellm"
        name = table.spec.datasette
        if name:
            days = table.spec.window.days
            params = {**table.spec.datasette_params, **({"days": days} if days is not None else {})}
            query = f"?{urlencode(params)}" if params else ""
            return f"{base}/{name}{query}"
        if table.spec.name == "period_summary" or table.spec.compute is not None:
            return None  # assembled from several queries or computed (data.Reader, analysis/)
        values = {"start": table.start, "end": table.end, **table.spec.params}
        params = {k: v for k, v in values.items() if f":{k}" in table.spec.sql}
        return f"{base}?{urlencode({'sql': table.spec.sql.strip(), **params})}"


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(data_path("site_templates"))),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["cell"] = cell
    env.filters["safe_json"] = safe_json
    env.filters["explain_cost"] = decomposition.explain
    env.filters["overhead_summary"] = speed.overhead_summary
    env.globals["FOLD_AFTER"] = FOLD_AFTER
    return env


class SiteWriter:
    def __init__(self, root: Path, context: SiteContext) -> None:
        self.root = root
        self.context = context
        self.env = environment()

    def _write(self, relative: str, text: str) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
        self.context.written.append(path)

    def page(self, page: Page) -> None:
        template = self.env.get_template("index.html" if page.slug == "index" else page.template)
        sections: list[tuple[Section, Table]] = [
            (s, self.context.tables[s.table]) for s in page.sections
        ]
        html = template.render(site=self.context, page=page, sections=sections)
        self._write(page.filename, html)

    def data(self, table: Table) -> None:
        if not table.recorded:
            return
        self._write(f"data/{table.name}.csv", csv_text(table))
        self._write(f"data/{table.name}.json", dumps(json_document(table)) + "\n")

    def files(self, page: Page) -> None:
        """A page's own data files (Page.files)."""
        if page.files is not None:
            for relative, text in page.files(self.context.tables, self.context.datasette_url).items():
                self._write(relative, text)

    def chart(self, name: str, spec: dict[str, object]) -> None:
        self._write(f"data/chart-{name}.vl.json", dumps(spec) + "\n")

    def assets(self) -> None:
        source = data_path("site_templates", "static")
        for path in sorted(source.rglob("*")):
            if path.is_file():
                target = self.root / "assets" / path.relative_to(source)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
                self.context.written.append(target)
        self._write(MARKER, "A site built by shin-report (python -m sitegen build).\n")
