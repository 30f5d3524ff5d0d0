"""The spec's safety constraints and "Escalate If" list, as rules the server enforces."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from chaos_mcp.config import Settings
from chaos_mcp.resources import Identity


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


def neighbour_escalations(
    settings: Settings,
    target_name: str,
    environment: str,
    blast_radius: set[str],
    own: Identity,
    identities: dict[str, Identity],
) -> list[Escalation]:
    """An instance-wide fault on `target_name`: the other declared targets its instance serves.

    A target of another environment, or one outside the blast radius, needs a person's approval
    exactly as production does (and production still needs policy.allow_production). A target of
    the same family whose identity is unknown might be served by this instance: refused, since
    nobody can say what the fault would reach.
    """
    needed: list[Escalation] = []
    where = own.instance_label or "instance"
    for name, seen in sorted(identities.items()):
        if name == target_name or seen.family is None or seen.family != own.family:
            continue
        other = settings.targets[name]
        if seen.instance is None:
            raise PolicyRefusal(
                f"this fault acts on the whole {where}, and {seen.unknown or f'target {name!r} is unknown'}; "
                f"it cannot be ruled out that {name!r} ({other.environment}) is served by the same instance. "
                f"Make {name!r} reachable (list_targets shows its identity), or the operator removes it from "
                "chaos.toml if it no longer exists; nothing was injected."
            )
        if seen.instance != own.instance:
            continue
        if other.environment != environment:
            if other.environment == "production" and not settings.policy.allow_production:
                raise PolicyRefusal(
                    f"this fault acts on the whole {where}, which also serves production target {name!r}, "
                    "and policy.allow_production is false: refused. Use a target on an instance of its "
                    "own, a fault that acts on one database only, or the operator sets "
                    "policy.allow_production (each injection then needs a person's approval)."
                )
            needed.append(
                Escalation(
                    "shared_instance",
                    f"the fault acts on the whole {where}, which also serves {other.environment} target "
                    f"{name!r}",
                )
            )
        elif name not in blast_radius:
            needed.append(
                Escalation(
                    "shared_instance",
                    f"the fault acts on the whole {where}, which also serves target {name!r}, outside "
                    "the blast radius",
                )
            )
    return needed


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
