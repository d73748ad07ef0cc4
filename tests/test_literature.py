"""The published numbers in lib.literature: checked against the data they were obtained on."""

from __future__ import annotations

import math
import re

import pytest

from lib import literature
from lib.data import TARGETS

# The CGCNN paper split each of its three id lists (txie-93/cgcnn, data/material-data) 60:20:20, so its
# Table 1 training-set sizes must be 60 % of the list the property was trained on.
_ID_LIST = {"formation_energy_per_atom": "mp-ids-46744.csv", "energy_per_atom": "mp-ids-46744.csv",
            "efermi": "mp-ids-46744.csv", "band_gap": "mp-ids-27430.csv", "log10_K_VRH": "mp-ids-3402.csv",
            "log10_G_VRH": "mp-ids-3402.csv", "poisson_ratio": "mp-ids-3402.csv"}


@pytest.mark.parametrize("prop", sorted(_ID_LIST))
def test_cgcnn_paper_training_sizes_are_60_percent_of_its_id_lists(mirror, prop):
    n_ids = sum(1 for line in (mirror / _ID_LIST[prop]).read_text().splitlines() if line.strip())
    assert n_ids == int(_ID_LIST[prop].split("-")[-1].split(".")[0])  # the file holds what its name says
    (r,) = literature.reported("cgcnn", prop, "CGCNN paper")
    assert r.n_train == math.floor(0.6 * n_ids)


def test_every_reported_value_names_a_known_property_and_a_source():
    for r in literature.REPORTED:
        assert r.property in TARGETS, r
        assert r.source and r.where and r.citation, r
        # every number is copied, with its unit: no gaps, no silent zeros
        assert r.mae > 0 and r.unit, r


def test_hand_picked_cells_of_the_thesis():
    """A few cells typed from the thesis's text, one per table and kind of number."""
    (r,) = literature.reported("megnet", "band_gap", "thesis", "Table 6")
    assert (r.mae, r.mae_std, r.rmse, r.r2, r.r2_std, r.n_runs) == (0.531, 0.042, 0.814, 0.787, 0.018, 10)
    assert (r.train_time_s, r.train_time_std, r.train_device) == (5873, 53, "CPU")
    (r,) = literature.reported("soap_mlp", "log10_K_VRH", "thesis", "Table 6")
    assert (r.mae, r.rmse, r.train_time_s, r.train_device, r.n_runs) == (0.275, 0.354, 23, "GPU", 2)
    (r,) = literature.reported("cgcnn", "formation_energy_per_atom", "thesis", "Table 6")
    assert (r.mae, r.mae_std, r.train_time_s) == (0.083, 0.007, 17865) and "655 ± 39" in r.note
    (r,) = literature.reported("cgcnn", "log10_G_VRH", "thesis", "Table 4")
    assert (r.mae, r.n_train) == (0.142, 9258) and "0.069" in r.note
    (r,) = literature.reported("megnet", "band_gap", "MEGNet paper")
    assert (r.mae, r.n_train, r.epochs, r.dataset) == (0.33, 36720, ">1000", "megnet")
    (r,) = literature.reported("megnet", "log10_K_VRH", "thesis", "Table 5")
    assert (r.mae, r.n_train, r.epochs) == (0.117, 4664, "30")
    t6 = literature.thesis_table6()
    assert t6.shape[0] == 28 and t6["test_mae"].notna().all() and t6["test_r2"].notna().all()


_ROW = re.compile(r"([0-9.]+)\s*(?:<math>\\pm</math>|\$\\pm\$)\s*([0-9.]+)")
_NAMES = {"Energy": "energy_per_atom", "Formation energy": "formation_energy_per_atom",
          "Band-gap energy": "band_gap", "Fermi energy": "efermi", "Bulk modulus": "log10_K_VRH",
          "Shear modulus": "log10_G_VRH", "Poisson ratio": "poisson_ratio"}
_MODELS = {"CGCNN": "cgcnn", "MEGNet": "megnet", "SOAP-SVR": "soap_svr", "SOAP-MLP": "soap_mlp"}


def test_table6_equals_the_thesis_text(mirror):
    """Every cell of Table 6 (MAE, RMSE, R², mean and std) against the thesis's own text, where it is found
    (../shared/thesis/thesis.md beside the mirror); the project itself never reads it."""
    text_path = mirror.parent / "thesis" / "thesis.md"
    assert text_path.exists(), f"the thesis's text is expected at {text_path}"
    lines = text_path.read_text().split("**Table 6.")[1].split("**Figure 14.")[0].splitlines()
    seen, prop = 0, None
    for line in lines:
        cells = line.split("\t")
        if len(cells) < 5 or cells[1] not in _MODELS:
            continue
        prop = _NAMES.get(cells[0], prop)
        (r,) = literature.reported(_MODELS[cells[1]], prop, "thesis", "Table 6")
        vals = [tuple(map(float, _ROW.search(c).groups())) for c in cells[2:5]]
        assert vals == [(r.mae, r.mae_std), (r.rmse, r.rmse_std), (r.r2, r.r2_std)], (prop, cells[1])
        seen += 1
    assert seen == 28
