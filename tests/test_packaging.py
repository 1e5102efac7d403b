"""A plain (non-editable) `pip install .` carries the circuits and shipped models inside `simeval`."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

from simeval.paths import REPO_ROOT


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
