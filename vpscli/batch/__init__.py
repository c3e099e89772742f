"""Archive-scale batches: manifests, shards, batch.json, and the Ray backend (optional extra)."""
