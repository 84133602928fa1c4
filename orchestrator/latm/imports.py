"""Importing a tool card: the platform proves it again instead of believing it.

A card from outside says it was verified, by whom and at what cost, and carries usage
demos that the user model will read as worked examples. None of that is taken as
given. On import, in the tenant's own sandbox:

* the entrypoint must exist and be callable: a card whose entrypoint does not is
  refused;
* every usage demo's snippet is run with the card's source and its value graded
  against the demo's answer (with the card's scorer, or the one its answers fit);
  demos that do not give their answer are dropped, so they never reach a prompt, and
  a card none of whose demos does is refused;
* the card's verification becomes the platform's own record of those runs, and its
  provenance is kept but marked ``claimed`` (who made it and at what cost is the
  exporter's word).
"""

from __future__ import annotations

from orchestrator.errors import InvalidRequest
from orchestrator.latm.cards import Provenance, ToolCard, UsageDemo, Verification, VerificationCase
from orchestrator.latm.maker import graded_case
from orchestrator.latm.runner import ToolRunner
from orchestrator.latm.scoring import choose_scorer, get_scorer
from orchestrator.latm.tasks import Example, Task


async def reverified(card: ToolCard, runner: ToolRunner) -> ToolCard:
    """``card`` as the platform has proven it in ``runner``'s sandbox.

    Raises:
        InvalidRequest: the entrypoint does not exist, or no usage demo gives its answer.
    """
    found = await runner.run(card.source, f"ans = callable({card.entrypoint})")
    if not (found.ok and found.value is True):
        raise InvalidRequest(
            f"tool card {card.name!r}: its source defines no function {card.entrypoint!r} "
            f"({found.error or 'not callable'})"
        )
    examples = [
        Example(index, demo.question, demo.answer) for index, demo in enumerate(card.usage_demos)
    ]
    if card.scorer:
        scorer = get_scorer(card.scorer)
    else:  # the one the demos' answers fit
        scorer = choose_scorer(Task(card.name, tuple(examples), source="import"))
    kept: list[UsageDemo] = []
    cases: list[VerificationCase] = []
    for demo, example in zip(card.usage_demos, examples, strict=True):
        cases.append(graded_case(example, await runner.run(card.source, demo.solution), scorer))
        if cases[-1].passed:
            kept.append(demo)
    if not kept:
        raise InvalidRequest(
            f"tool card {card.name!r}: none of its {len(card.usage_demos)} usage demos gives "
            "its answer in the sandbox; not imported"
        )
    provenance = Provenance.model_validate({**card.provenance.model_dump(), "claimed": True})
    return card.model_copy(
        update={
            "usage_demos": kept,
            "verification": Verification(passed=len(kept), total=len(cases), cases=cases),
            "provenance": provenance,
            "scorer": scorer.name,
        }
    )
