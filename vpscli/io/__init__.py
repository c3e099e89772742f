"""Video and mask I/O, importable without the CLI."""
