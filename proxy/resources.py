"""The files the programs read beside their code: the example config.yaml, the report's
templates and assets (site_templates/) and Datasette's metadata and plugins (datasette/).

They live at the top of the checkout and ship in the wheel as the data-only package
`shin_gateway` (see setup.py), so they are found through the import system wherever the code
runs from: site-packages/shin_gateway/ after `pip install .`, the checkout itself after
`pip install -e .` — never as a path relative to this file.

`importlib.resources.files()` cannot be used here: `shin_gateway` has no __init__.py (the
top of the checkout cannot have one), and for such a namespace package in an editable install
setuptools puts a placeholder beside the real folder in its __path__, which
`files()` rejects ("MultiplexedPath only supports directories", Python 3.11 to 3.13). The
package's own search path, which `files()` reads too, is asked directly instead.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

#: The wheel's name for the checkout's top level (its data files only).
DATA_PACKAGE = "shin_gateway"


class MissingResource(FileNotFoundError):
    """A file the wheel should carry is not installed (a broken or partial installation)."""


def data_path(*parts: str) -> Path:
    """The installed file or folder `parts` (e.g. "site_templates", "static") of shin_gateway."""
    spec = importlib.util.find_spec(DATA_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location, *parts)
        if candidate.exists():
            return candidate
    raise MissingResource(
        f"{'/'.join(parts)} not found in {DATA_PACKAGE} ({', '.join(locations) or 'not installed'}):"
        " reinstall shin-gateway"
    )


def example_config() -> str:
    """The commented example config.yaml (`shin-proxy example-config` prints it)."""
    return data_path("config.yaml").read_text(encoding="utf-8")
