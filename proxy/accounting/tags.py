"""A request's metadata and tags, merged into the JSON stored in request_log.metadata.

Clients tag requests the ways LiteLLM accepts: the body's `metadata` object (any keys, e.g.
`project`, `feature`), a `tags` list inside it, a top-level `tags` list, and the
`x-litellm-tags` header (comma-separated, spaces trimmed). All tags end up in one `tags` list,
first occurrence first, duplicates dropped, so the report and Datasette read one place.
Anything malformed is skipped rather than refused: tagging must never fail a request.
"""

from __future__ import annotations

import json
from typing import Any

TAGS_HEADER = "x-litellm-tags"
MAX_TAGS = 64
MAX_TAG_CHARS = 200


def _tag_list(value: Any) -> list[str]:
    if isinstance(value, str):  # a lone string is one tag (LiteLLM accepts only lists: be kind)
        value = [value]
    if not isinstance(value, list):
        return []
    tags = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            continue
        text = str(item).strip()[:MAX_TAG_CHARS]
        if text:
            tags.append(text)
    return tags


def merged_metadata(body: dict[str, Any] | None, tags_header: str | None) -> dict[str, Any] | None:
    """The body's metadata with every tag of the request under `tags`; None when there is none."""
    body = body or {}
    raw = body.get("metadata")
    if raw is None and not tags_header and "tags" not in body:
        return None  # the common request: nothing to merge
    if isinstance(raw, dict):
        metadata: dict[str, Any] = dict(raw)
    elif raw in (None, "", [], {}):
        metadata = {}
    else:
        metadata = {"metadata": raw}  # not LiteLLM's shape, but the client sent it: keep it
    tags: list[str] = []
    for source in (metadata.get("tags"), body.get("tags"),
                   (tags_header or "").split(",")):
        for tag in _tag_list(source):
            if tag not in tags and len(tags) < MAX_TAGS:
                tags.append(tag)
    if tags:
        metadata["tags"] = tags
    else:
        metadata.pop("tags", None)
    return metadata or None


def metadata_json(body: dict[str, Any] | None, tags_header: str | None) -> str | None:
    """The request_log.metadata text: sorted keys, so equal metadata is equal text."""
    metadata = merged_metadata(body, tags_header)
    if metadata is None:
        return None
    try:
        return json.dumps(metadata, sort_keys=True, default=str)
    except (ValueError, RecursionError):  # nested too deeply to write back: keep the tags
        tags = metadata.get("tags")
        return json.dumps({"tags": tags}) if tags else None
