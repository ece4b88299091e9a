"""The static monitoring site: `python -m sitegen build` renders the request log into public/."""

from proxy import __version__  # one version for the whole project

__all__ = ["__version__"]
