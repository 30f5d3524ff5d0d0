"""Fault records name their family, so a process reverting one fault imports only that family."""

from __future__ import annotations

import json
import subprocess
import sys

from chaos_mcp.faults.base import fault_from_record
from chaos_mcp.faults.process import MemoryBallast

_PROBE = """
import json, sys
from chaos_mcp.faults.base import fault_from_record
fault = fault_from_record(json.loads(sys.argv[1]))
loaded = sorted(m for m in sys.modules if m.startswith("chaos_mcp.faults.") and m.count(".") == 2)
print(json.dumps({"kind": fault.kind, "loaded": loaded}))
"""


def _ballast() -> MemoryBallast:
    return MemoryBallast(size_mb=8, expires_at=0.0, tag="ballast-test")


def test_a_record_carries_its_module_and_round_trips() -> None:
    record = _ballast().to_record()
    assert record["module"] == "chaos_mcp.faults.process"
    assert fault_from_record(record) == _ballast()


def test_a_fresh_process_imports_only_the_family_of_the_record() -> None:
    record = json.dumps(_ballast().to_record())
    out = subprocess.run([sys.executable, "-c", _PROBE, record], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert result["kind"] == "process.memory_ballast"
    assert "chaos_mcp.faults.process" in result["loaded"]
    assert not {"chaos_mcp.faults.redis", "chaos_mcp.faults.postgres", "chaos_mcp.faults.network"} & set(
        result["loaded"]
    )


def test_a_record_written_before_records_named_their_module_still_loads() -> None:
    record = _ballast().to_record()
    del record["module"]
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(record)], capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout)["kind"] == "process.memory_ballast"
