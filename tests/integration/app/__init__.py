"""A small realistic application for the supervision tests: an HTTP API over PostgreSQL and Redis."""
