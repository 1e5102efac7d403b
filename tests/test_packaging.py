"""A plain (non-editable) `pip install .` carries the circuits and shipped models inside `simeval`."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

from simeval.paths import REPO_ROOT

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO_ROOT), "--no-deps", "-q", "-w", str(out)],
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot build a wheel here (no access to the build backend?): {result.stderr.strip()[-300:]}")
    return next(out.glob("simeval-*.whl"))


def test_wheel_holds_only_simeval_with_its_data(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"simeval", f"{wheel.name.split('-py3')[0]}.dist-info"}
    shipped_circuits = sorted(p.name for p in (REPO_ROOT / "circuits").glob("*.csv"))
    assert shipped_circuits and all(f"simeval/_data/circuits/{n}" in names for n in shipped_circuits)
    shipped_models = sorted(str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "agents").rglob("*") if p.is_file())
    assert all(f"simeval/_data/{n}" in names for n in shipped_models)


def test_installed_wheel_finds_its_circuits_outside_the_checkout(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)], check=True)
    code = (
        "import simeval, simeval.paths as p; from simeval.track.circuit import Circuit;"
        "c = Circuit.from_name('montreal'); print(simeval.__file__); print(p.data_dir('circuits')); print(round(c.length_m))"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout.split()
    assert out[0].startswith(str(target)) and out[1].startswith(str(target))
    assert out[2] == "1432"


def test_wheel_is_typed_licensed_and_has_the_console_command(wheel):
    archive = zipfile.ZipFile(wheel)
    names = archive.namelist()
    assert "simeval/py.typed" in names
    licence = next(n for n in names if n.endswith(".dist-info/licenses/LICENSE"))
    assert "Apache License" in archive.read(licence).decode()
    entry_points = archive.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert "simeval = simeval.cli:main" in entry_points


def test_licence_and_changelog_agree_with_the_project() -> None:
    import simeval

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"]["text"] == "Apache-2.0"
    assert "Apache License\n" in (REPO_ROOT / "LICENSE").read_text() and "Version 2.0, January 2004" in (REPO_ROOT / "LICENSE").read_text()
    changelog = (REPO_ROOT / "CHANGELOG.md").read_text()
    assert project["version"] == simeval.__version__
    assert f"## [{simeval.__version__}] - " in changelog and "## [Unreleased]" in changelog


def test_the_console_command_drives_a_lap(tmp_path) -> None:
    command = os.path.join(os.path.dirname(sys.executable), "simeval")
    assert os.path.exists(command), "no `simeval` command beside this Python: reinstall with pip install -e '.[test]'"
    out = tmp_path / "lap"
    result = subprocess.run([command, "run", "--agent", "expert", "--circuit", "simple", "--max-time-s", "5", "--no-plot", "--out", str(out)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert (out / "trajectory.csv").is_file() and "results:" in result.stdout
    listing = subprocess.run([command, "--help"], capture_output=True, text=True, check=True).stdout
    assert all(f"  {name}" in listing for name in ("run", "sweep", "models", "circuits", "offline"))
    typo = subprocess.run([command, "swep"], capture_output=True, text=True, check=False)
    assert typo.returncode == 2 and "Did you mean 'sweep'?" in typo.stderr


def test_environment_yml_has_the_dependencies_of_pyproject() -> None:
    """The conda environment and pyproject's core + `test` extra name the same packages with the
    same bounds, so the two cannot drift; it ends in an editable install of simeval."""
    import yaml
    from packaging.requirements import Requirement

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]

    def expand(items):
        for item in items:
            req = Requirement(item)
            if req.name == "simeval":
                for extra in sorted(req.extras):
                    yield from expand(extras[extra])
            elif req.marker is None or req.marker.evaluate({"python_version": "3.11"}):
                yield item

    wanted = {Requirement(i).name.lower(): str(Requirement(i).specifier) for i in expand([*project["dependencies"], "simeval[test]"])}
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    assert env["channels"][0] == "conda-forge"
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pip[-1] == "-e .[test]", "the environment ends in an editable install of simeval"
    conda_names = {"matplotlib-base": "matplotlib"}
    declared = {}
    for item in conda:
        name = item.split("=")[0].split(">")[0].split("<")[0].strip()
        if name in ("python", "pip"):
            continue
        declared[conda_names.get(name, name).lower()] = str(Requirement(conda_names.get(name, name) + item[len(name):]).specifier)
    declared.update({Requirement(i).name.lower(): str(Requirement(i).specifier) for i in pip if not i.startswith("-")})
    assert declared == wanted
    assert any(d.startswith("python=") for d in conda) and project["requires-python"] == ">=3.10"


@pytest.mark.parametrize("command", ["run", "sweep", "replay", "models", "circuits", "dataset", "train", "optimize", "offline"])
def test_every_command_has_clean_help(command, capsys) -> None:
    """What `--help` shows: the whole first sentence of what the command does, choices where a
    setting has them, the exit codes, and no reStructuredText markup or '(default: None)'."""
    from simeval.cli import main

    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    description = text.split("\n\n")[1]
    assert description[0].isupper() and description.rstrip().endswith("."), description
    assert "``" not in text and "(default: None)" not in text
    assert "Exit codes: 0 " in " ".join(text.split())
    if command in ("run", "sweep"):
        assert "{raster,pybullet}" in text and "{lockstep,latency}" in text and "{seeded,spawn,random,perturbed}" in text
