"""The spec's safety constraints and "Escalate If" list, as rules the server enforces."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from chaos_mcp.config import Settings
from chaos_mcp.resources import Identity, Resource, overlaps


class Approval(StrEnum):
    APPROVED = "approved"
    DECLINED = "declined"
    UNAVAILABLE = "unavailable"  # the client cannot ask a person


Approver = Callable[[str], Awaitable[Approval]]


class PolicyRefusal(Exception):
    """The policy forbids this; the message says why and what the operator can do."""


@dataclass(frozen=True)
class Escalation:
    rule: str
    reason: str


def escalations(
    settings: Settings, target_name: str, environment: str, mutates_data: bool
) -> list[Escalation]:
    """What needs a person's approval; raises PolicyRefusal for what is never allowed."""
    target = settings.targets[target_name]
    needed: list[Escalation] = []
    if environment == "production":
        if not settings.policy.allow_production:
            raise PolicyRefusal(
                "production experiments are refused: policy.allow_production is false. The operator can set "
                "it in chaos.toml; each injection then still needs a person's approval."
            )
        needed.append(Escalation("production", f"target {target_name!r} is a production system"))
    if mutates_data:
        if settings.policy.data_mutation == "deny":
            raise PolicyRefusal(
                "data-modifying experiments are refused: policy.data_mutation is 'deny'. "
                "The operator can set "
                "it to 'approve' (a person approves each one) or 'allow'."
            )
        if settings.policy.data_mutation == "approve":
            needed.append(Escalation("data_mutation", "the experiment modifies data"))
    if target.sensitive:
        needed.append(Escalation("sensitive", f"target {target_name!r} is marked sensitive"))
    return needed


def reaches_target(resource: str, seen: Identity) -> bool:
    """Whether a fault acting on `resource` reaches target `seen` through what it physically is.

    Its database is reached when the fault acts on that database or on something containing it (its
    server); its proxy listener when the two keys overlap either way; its working copy when it is the
    same. A target known only down to its instance (no database) may be using the very database the
    fault acts on, so any overlap with its instance counts.
    """
    if seen.database is not None:
        if resource == seen.database or seen.database.startswith(resource + "/"):
            return True
    elif seen.instance is not None and overlaps(resource, seen.instance):
        return True
    if seen.listener is not None and overlaps(resource, seen.listener):
        return True
    return seen.working_copy is not None and resource == seen.working_copy


def neighbour_escalations(
    settings: Settings,
    target_name: str,
    environment: str,
    blast_radius: set[str],
    own: Identity,
    identities: dict[str, Identity],
    resources: list[Resource],
) -> list[Escalation]:
    """The other declared targets that the fault's resources reach, whatever the reach.

    An instance-wide fault reaches every target its instance serves; a database fault every other name
    for that database (another DSN, another `database =`, a schedule's source). A target of another
    environment, or one outside the blast radius, needs a person's approval exactly as production does
    (and production still needs policy.allow_production). A target of the same family whose identity
    is unknown might be the very resource: refused, since nobody can say what the fault would reach.
    """
    needed: list[Escalation] = []
    for name, seen in sorted(identities.items()):
        if name == target_name:
            continue
        other = settings.targets[name]
        for resource in resources:
            where = _where(resource, own)
            if seen.instance is None and seen.family is not None and seen.family == own.family:
                if resource.key in (own.instance, own.database):
                    raise PolicyRefusal(
                        f"this fault acts on {where}, and {seen.unknown or f'target {name!r} is unknown'}; "
                        f"it cannot be ruled out that {name!r} ({other.environment}) is served by it. "
                        f"Make {name!r} reachable (list_targets shows its identity), or the operator removes "
                        "it from chaos.toml if it no longer exists; nothing was injected."
                    )
                continue
            if not reaches_target(resource.key, seen):
                continue
            if other.environment != environment:
                if other.environment == "production" and not settings.policy.allow_production:
                    raise PolicyRefusal(
                        f"this fault acts on {where}, which also serves production target {name!r}, "
                        "and policy.allow_production is false: refused. Use a target of its own (another "
                        "database or instance) for the experiment, or the operator sets "
                        "policy.allow_production (each injection then needs a person's approval)."
                    )
                needed.append(
                    Escalation(
                        "shared_instance" if resource.key == own.instance else "shared_resource",
                        f"the fault acts on {where}, which also serves {other.environment} target {name!r}",
                    )
                )
            elif name not in blast_radius:
                needed.append(
                    Escalation(
                        "shared_instance" if resource.key == own.instance else "shared_resource",
                        f"the fault acts on {where}, which also serves target {name!r}, outside the "
                        "blast radius",
                    )
                )
            break
    return needed


def _where(resource: Resource, own: Identity) -> str:
    if resource.key == own.instance:
        return f"the whole {own.instance_label or 'instance'}"
    return resource.label


async def require_approval(needed: list[Escalation], approver: Approver | None, summary: str) -> list[str]:
    """Ask a person once for all escalations; return the approval notes for the journal."""
    if not needed:
        return []
    reasons = "; ".join(e.reason for e in needed)
    if approver is None:
        raise PolicyRefusal(
            f"a person must approve this injection ({reasons}), and this client cannot ask one (it does not "
            "support elicitation). Run it from a client that supports elicitation (e.g. the MCP Inspector), "
            "or the operator can change the policy in chaos.toml."
        )
    answer = await approver(f"Approve chaos injection? {summary}. Needs approval because: {reasons}.")
    if answer is Approval.UNAVAILABLE:
        raise PolicyRefusal(
            f"a person must approve this injection ({reasons}), and this client cannot ask one (it does not "
            "support elicitation). Use a client that supports elicitation, or ask the operator."
        )
    if answer is not Approval.APPROVED:
        raise PolicyRefusal(f"the person asked declined the injection ({reasons}); nothing was injected.")
    return [f"approved by a person: {e.rule}" for e in needed]
