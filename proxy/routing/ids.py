"""Deployment ids: what /model/info, the metrics and the report call a deployment. Kept apart
from target.py (aiohttp, the price table) so the report can name deployments as the gateway
does without importing the gateway's request path."""

from __future__ import annotations

import hashlib
import json

from ..settings import Deployment
from .providers import public_api_base


def deployment_id(deployment: Deployment, seen: dict[str, int]) -> str:
    """model_info.id, else a stable hash of what the deployment is (never of its api_key), made
    unique among identical entries by their order: the same config gives the same ids."""
    if deployment.model_info.id:
        return str(deployment.model_info.id)
    params = deployment.litellm_params
    shape = json.dumps(
        [deployment.model_name, params.model, params.api_base and public_api_base(params.api_base),
         params.api_version],
        sort_keys=True,
    )
    digest = hashlib.sha256(shape.encode("utf-8")).hexdigest()
    count = seen.get(digest, 0)
    seen[digest] = count + 1
    if count:
        digest = hashlib.sha256(f"{digest}:{count}".encode()).hexdigest()
    return digest[:32]
