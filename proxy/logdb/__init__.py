"""The request log: schema, migrations, and the batched writer thread."""
