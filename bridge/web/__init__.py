"""HTTP blueprints of the web process."""
