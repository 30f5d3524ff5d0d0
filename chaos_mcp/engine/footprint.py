"""An experiment's footprint: the physical resources its faults act on, and who else they serve.

Built at inject time from the faults the scenario would inject (each declares its reach) and the
targets' identities as the systems report them (chaos_mcp.resources). Admission holds these
resources in the journal and asks a person when an instance-wide fault would also reach a target
of another environment, or one outside the blast radius.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from chaos_mcp.config import Settings
from chaos_mcp.contract import ExperimentDesign
from chaos_mcp.engine.errors import EngineError
from chaos_mcp.engine.journal import RESOURCE_PREFIX, Journal
from chaos_mcp.engine.policy import Escalation, PolicyRefusal, neighbour_escalations
from chaos_mcp.faults.base import FaultError, Reach
from chaos_mcp.resources import (
    Identity,
    Resource,
    identify,
    identify_all,
    overlaps,
    resource_for,
)
from chaos_mcp.secrets import redact_text

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
    if set(reaches) <= {"host", "working_copy"}:  # a working copy is the target's own, nobody else's
        identities = {name: await identify(name, settings.targets[name], settings)}
    else:
        identities = await identify_all(settings)
    remember(engine.journal, settings, identities)
    own = identities[name]
    resources: list[Resource] = []
    for reach in reaches:
        try:
            found = resource_for(own, reach)
        except LookupError as exc:
            raise EngineError(
                f"cannot tell which {reach} {design.scenario} would act on: {exc}."
                + held_by_another(engine.journal, settings, name, reach, experiment_id)
                + " Nothing was injected; make the target reachable (list_targets shows each target's "
                "identity) and try again."
            ) from None
        if found is not None:
            resources.append(found)
    escalations = neighbour_escalations(
        settings, name, design.environment, set(design.blast_radius.targets), own, identities, resources
    )
    return Footprint(resources, escalations)


DESIGN_LOOKUP_S = 1.5  # design answers promptly; what is not known by then is checked at inject


@dataclass(frozen=True)
class Foresight:
    """What inject_failure will decide about the targets a fault's resources reach, told at design time."""

    escalations: list[str]
    refusal: str | None = None
    unknown: str | None = None  # why it could not be told now: then it is checked at inject


def foresee_neighbours(settings: Settings, design: ExperimentDesign, reaches: Iterable[Reach]) -> Foresight:
    """For `design_experiment` (sync): the identities of every target, asked in a thread of its own with
    its own event loop and at most DESIGN_LOOKUP_S, then the same rule inject applies."""
    wanted = set(reaches)
    if wanted <= {"host", "working_copy"}:
        return Foresight([])
    found: dict[str, dict[str, Identity]] = {}

    async def lookup() -> None:
        with anyio.move_on_after(DESIGN_LOOKUP_S):
            found["identities"] = await identify_all(settings)

    worker = threading.Thread(target=anyio.run, args=(lookup,), name="design-identities", daemon=True)
    worker.start()
    worker.join(DESIGN_LOOKUP_S + 1.0)
    identities = found.get("identities")
    if identities is None:
        return Foresight(
            [], unknown=f"the targets' identities did not all answer within {DESIGN_LOOKUP_S:g}s"
        )
    own = identities[design.target_component]
    if own.instance is None:
        return Foresight(
            [], unknown=own.unknown or f"target {design.target_component!r} could not be identified"
        )
    try:
        resources = [r for reach in wanted if (r := resource_for(own, reach)) is not None]
    except LookupError as exc:
        return Foresight([], unknown=str(exc))
    try:
        needed = neighbour_escalations(
            settings,
            design.target_component,
            design.environment,
            set(design.blast_radius.targets),
            own,
            identities,
            resources,
        )
    except PolicyRefusal as exc:
        return Foresight([], refusal=str(exc).removesuffix("; nothing was injected."))
    return Foresight([e.reason for e in needed])


# A target under a fault may not answer (a paused Redis answers nobody), so its identity cannot be
# asked then. The last identity the system reported is kept in the journal (shared by every server
# on it), only to *name* the experiment that is probably in the way: the refusal stands either way.
_KEPT = "identity:"


def _digest(settings: Settings, name: str) -> str:
    """Changes whenever the target's configuration does; passwords are masked before hashing, so the
    journal holds nothing a password could be guessed back from."""
    text = redact_text(settings.targets[name].model_dump_json(), settings.secrets())
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def remember(journal: Journal, settings: Settings, identities: dict[str, Identity]) -> None:
    for name, identity in identities.items():
        if identity.instance is None:
            continue
        kept = {
            "config": _digest(settings, name),
            "instance": identity.instance,
            "database": identity.database,
            "label": identity.label,
            "instance_label": identity.instance_label,
        }
        if journal.get_control(_KEPT + name) != json.dumps(kept):
            journal.set_control(_KEPT + name, json.dumps(kept))


def held_by_another(journal: Journal, settings: Settings, name: str, reach: Reach, experiment_id: str) -> str:
    """' It was last seen on X, which experiment E holds …' when that is so; '' otherwise."""
    raw = journal.get_control(_KEPT + name)
    kept = json.loads(raw) if raw else None
    if not kept or kept.get("config") != _digest(settings, name):
        return ""
    last = Identity(
        target=name,
        instance=kept["instance"],
        database=kept["database"],
        label=kept["label"],
        instance_label=kept["instance_label"],
    )
    try:
        resource = resource_for(last, reach)
    except LookupError:
        return ""
    if resource is None:
        return ""
    for key, holder in journal.holds().items():
        if (
            holder != experiment_id
            and key.startswith(RESOURCE_PREFIX)
            and overlaps(key.removeprefix(RESOURCE_PREFIX), resource.key)
        ):
            row = journal.get_experiment(holder)
            via = f" (target {row.target!r})" if row is not None else ""
            return (
                f" It was last seen as {resource.label}, which is under a fault of experiment {holder}{via} "
                "that is still active: that is probably why it does not answer. Roll that experiment back "
                "(or abort_all) first."
            )
    return ""
