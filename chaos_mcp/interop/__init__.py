"""Interoperability with other chaos tools (Chaos Toolkit)."""

from chaos_mcp.interop.chaostoolkit import export_experiment, export_journal

__all__ = ["export_experiment", "export_journal"]
