"""Faults: one module per family, each a small class with inject / revert / verify."""

from chaos_mcp.faults.base import Fault, FaultError, fault_from_record, register_fault, registered_fault_kinds

__all__ = ["Fault", "FaultError", "fault_from_record", "register_fault", "registered_fault_kinds"]
