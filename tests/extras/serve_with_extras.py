"""`chaos-mcp serve` over stdio with the prompts and resources registered, for the Inspector test
while build_server does not call register_extras itself (it is the same server otherwise)."""

from __future__ import annotations

from chaos_mcp.config import load_settings
from chaos_mcp.engine.core import Engine
from chaos_mcp.engine.journal import Journal
from chaos_mcp.extras import register_extras
from chaos_mcp.logs import configure_logging
from chaos_mcp.server import build_server


def main() -> None:
    settings = load_settings(None)
    configure_logging("WARNING", settings.secrets())
    server = build_server(settings)
    engines: list[Engine] = []

    def engine() -> Engine:
        if not engines:
            engines.append(Engine(settings, Journal(settings.journal.resolved_url())))
        return engines[0]

    register_extras(server, engine)
    server.run("stdio")


if __name__ == "__main__":
    main()
