"""Data chaos on a PostgreSQL schedule database: reference schema, mapping, loader, row images, validator.

Public surface (see docs/data-schema.md):

    schema.migrate(dsn) / schema.seed(dsn, program)        the reference schema and its synthetic data
    mapping.resolve(raw) / mapping.check_live(conn, m)     chaos.toml's mapping, checked against the database
    source.load_postgres_program(target) -> Program        the program, through the mapping
    validate.validate(conn, mapping) -> Report             what bad data the database holds now
    errors: DataError ⊃ MappingError, RestoreConflict
"""

from __future__ import annotations

from chaos_mcp.data.errors import DataError, MappingError, RestoreConflict

__all__ = ["DataError", "MappingError", "RestoreConflict"]
