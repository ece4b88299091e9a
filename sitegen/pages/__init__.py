"""The guide's Models, API Keys and Logs dashboard sections as report pages.

Each module holds its tables (computed from the log, keys.db and config.yaml, read-only);
the templates are models.html, keys.html and logs.html. Served by the gateway at /ui, the
Models and Keys pages also offer the admin actions (static/gateway.js and the *-actions.js);
opened from file:// or a static host they show none.
"""

from __future__ import annotations

from ..catalogue import Page, Section
from . import keys, logs, models

S = Section
ADMIN_TABLES = models.TABLES + keys.TABLES + logs.TABLES
ADMIN_PAGES = (
    Page("models", "Models", "Every model and deployment the gateway serves: where it runs, "
         "what it costs, whether it is on, and how it has been doing.", (
             S("model_deployments"), S("model_stats"), S("model_last_errors"),
         ), template="models.html", scripts=("gateway.js", "admin-tables.js", "models-actions.js")),
    Page("keys", "API Keys", "Virtual keys, users and teams: budgets, what is left, and use.", (
        S("virtual_keys"), S("users"), S("teams"),
    ), template="keys.html", scripts=("gateway.js", "admin-tables.js", "keys-actions.js")),
    Page("logs", "Logs", "The newest requests and errors: search, filter, open one, export what "
         "is shown.", (S("recent_requests_log"), S("recent_errors_log")),
         template="logs.html", scripts=("logs.js",), files=logs.files),
)
