"""`python -m simeval.offline`: the offline table, measured on the real models and test laps."""

from __future__ import annotations

import csv

import pytest

pytest.importorskip("torch")

from simeval.offline import main  # noqa: E402


def test_offline_table_measures_models_and_lists_what_cannot_run(tiny_data, tmp_path, capsys):
    out = tmp_path / "offline"
    assert main(["--agents", "torch-fp32,tftrt-int8,no-such-agent", "--calls", "50", "--data", str(tiny_data), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["offline.csv", "offline.md", "offline.png"]
    rows = {r["agent"]: r for r in csv.DictReader((out / "offline.csv").open())}
    fp32 = rows["torch-fp32"]
    assert fp32["reason"] == ""
    assert 6.0 < float(fp32["size_mb"]) < 7.0
    assert 0 < float(fp32["mse_all"]) < 0.01  # the shipped model on the expert's test laps
    assert 0 < float(fp32["latency_p50_ms"]) <= float(fp32["latency_p95_ms"])
    assert float(fp32["throughput_b64_fps"]) > 0
    assert rows["tftrt-int8"]["reason"] and rows["no-such-agent"]["reason"].startswith("unknown agent")
    table = (out / "offline.md").read_text()
    assert "| torch-fp32 (fp32) | 6.39 |" in table and "Not run here:" in table
    assert "torch-fp32" in capsys.readouterr().out


def test_offline_without_a_data_set_says_how_to_make_one(tmp_path, capsys):
    assert main(["--agents", "torch-fp32", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "simeval.dataset" in err
    assert not (tmp_path / "o").exists()
