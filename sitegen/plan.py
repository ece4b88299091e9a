"""The site one build renders: the catalogue's tables and pages, plus a Breakdowns page with
a section per metadata key of `report.breakdowns` (the only part that depends on config)."""

from __future__ import annotations

from dataclasses import dataclass

from . import breakdowns
from .catalogue import PAGES, TABLES, Page, Section, TableDef
from .pages import ADMIN_PAGES, ADMIN_TABLES

BREAKDOWNS = Page(
    "breakdowns", "Breakdowns",
    "Requests, tokens, cost, errors and latency by the metadata keys clients tag requests with "
    "(LiteLLM's metadata, tags and the x-litellm-tags header), as named in report.breakdowns.",
    (Section("metadata_keys"),),
)


@dataclass(frozen=True)
class SitePlan:
    tables: tuple[TableDef, ...]
    pages: tuple[Page, ...]

    def charts(self) -> dict[str, str]:
        """chart name -> the table it draws."""
        return {s.chart: s.table for p in self.pages for s in p.sections if s.chart is not None}


def site_plan(keys: tuple[str, ...] = ()) -> SitePlan:
    extra, page = breakdowns.page(keys, BREAKDOWNS)
    pages = []
    for p in PAGES:
        pages.append(p)
        if p.slug == "usage":
            pages.append(page)
    pages.extend(ADMIN_PAGES)  # the guide's Models, API Keys and Logs sections (sitegen/pages/)
    return SitePlan(TABLES + (breakdowns.METADATA_KEYS_TABLE,) + extra + ADMIN_TABLES, tuple(pages))
