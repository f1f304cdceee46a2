"""Operations an operator runs, shared by the CLI and the admin API.

Each module holds one resource: its marshmallow schemas and the functions
that read or change it. A function takes the :class:`~bridge.store.db.Store`
(and the settings where a rule depends on them), checks its input with the
resource's schema, returns JSON-ready dicts and raises only from the
:class:`~bridge.errors.AdminError` family. Neither the CLI nor the API opens
a session of its own, so both give the same answers and the same errors.
"""
