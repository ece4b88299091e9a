"""Which upstream serves a request, and the calls to it."""
