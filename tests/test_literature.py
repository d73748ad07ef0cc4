"""The published numbers in lib.literature: checked against the data they were obtained on."""

from __future__ import annotations

import math

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
        # a number is either copied (with its unit) or an explicit gap, never a silent zero
        assert (r.mae is None and literature.NOT_TRANSCRIBED in r.note) or (r.mae > 0 and r.unit), r
