"""Your own data through the chapters: a CGCNN-format folder with any target trains through 03_cgcnn (and
04_megnet) by parameters alone, as the README shows."""

from __future__ import annotations

import json

import pandas as pd
import papermill as pm
import pytest

from lib import data
from lib.paths import ROOT


@pytest.fixture(scope="module")
def voltage_folder(tmp_path_factory, mirror):
    """A CGCNN folder (id_prop.csv + <id>.cif) of discharged electrodes from the mirror with MP's average
    voltage as the target: a property lib.data does not know."""
    pairs = pd.read_csv(mirror / "mp_insertion_electrodes.csv")
    df = data.load_dataset("cgcnn", source="auto", progress=False, verbose=False).set_index("material_id")
    pairs = pairs[pairs["low_mpid"].isin(df.index)].drop_duplicates("low_mpid").head(150)
    folder = tmp_path_factory.mktemp("voltage")
    lines = []
    for mid, v in zip(pairs["low_mpid"], pairs["avg_voltage"], strict=True):
        (folder / f"{mid}.cif").write_text(df.loc[mid, "structure"].to_cif(mid))
        lines.append(f"{mid},{v:.4f}")
    (folder / "id_prop.csv").write_text("\n".join(lines) + "\n")
    return folder, len(lines)


@pytest.mark.parametrize("notebook,model", [("03_cgcnn", "cgcnn"), ("04_megnet", "megnet")])
def test_a_folder_with_any_target_trains_through_the_notebook(voltage_folder, tmp_path, monkeypatch, notebook,
                                                               model):
    folder, n = voltage_folder
    monkeypatch.setenv("COMPENDIUM_ROOT", str(tmp_path))  # records and figures of this run go here
    out = tmp_path / f"{notebook}.ipynb"
    params = {"property": "voltage", "dataset": "electrodes", "source": "folder", "path": str(folder),
              "profile": "smoke", "seed": 0}
    pm.execute_notebook(str(ROOT / "notebooks" / f"{notebook}.ipynb"), str(out), cwd=str(ROOT / "notebooks"),
                        parameters=params, progress_bar=False)
    runs = tmp_path / "results" / "runs"
    rec = json.loads((runs / f"{model}_electrodes_voltage_smoke_s0.json").read_text())
    assert rec["property"] == "voltage" and rec["dataset"] == "electrodes" and rec["unit"] is None
    assert sum(rec["split_sizes"].values()) <= n and rec["split_sizes"]["test"] >= 10
    assert rec["test_mae"] > 0
    text = out.read_text()
    assert "no published numbers for the 'electrodes' dataset" in text
