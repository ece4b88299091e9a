"""Admin operations (keys, users, teams, end users, budgets), shared by the HTTP API and the CLI."""
