"""No input freezes the server (issue 13): linear text passes, and abort_all while a maximum-size call runs.

    python bench/bench_bounds.py [--repeat 5]

1. Redaction of 1 MB of adversarial text (target < 50 ms), against the pre-issue-13 implementation on
   smaller inputs (it is quadratic, so 1 MB is extrapolated from 40,000 characters).
2. The design's placeholder check on 64 KiB of unclosed brackets, against the old single regex (cubic).
3. A real `chaos-mcp serve` over stdio: `abort_all` with a fault active, answered while another call is
   processing a maximum-size argument (a 4 MiB design whose every string is adversarial), against
   `abort_all` on an idle server. Target: under 1 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chaos_mcp.contract import MAX_MESSAGE_BYTES, MAX_STRING_CHARS, placeholder_in
from chaos_mcp.secrets import redact_text
from tests.e2e.rawstdio import RawStdio, line
from tests.helpers import valid_design
from tests.property.test_linear_text_passes import _OLD_PLACEHOLDERS
from tests.property.test_redaction import ADVERSARIAL, reference

SECRETS = frozenset({"s3cr3t-Pa55word-xyz", "another-secret-value"})


def best_and_median(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return min(times), statistics.median(times)


def redaction(repeat: int) -> None:
    print("| 1 MB of adversarial text | median | best | target |\n|---|---|---|---|")
    for name, text in ADVERSARIAL.items():
        best, median = best_and_median(lambda text=text: redact_text(text, SECRETS), repeat)
        print(f"| {name} | {median * 1000:.1f} ms | {best * 1000:.1f} ms | < 50 ms |")
    print("\n| old implementation, letters | time |\n|---|---|")
    last = 0.0
    for size in (10_000, 20_000, 40_000):
        best, _ = best_and_median(lambda size=size: reference("a" * size, SECRETS), 1)
        print(f"| {size:,} characters | {best:.2f} s |")
        last = best
    minutes = last * (1_000_000 / 40_000) ** 2 / 60
    print(f"| 1,000,000 characters (extrapolated, quadratic) | ≈ {minutes:.0f} min |")


def placeholders(repeat: int) -> None:
    print("\n| placeholder check, unclosed `[a` | time |\n|---|---|")
    text = "[a" * (MAX_STRING_CHARS // 2)
    _, median = best_and_median(lambda: placeholder_in(text), repeat)
    print(f"| new, {len(text):,} characters | {median * 1000:.1f} ms |")
    for size in (500, 1_000, 2_000):
        best, _ = best_and_median(lambda size=size: _OLD_PLACEHOLDERS.search("[a" * (size // 2)), 1)
        print(f"| old regex, {size:,} characters | {best:.2f} s |")


def heavy_call() -> bytes:
    """design_experiment as large as the bounds allow, every string a worst case for the old checks."""
    text = "[a" * (MAX_STRING_CHARS // 2)
    steps = MAX_MESSAGE_BYTES // (MAX_STRING_CHARS + 4)
    while True:
        arguments = valid_design(
            hypothesis="When " + text[:-6], rollback_plan=[text] * steps, system_state=text
        )
        params = {"name": "design_experiment", "arguments": arguments}
        body = line({"jsonrpc": "2.0", "id": "heavy", "method": "tools/call", "params": params})
        if len(body) <= MAX_MESSAGE_BYTES:
            return body
        steps -= 1


def abort_under_load(repeat: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "chaos.toml"
        config.write_text(
            f'[journal]\nurl = "sqlite:///{folder}/journal.sqlite3"\n\n'
            '[targets.schedule]\nkind = "schedule"\nenvironment = "test"\n'
        )
        env = {k: v for k, v in os.environ.items() if k != "CHAOS_MCP_CONFIG"} | {
            "CHAOS_MCP_STATE_DIR": folder
        }
        command = [sys.executable, "-m", "chaos_mcp.cli", "--config", str(config), "--log-level", "WARNING"]
        process = subprocess.Popen(
            [*command, "serve"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        peer = RawStdio(process)
        peer.initialize()
        heavy = heavy_call()
        idle: list[float] = []
        loaded: list[float] = []
        heavy_times: list[float] = []
        for round_ in range(repeat * 2):
            experiment_id = peer.call(f"d{round_}", "design_experiment", valid_design())["experiment_id"]
            peer.call(f"m{round_}", "measure_steady_state", {"experiment_id": experiment_id})
            inject = {"experiment_id": experiment_id, "environment": "test", "target_component": "schedule"}
            peer.call(f"i{round_}", "inject_failure", inject)
            under_load = round_ % 2 == 1
            began = time.perf_counter()
            if under_load:
                peer.send(heavy)
            peer.call(f"a{round_}", "abort_all", {"reason": "benchmark"}, within=60)
            (loaded if under_load else idle).append(time.perf_counter() - began)
            if under_load:
                answer = peer.answer_to("heavy", within=120)
                heavy_times.append(time.perf_counter() - began)
                assert "error" not in answer and answer["result"]["isError"], str(answer)[:300]
            subprocess.run([*command, "arm"], env=env, check=True, capture_output=True)
        peer.stdin.close()
        process.wait(timeout=30)
    print(f"\n| abort_all with a fault active ({repeat} rounds each) | median | worst | target |")
    print("|---|---|---|---|")
    print(f"| on an idle server | {statistics.median(idle) * 1000:.0f} ms | {max(idle) * 1000:.0f} ms | |")
    print(
        f"| while a {len(heavy) / 1024 / 1024:.1f} MiB design_experiment is processed | "
        f"{statistics.median(loaded) * 1000:.0f} ms | {max(loaded) * 1000:.0f} ms | < 1 s |"
    )
    print(
        f"| (that design_experiment's own answer: refused, every problem listed) | "
        f"{statistics.median(heavy_times) * 1000:.0f} ms | {max(heavy_times) * 1000:.0f} ms | |"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    redaction(options.repeat)
    placeholders(options.repeat)
    abort_under_load(options.repeat)
