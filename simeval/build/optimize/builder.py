"""Building an optimized variant: its parent, its recipe's handler, its card, its folder.

``build(name, context)`` looks the variant up in ``simeval.agents.variants``, runs the handler of
its recipe (``HANDLERS``: recipe type -> the function in this package that carries it out) on the
shipped parent, and writes ``agents/<name>/`` whole: the artifact, and a card with its own sha256,
size and test MSE beside the parent's. A handler that needs hardware or libraries that are missing
raises ``AgentError`` with one line saying what is missing.
"""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from simeval.agents import variants as v
from simeval.agents.card import ModelCard, model_dir, read_card, sha256_of
from simeval.agents.formats import runtime_class
from simeval.atomic import public_permissions
from simeval.build.evaluate import offline_mse
from simeval.build.optimize.context import BuildContext, Built
from simeval.errors import AgentError

HANDLERS: dict[type, str] = {
    v.TorchDynamicInt8: "simeval.build.optimize.torch_int8:build_dynamic",
    v.TorchStaticInt8: "simeval.build.optimize.torch_int8:build_static",
    v.TorchQAT: "simeval.build.optimize.torch_int8:build_qat",
    v.OnnxExport: "simeval.build.optimize.onnx_export:build_fp32",
    v.OnnxStaticInt8: "simeval.build.optimize.onnx_export:build_int8",
    v.LiteRTDynamicRange: "simeval.build.optimize.litert_convert:build",
    v.LiteRTFloat16: "simeval.build.optimize.litert_convert:build",
    v.LiteRTFullInt8: "simeval.build.optimize.litert_convert:build",
    v.TensorRTEngine: "simeval.build.optimize.tensorrt_build:build",
}
"""Recipe type -> 'module:function' that builds it: ``(recipe, parent_dir, out_dir, context) -> Built``."""


def write_card(variant: v.Variant, parent: ModelCard, built: Built, context: BuildContext, seconds: float,
               notes: str = "") -> ModelCard:
    """The variant's card: its own sha256, size and test MSE, next to the parent's."""
    from simeval.build.training.trainer import versions

    test = offline_mse(built.predict, context.data, parent.labels)
    card = ModelCard(
        name=variant.name,
        framework=runtime_class(variant.format).FRAMEWORK,
        precision=variant.precision,
        artifact=built.artifact.name,
        sha256=sha256_of(built.artifact),
        size_bytes=built.artifact.stat().st_size,
        parameters=parent.parameters,
        label_low=parent.label_low,
        label_high=parent.label_high,
        dataset=parent.dataset,
        training={"parent": parent.name, "parent_sha256": parent.sha256, "method": built.method, "seconds": round(seconds, 1)},
        validation=parent.validation,
        test=test | {"parent_all": parent.test["all"]},
        versions=versions(),
        notes=notes,
        contract=v.card_contract(variant, built.artifact.name),
    )
    card.write(built.artifact.parent)
    return card


def handler(recipe: v.Recipe) -> Any:
    """The function that builds ``recipe`` (imported now: it needs its frameworks)."""
    module_name, _, function = HANDLERS[type(recipe)].partition(":")
    return getattr(importlib.import_module(module_name), function)


def build(name: str, context: BuildContext) -> ModelCard:
    """Build variant ``name`` from its shipped parent and write ``agents/<name>/``.

    The measurement notes of a card being replaced are kept: they record why the recipe is what it is.
    """
    variant = v.variant(name)
    if variant.parent is None:
        raise AgentError(f"{name} is trained, not built: run `python -m simeval.train --framework {variant.recipe.framework}`")
    parent_dir = model_dir(variant.parent)
    parent = read_card(parent_dir)
    out = model_dir(name)
    notes = read_card(out).notes if (out / "card.json").is_file() else ""
    started = time.perf_counter()
    with _replacing(out) as tmp:
        built = handler(variant.recipe)(variant.recipe, parent_dir, tmp, context)
        card = write_card(variant, parent, built, context, time.perf_counter() - started, notes)
    return card


@contextmanager
def _replacing(out: Path) -> Iterator[Path]:
    """A fresh temporary folder that replaces ``out`` only when the build succeeds: a skipped or
    failed build leaves the shipped variant (or its absence) as it was."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield tmp
        public_permissions(tmp, directory=True)
        old = out.with_name(f".{out.name}.old")
        if out.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
