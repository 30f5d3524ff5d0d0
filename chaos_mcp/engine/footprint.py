"""An experiment's footprint: the physical resources its faults act on, and who else they serve.

Built at inject time from the faults the scenario would inject (each declares its reach) and the
targets' identities as the systems report them (chaos_mcp.resources). Admission holds these
resources in the journal and asks a person when an instance-wide fault would also reach a target
of another environment, or one outside the blast radius.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chaos_mcp.contract import ExperimentDesign
from chaos_mcp.engine.errors import EngineError
from chaos_mcp.engine.policy import Escalation, neighbour_escalations
from chaos_mcp.faults.base import FaultError
from chaos_mcp.resources import Identity, Resource, identify, identify_all, resource_for

if TYPE_CHECKING:
    from chaos_mcp.engine.core import Engine


@dataclass(frozen=True)
class Footprint:
    resources: list[Resource]
    escalations: list[Escalation]


async def footprint(engine: Engine, experiment_id: str, design: ExperimentDesign) -> Footprint:
    """Raises EngineError when a resource cannot be identified, PolicyRefusal when it must not be touched."""
    try:
        faults = engine._build_faults(experiment_id, design, time.time() + design.duration_s)
    except FaultError as exc:
        raise EngineError(f"the scenario cannot be built: {exc}. Nothing was injected.") from None
    reaches = list(dict.fromkeys(fault.reach for fault in faults))
    if all(reach == "host" for reach in reaches):
        return Footprint([], [])
    settings, name = engine.settings, design.target_component
    identities: dict[str, Identity]
    if "instance" in reaches:
        identities = await identify_all(settings)
    else:
        identities = {name: await identify(name, settings.targets[name], settings)}
    own = identities[name]
    resources: list[Resource] = []
    for reach in reaches:
        try:
            found = resource_for(own, reach)
        except LookupError as exc:
            raise EngineError(
                f"cannot tell which {reach} {design.scenario} would act on: {exc}. Nothing was injected; "
                "make the target reachable (list_targets shows each target's identity) and try again."
            ) from None
        if found is not None:
            resources.append(found)
    escalations: list[Escalation] = []
    if "instance" in reaches:
        escalations = neighbour_escalations(
            settings, name, design.environment, set(design.blast_radius.targets), own, identities
        )
    return Footprint(resources, escalations)
