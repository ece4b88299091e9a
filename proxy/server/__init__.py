"""The HTTP server: the app factory, the error middleware, authentication, /health, /metrics, /ui."""
