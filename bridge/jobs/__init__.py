"""Jobs of the worker process; each is a plain function doing one pass."""
