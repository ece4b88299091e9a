"""The static monitoring site: `python -m sitegen build` renders the request log into public/."""

__all__ = ["__version__"]
__version__ = "0.1.0"
