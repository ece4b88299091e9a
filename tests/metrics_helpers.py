"""Scraping /metrics and reading samples with prometheus-client's own parser; admin calls."""

from __future__ import annotations

from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from .conftest import MASTER_KEY, Gateway

Families = dict[str, list[Any]]


async def scrape_text(url: str, token: str | None = MASTER_KEY) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}/metrics", headers=headers) as resp:
            assert resp.status == 200, await resp.text()
            assert resp.headers["Content-Type"].startswith("text/plain")
            return await resp.text()


async def scrape(url: str, token: str | None = MASTER_KEY) -> Families:
    text = await scrape_text(url, token)
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def _family(sample_name: str) -> str:
    for suffix in ("_total", "_count", "_sum", "_bucket", "_created"):
        if sample_name.endswith(suffix):
            return sample_name[: -len(suffix)]
    return sample_name


def samples(families: Families, sample_name: str, **labels: str) -> list[Any]:
    """Samples named `sample_name` whose labels include `labels` (its family found by name)."""
    family = _family(sample_name)
    found = families.get(family, []) + (families.get(sample_name, []) if family != sample_name else [])
    return [
        s for s in found
        if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items())
    ]


def value(families: Families, sample_name: str, **labels: str) -> float:
    return sum(s.value for s in samples(families, sample_name, **labels))


def label_values(families: Families, sample_name: str, label: str) -> set[str]:
    return {s.labels.get(label, "") for s in samples(families, sample_name)}


async def post(gw: Gateway, path: str, body: dict[str, Any], token: str = MASTER_KEY) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{gw.url}{path}", json=body, headers={"Authorization": f"Bearer {token}"}) as resp:
            return resp.status, await resp.json()


async def new_key(gw: Gateway, **fields: Any) -> str:
    status, body = await post(gw, "/key/generate", fields)
    assert status == 200, body
    return body["key"]
