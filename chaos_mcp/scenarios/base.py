"""Scenarios: the spec's catalogue of experiments, each turning a design into faults.

A scenario is a small class: its name, the experiment type and target kinds it fits, a
typed `Parameters` model (magnitudes with documented defaults and limits), the automatic
revert it performs, and `build()` which returns the faults to inject.
"""

from __future__ import annotations

import importlib
import pkgutil
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from chaos_mcp.config import Settings, Target
from chaos_mcp.faults.base import Fault

ExperimentType = Literal["infrastructure", "schedule", "data"]


class NoParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class ScenarioContext:
    experiment_id: str
    target_name: str
    target: Target
    settings: Settings
    parameters: BaseModel
    blast_radius: dict[str, Any]
    deadline: float
    duration: float


class Scenario(ABC):
    name: ClassVar[str]
    title: ClassVar[str]
    experiment_type: ClassVar[ExperimentType]
    target_kinds: ClassVar[frozenset[str]]
    purpose: ClassVar[str]
    Parameters: ClassVar[type[BaseModel]] = NoParameters
    mutates_data: ClassVar[bool] = False
    uses_proxy: ClassVar[bool] = False
    automatic_revert: ClassVar[str]

    @abstractmethod
    def build(self, ctx: ScenarioContext) -> list[Fault]: ...

    def check_target(self, target_name: str, target: Target) -> list[str]:
        """Problems that make this scenario impossible on this target (e.g. no proxy)."""
        return []

    def observe(self, ctx: ScenarioContext, faults: list[Fault]) -> dict[str, Any] | None:
        """What the system under test did about the fault (e.g. the repair it suggests); journaled."""
        return None

    def check_parameters(self, parameters: BaseModel, target_name: str, target: Target) -> list[str]:
        """Problems with these parameters on this target (limits from the target's config)."""
        return []

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "experiment_type": self.experiment_type,
            "target_kinds": sorted(self.target_kinds),
            "purpose": self.purpose,
            "automatic_revert": self.automatic_revert,
            "mutates_data": self.mutates_data,
            "uses_proxy": self.uses_proxy,
            "parameters": self.Parameters.model_json_schema(),
        }


_REGISTRY: dict[str, Scenario] = {}
S = TypeVar("S", bound=type[Scenario])


def register_scenario(cls: S) -> S:
    _REGISTRY[cls.name] = cls()
    return cls


def scenarios() -> dict[str, Scenario]:
    package = importlib.import_module("chaos_mcp.scenarios")
    for module in pkgutil.iter_modules(package.__path__):
        if not module.name.startswith("_") and module.name != "base":
            importlib.import_module(f"chaos_mcp.scenarios.{module.name}")
    return dict(sorted(_REGISTRY.items()))


DEFAULT_SCENARIO: dict[tuple[str, str], str] = {
    ("infrastructure", "postgres"): "db_connection_loss",
    ("infrastructure", "redis"): "redis_timeout",
    ("infrastructure", "http"): "api_latency",
    ("infrastructure", "process"): "memory_pressure",
    ("infrastructure", "tcp"): "network_latency",
    ("schedule", "schedule"): "n1_removal",
    ("data", "schedule"): "corrupt_assignment",
}
