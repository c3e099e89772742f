"""One module per ``vps`` subcommand; each exposes ``register(app)``."""
