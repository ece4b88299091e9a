"""Shin Gateway: an OpenAI-compatible LLM gateway that logs every request to SQLite."""

__version__ = "0.1.0"
