"""Agent names -> agents: the experts, the shipped models (read from their cards in ``agents/``), a
user's model file or contract file, or a user's ``package.module:Class``. Nothing is imported
until an agent is asked for (so ``--agent expert`` loads no torch)."""

from __future__ import annotations

import importlib
from pathlib import Path

from simeval.agents.base import Agent, AgentInfo, FailedAgent
from simeval.agents.card import CARD_FILE, model_dir, read_card, shipped_contract
from simeval.agents.contract import SUFFIX, Artifact, ModelContract, preset, read_contract
from simeval.agents.formats import FORMATS, format_of, missing, runtime_class
from simeval.agents.variants import BY_NAME, VARIANTS
from simeval.errors import AgentError, ContractError, SimevalError, UnavailableError, UnknownNameError
from simeval.paths import data_dir

EXPERTS: dict[str, str] = {
    "expert": "simeval.agents.expert:ExpertAgent",
    "pure-pursuit": "simeval.agents.pure_pursuit:PurePursuitAgent",
}
"""The hand-written drivers and the 'module:Class' of each."""

ALIASES: dict[str, str] = {"pilotnet": "torch-fp32"}


def shipped_agents() -> list[str]:
    """Every model that ships in ``agents/`` (a folder with a card), in the variants table's order."""
    folders = {p.parent.name for p in data_dir("agents").glob(f"*/{CARD_FILE}")}
    order = [v.name for v in VARIANTS]
    return sorted(folders, key=lambda n: (order.index(n) if n in order else len(order), n))


def registered() -> list[str]:
    """Every registered agent: the experts, the shipped models, then the variants built elsewhere (TensorRT)."""
    shipped = shipped_agents()
    return [*EXPERTS, *shipped, *(v.name for v in VARIANTS if v.name not in shipped)]


def agent_names() -> list[str]:
    """Every name ``load_agent`` accepts, aliases included."""
    return sorted([*registered(), *ALIASES])


def is_model_path(name: str) -> bool:
    """Whether ``name`` is the path of a user's model or contract file (by its name)."""
    return name.endswith(SUFFIX) or format_of(Path(name)) is not None


def shipped(name: str) -> bool:
    """Whether model ``name`` has an artifact and card in ``agents/`` (the TensorRT ones are built on a GPU)."""
    return (model_dir(name) / CARD_FILE).is_file()


NEEDS_HARDWARE = ("tensorrt", "tensorrt-engine")
"""Formats that need more than their packages (a CUDA GPU): ``agent_status`` asks their runtime."""


def agent_status(name: str) -> str | None:
    """What registered agent ``name`` lacks to drive here, in one line, or None when it is ready:
    from what is installed and built, without loading its model (only TensorRT's agents look for
    a GPU, and without torch where there is no NVIDIA driver)."""
    name = ALIASES.get(name, name)
    if name in EXPERTS:
        return None
    if name not in BY_NAME and not shipped(name):
        raise UnknownNameError("agent", name, agent_names())
    fmt = BY_NAME[name].format if name in BY_NAME else read_card(model_dir(name)).contract.get("artifact", {}).get("format", "")
    lacking = missing(fmt)
    if lacking is None and fmt in NEEDS_HARDWARE:  # the others' runtimes would import their framework (seconds)
        try:
            runtime_class(fmt).check_available(name)
        except UnavailableError as exc:
            lacking = str(exc)
    if lacking is None and not shipped(name):
        make = "make models" if BY_NAME[name].parent is None else f"python -m simeval.optimize {name}"
        lacking = f"not built here: run `{make}`"
    return lacking


def runtime_modules(name: str) -> tuple[str, ...] | None:
    """The Python modules agent ``name`` imports to drive (none for the experts), from the
    variants table or the file's name, without loading anything; None for a user's class (what it
    imports is its own)."""
    name = ALIASES.get(name, name)
    if name in EXPERTS:
        return ()
    fmt = BY_NAME[name].format if name in BY_NAME else (format_of(Path(name)) if is_model_path(name) else None)
    return FORMATS[fmt].modules if fmt in FORMATS else None


def runnable_agents() -> list[str]:
    """The agents this machine can drive: the experts, and every shipped model whose framework is
    installed (TensorRT's GPU is checked only when one of its agents loads)."""
    runnable = []
    for name in shipped_agents():
        try:
            fmt = read_card(model_dir(name)).contract.get("artifact", {}).get("format", "")
            if missing(fmt) is None:
                runnable.append(name)
        except SimevalError:
            continue
    return [*EXPERTS, *runnable]


def user_contract(path: Path, contract: Path | None = None) -> ModelContract:
    """The contract of a user's model file: ``contract``, else the one beside it
    (``model.onnx.simeval.toml``, or ``model.simeval.toml``), else simeval's own conventions with the
    format its name says."""
    from simeval.agents.contract import contract_path

    path = Path(path)
    if contract is not None:
        return _with_path(read_contract(contract), path)
    for source in (path.with_name(path.name + SUFFIX), contract_path(path)):
        if source.is_file():
            found = read_contract(source)
            if Path(found.artifact.path).name != path.name:
                raise ContractError(f"{source} describes {Path(found.artifact.path).name}, not {path.name}; "
                                    f"pass the contract of {path.name} with --contract")
            return _with_path(found, path)
    fmt = format_of(path)
    if fmt is None:
        raise AgentError(f"{path}: cannot tell the model's format from its name; describe it in a contract: "
                         f"`python -m simeval.models init {path} --format FORMAT`")
    if fmt == "sb3":  # its saved spaces say how to feed it and read it
        from simeval.agents.sb3_zip import policy_contract

        return policy_contract(path)
    base = preset("simeval-pilotnet")
    artifact = Artifact(path=str(path.resolve()), format=fmt, architecture="simeval-pilotnet" if fmt == "torch-state-dict" else None)
    return ModelContract(artifact=artifact, input=base.input, output=base.output, runtime=base.runtime,
                         preset="simeval-pilotnet", notes="no contract beside the file: simeval's own conventions assumed")


def _with_path(contract: ModelContract, path: Path) -> ModelContract:
    from dataclasses import replace

    return replace(contract, artifact=replace(contract.artifact, path=str(path.resolve())))


def load_agent(name: str, *, contract: Path | None = None, trust_model: bool = False) -> Agent:
    """The agent called ``name``: a registered name, a user's model file (with ``contract``, or the
    contract beside it), a contract file (``*.simeval.toml``), or a user's own
    ``package.module:Class``. Formats that carry code load by path only with ``trust_model``."""
    from simeval.agents.model import ModelAgent

    name = ALIASES.get(name, name)
    try:
        if name.endswith(SUFFIX):
            return ModelAgent.load(read_contract(Path(name)), name=name, trusted=trust_model)
        if contract is not None or is_model_path(name):
            return ModelAgent.load(user_contract(Path(name), contract), name=name, trusted=trust_model)
        if shipped(name) or (name in BY_NAME and model_dir(name).is_dir()):
            card, found = shipped_contract(name)  # a folder without its card says so
            return ModelAgent.load(found, name=name, card=card)
        if name in BY_NAME:
            runtime_class(BY_NAME[name].format).check_available(name)
            make = "make models" if BY_NAME[name].parent is None else f"python -m simeval.optimize {name}"
            raise AgentError(f"{name} is not built here: run `{make}`")
    except UnavailableError as exc:
        if is_model_path(name) or name.endswith(SUFFIX):  # a user's file: name it; other agents are beside the point
            raise UnavailableError(str(exc) if str(exc).startswith(name) else f"{name}: {exc}") from None
        raise UnavailableError(f"{exc}; agents that run here: {', '.join(runnable_agents())}") from None
    if name in EXPERTS:
        return _agent_class(name, EXPERTS[name])()
    if ":" not in name:
        raise UnknownNameError("agent", name, agent_names())
    return _construct(name, _agent_class(name, name))


def _construct(name: str, cls: type[Agent]) -> Agent:
    """A user's agent: one whose constructor raises becomes a ``FailedAgent`` (its runs are recorded
    as agent errors); one without an ``AgentInfo`` as ``info`` is not an agent (bad input)."""
    try:
        agent = cls()
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the user's code: any failure is the agent's
        return FailedAgent(name, exc)
    try:
        info = agent.info
    except Exception:  # noqa: BLE001 - a missing or broken `info` property: the same mistake
        info = None
    if not isinstance(info, AgentInfo):
        raise AgentError(f"agent '{name}': {cls.__name__} has no `info` (an AgentInfo with at least name and framework); "
                         "set it in the class or its constructor")
    return agent


def _agent_class(name: str, target: str) -> type[Agent]:
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AgentError(f"agent '{name}': cannot import {module_name} ({exc})") from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Agent)):
        raise AgentError(f"agent '{name}': {target} is not a simeval.agents.base.Agent subclass")
    return cls
