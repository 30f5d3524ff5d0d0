"""chaos-mcp: chaos experiments for AI agents, with the safety rules enforced by the server."""

__version__ = "0.1.0"
__all__ = ["__version__"]
