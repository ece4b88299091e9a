"""The report's explanations, computed from SQL aggregates: why cost moved (decomposition),
what is unusual (anomalies), where the month and each budget are heading (forecast, budgets),
how fast models stream and what the gateway itself adds (speed).

Each module exposes `compute` functions with the signature `(reader, spec, bounds) -> rows` that
catalogue.py registers as tables; they read the log only through `reader.query` (read-only).
"""
