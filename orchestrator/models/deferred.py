"""A model a server starts without, and opens once it can.

A deployment that only executes tools needs no model, so ``latm serve`` does not refuse to
start when a role's local model is not in the cache yet (or llama-cpp-python is missing).
It logs one warning naming the cure (``latm models fetch NAME``) and puts a
:class:`DeferredModel` in the model's place. Each use tries to open the model again, a
cheap look at the cache, so a model fetched after the start is served from the next call
on; until then the calls that need it fail with FAILED_PRECONDITION and the same cure.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from orchestrator.errors import LatmError, MissingDependencyError, ModelNotAvailable
from orchestrator.models.base import ChatParams, Completion, Message, ModelAdapter, RawCompletion
from orchestrator.models.factory import open_model
from orchestrator.models.ledger import MeteredModel
from orchestrator.models.pricing import PriceTable
from orchestrator.models.specs import ModelSpec

if TYPE_CHECKING:
    from orchestrator.config import Settings

log = logging.getLogger(__name__)
# What a later ``latm models fetch`` or ``pip install`` cures: worth starting without.
DEFERRABLE = (ModelNotAvailable, MissingDependencyError)


class DeferredModel(ModelAdapter):
    """Stands for a model that could not be opened yet; opens it on the first use that can."""

    def __init__(self, spec: str, opener: Callable[[], ModelAdapter], reason: LatmError) -> None:
        super().__init__(spec)
        self._opener = opener
        self.reason = reason  # why it did not open, the last time it was tried
        self._model: ModelAdapter | None = None

    @property
    def available(self) -> bool:
        """Whether the model opens now (tried again unless it opened before)."""
        try:
            self.opened()
        except DEFERRABLE:
            return False
        return True

    def opened(self) -> ModelAdapter:
        """The model, opened now if it was not yet.

        Raises:
            ModelNotAvailable: a local model still not in the cache (the message says how
                to fetch it).
            MissingDependencyError: llama-cpp-python still not installed.
        """
        if self._model is None:
            try:
                self._model = self._opener()
            except DEFERRABLE as exc:
                self.reason = exc
                raise
            log.info("model %s is available now; serving it", self.spec)
        return self._model

    async def complete(
        self, messages: list[Message] | tuple[Message, ...], params: ChatParams | None = None
    ) -> Completion:
        return await self.opened().complete(messages, params)

    async def _complete(self, messages: list[Message], params: ChatParams) -> RawCompletion:
        raise NotImplementedError  # complete() delegates whole

    async def aclose(self) -> None:
        if self._model is not None:
            await self._model.aclose()


def open_when_ready(spec: str, settings: Settings) -> ModelAdapter:
    """The adapter for ``spec``; or, when it cannot open for a reason a fetch or an install
    cures, a :class:`DeferredModel` for it, with one warning in the log saying what to run.

    Raises:
        InvalidRequest: a malformed spec or an unknown catalog name (nothing cures those).
    """
    prices = PriceTable.load(settings.model_prices_file)
    opener = functools.partial(open_model, spec, settings, prices=prices)
    try:
        return opener()
    except DEFERRABLE as exc:
        log.warning(
            "model %s is not available: %s. Serving without it: ExecuteTool and the tool "
            "registry work; Solve and MakeTool answer FAILED_PRECONDITION until it is",
            spec,
            exc,
        )
        return DeferredModel(str(ModelSpec.parse(spec)), opener, exc)


def deferred(model: ModelAdapter | None) -> DeferredModel | None:
    """``model`` (or the model it meters) when it is a :class:`DeferredModel`, else None."""
    inner = model.inner if isinstance(model, MeteredModel) else model
    return inner if isinstance(inner, DeferredModel) else None


def require_ready(*models: ModelAdapter | None) -> None:
    """Raise why a deferred model among ``models`` still cannot open; open ones pass.

    Raises:
        ModelNotAvailable: a local model not in the cache (naming ``latm models fetch``).
        MissingDependencyError: llama-cpp-python not installed.
    """
    for model in models:
        pending = deferred(model)
        if pending is not None:
            pending.opened()
