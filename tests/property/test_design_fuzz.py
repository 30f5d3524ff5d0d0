"""2,000+ generated argument sets at design_experiment: a plan or a validation error, nothing else."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client

from chaos_mcp.config import JournalSettings
from chaos_mcp.contract import DesignExperimentInput
from chaos_mcp.server import build_server
from tests.e2e.conftest import result_text
from tests.helpers import SECRET_PASSWORD, multi_target_settings, valid_design

FIELDS = list(DesignExperimentInput.model_fields)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(
        [
            "TBD",
            "N/A",
            "[failure condition]",
            "30s",
            "PT5M",
            "11 minutes",
            "test",
            "staging",
            "production",
            "db",
            "cache",
            "api",
            "schedule",
            "infrastructure",
            "data",
            "When x fails, the api should degrade gracefully.",
            "error_rate > 50%",
            SECRET_PASSWORD,
            "n1_removal",
            "api_latency",
            "redis_timeout",
            "db_connection_loss",
        ]
    ),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(
                [
                    "scope",
                    "targets",
                    "max_rows",
                    "routes",
                    "metric",
                    "op",
                    "threshold",
                    "unit",
                    "faculty",
                    "x",
                ]
            ),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=10,
)
arguments = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=len(FIELDS)),
    st.builds(
        lambda base, overrides: {**base, **overrides},
        st.just(valid_design(dry_run=True)),
        st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=3),
    ),
)


@pytest.fixture(scope="module")
def portal_client() -> Iterator[tuple[BlockingPortal, Client]]:
    folder = Path(tempfile.mkdtemp(prefix="chaos-fuzz-"))
    server_settings = multi_target_settings().model_copy(
        update={"journal": JournalSettings(url=f"sqlite:///{folder / 'journal.sqlite3'}")}
    )
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(Client(build_server(server_settings), mode="legacy")) as client,
    ):
        yield portal, client


@settings(
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(args=arguments)
def test_every_answer_is_a_plan_or_a_validation_error(
    portal_client: tuple[BlockingPortal, Client], args: dict[str, Any]
) -> None:
    portal, client = portal_client
    result = portal.call(client.call_tool, "design_experiment", args)
    text = result_text(result)
    assert "Traceback" not in text and "failed unexpectedly" not in text
    assert SECRET_PASSWORD not in text
    if result.is_error:
        assert "design_experiment refused:" in text and "\n- " in text
    else:
        assert result.structured_content is not None and result.structured_content["faults"]
