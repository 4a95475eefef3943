"""Workflows by name: what each one takes, plans, runs, and how form values become its request.

Mirrors `studio.engines.registry`: one `WorkflowSpec` per workflow (person, product, advanced,
overlay, video, stock), callables named as "module:callable" and imported on first use, so
start-up imports no workflow. The UI tabs and the headless commands look a workflow up here
(`workflow(name)`, `for_request(req)`); no other module picks a workflow by its name, and the
shared ad skeleton (`common`) no longer imports the workflows built on it (no import cycle).
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Mapping

from studio.errors import InputError


def _resolve(target: str | None) -> Callable[..., Any] | None:
    if not target:
        return None
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


@dataclass(frozen=True)
class WorkflowSpec:
    name: str
    request: str                  # "module:Class" of the request
    run: str                      # "module:callable" (request, services, progress=, cancel=) -> result
    plan: str | None = None       # ad workflows: what is kept (common.make_plan takes it)
    build: str | None = None      # "module:callable" form values -> request; None: the request type by keyword
    subject: str | None = None    # the engine's subject for the prompt ("person" | "product" | "mixed")

    def request_type(self) -> type:
        return _resolve(self.request)  # type: ignore[return-value]

    def runner(self) -> Callable[..., Any]:
        return _resolve(self.run)  # type: ignore[return-value]

    def planner(self) -> Callable[..., Any] | None:
        return _resolve(self.plan)

    def make_request(self, **values: Any) -> Any:
        """The request from form (or command-line) values given by keyword; values the workflow
        does not take are left out (one builder serves the UI, the preview and the CLI)."""
        builder = _resolve(self.build)
        if builder is not None:
            return builder(**values)
        cls = self.request_type()
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


_AD = "studio.schema"
SPECS: tuple[WorkflowSpec, ...] = (
    WorkflowSpec("person", f"{_AD}:PersonRequest", "studio.workflows.person:run", "studio.workflows.person:plan",
                 subject="person"),
    WorkflowSpec("product", f"{_AD}:ProductRequest", "studio.workflows.product:run",
                 "studio.workflows.product:plan", subject="product"),
    WorkflowSpec("advanced", f"{_AD}:AdvancedRequest", "studio.workflows.advanced:run",
                 "studio.workflows.advanced:plan", subject="mixed"),
    WorkflowSpec("overlay", "studio.workflows.overlay:OverlayForm", "studio.workflows.overlay:export_detailed",
                 build="studio.workflows.overlay:make_spec"),
    WorkflowSpec("video", "studio.workflows.video:VideoRequest", "studio.workflows.video:run",
                 build="studio.workflows.video:request_from_form"),
    WorkflowSpec("stock", "studio.workflows.stock:StockRequest", "studio.workflows.stock:run_batch",
                 plan="studio.workflows.stock:plan_batch"),
)

REGISTRY: Mapping[str, WorkflowSpec] = MappingProxyType({s.name: s for s in SPECS})
AD_WORKFLOWS: tuple[str, ...] = ("person", "product", "advanced")


def workflow(name: str) -> WorkflowSpec:
    spec = REGISTRY.get(name)
    if spec is None:
        raise InputError("workflow.unknown", workflow=name, names=", ".join(REGISTRY))
    return spec


def for_request(req: Any) -> WorkflowSpec:
    """The workflow whose request type `req` is (the most derived match wins)."""
    best: WorkflowSpec | None = None
    for spec in SPECS:
        cls = spec.request_type()
        if isinstance(req, cls) and (best is None or issubclass(cls, best.request_type())):
            best = spec
    if best is None:
        raise InputError("workflow.unknown", workflow=type(req).__name__, names=", ".join(REGISTRY))
    return best


def run(req: Any, services: Any, progress: Any = None, cancel: Any = None) -> Any:
    """Run the workflow of `req` (ads: person / product / advanced)."""
    return for_request(req).runner()(req, services, progress, cancel)


def preview_plan(req: Any, services: Any) -> Any:
    """The plan (and so the keep mask) the generation of ad request `req` will use."""
    from studio.workflows import common

    plan_fn = for_request(req).planner()
    if plan_fn is None:
        raise InputError("workflow.unknown", workflow=type(req).__name__, names=", ".join(AD_WORKFLOWS))
    sns = services.presets.sns(req.sns_size)
    return common.make_plan(plan_fn, req, services, common.inpaint_engine(services), (sns.width, sns.height))


def preview_keep(req: Any, services: Any) -> tuple[list, Any]:
    """(faces, keep mask on the upload) exactly as the generation of `req` will keep it."""
    p = preview_plan(req, services)
    return p.faces, p.preview()
