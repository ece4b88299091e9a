"""The OpenAI-compatible endpoints: request validation, plain and streamed relays, /v1/models."""
