"""Open ELMS progress bridge: e-learning events in, Open ELMS progress out."""

__version__ = "0.1.0"
