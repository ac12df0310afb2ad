"""Read-model queries, one module per resource; each returns conda-store-shaped dicts."""
