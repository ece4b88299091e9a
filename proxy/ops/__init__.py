"""Day-two operations on the gateway's SQLite files: backup, prune, retention, checkpoints."""
