"""The experimental voltage table (lib.data.experimental) and the routes against it
(lib.cathodes.experiment)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lib.cathodes import experiment as X
from lib.data.electrodes import load_electrode_pairs
from lib.data.experimental import ExperimentalDataError, read_experimental_voltages


@pytest.fixture(scope="module")
def exp():
    return read_experimental_voltages()


def test_every_row_is_sourced_and_matched_or_says_why(exp, mirror):
    assert len(exp) >= 40
    for c in ("source_journal", "source_locator", "source_quote"):
        assert exp[c].str.strip().str.len().gt(0).all(), c
    assert {"Li", "Na"} <= set(exp["ion"])
    m = X.match_experiment(exp, load_electrode_pairs(mirror))
    assert set(m["match"]) <= {"same reaction", "other range", "no MP pair"}
    matched = m["match"] == "same reaction"
    assert matched.sum() >= 5
    assert m.loc[matched, "battery_id"].notna().all() and m.loc[matched, "mp_voltage"].notna().all()
    assert m.loc[~matched, "why"].str.len().gt(10).all()  # every unmatched row says why
    lfp = m.set_index("id").loc["lifepo4_olivine"]
    assert lfp["match"] == "same reaction" and lfp["n_candidates"] > 1


def _write(tmp_path, exp, **change):
    t = exp.astype(str)
    for k, v in change.items():
        t.loc[0, k] = str(v)
    p = tmp_path / "exp.csv"
    t.to_csv(p, index=False)
    return p


@pytest.mark.parametrize(
    "change, why",
    [
        ({"source_quote": ""}, "no source_quote"),
        ({"ion": "Fe"}, "unknown ion"),
        ({"voltage_exp": "high"}, "not a number"),
        ({"charged_formula": "FePO3"}, "frameworks differ"),
        ({"x_discharged": 2}, "x_discharged 2"),
        ({"discharged_formula": "FePO4", "charged_formula": "LiFePO4"}, "no more Li"),
    ],
)
def test_a_bad_row_is_refused_with_its_reason(tmp_path, exp, change, why):
    with pytest.raises(ExperimentalDataError, match=why):
        read_experimental_voltages(_write(tmp_path, exp, **change))


def test_polymorphs_are_chosen_by_the_lowest_discharged_energy():
    pairs = pd.DataFrame(
        {
            "ion": ["Li", "Li", "Li"],
            "low_formula": ["LiFePO4", "LiFePO4", "LiFePO4"],
            "high_formula": ["FePO4", "FePO4", "Fe2(PO4)2"],
            "battery_id": ["a_Li", "b_Li", "c_Li"],
            "low_mpid": ["m1", "m2", "m3"],
            "avg_voltage": [3.0, 3.4, 3.3],
        }
    )
    exp = pd.DataFrame(
        {
            "id": ["lfp"],
            "ion": ["Li"],
            "discharged_formula": ["LiFePO4"],
            "charged_formula": ["FePO4"],
            "voltage_exp": [3.45],
        }
    )
    m = X.match_experiment(exp, pairs, pd.Series({"m1": -7.0, "m2": -7.1, "m3": -7.5}))
    assert m.loc[0, "battery_id"] == "c_Li" and m.loc[0, "n_candidates"] == 3  # Fe2(PO4)2 is FePO4 reduced
    assert m.loc[0, "mp_voltage"] == 3.3


def test_leave_one_chemistry_out_offset_by_hand():
    t = pd.DataFrame(
        {
            "id": list("abcd"),
            "route": "r",
            "voltage": [3.0, 3.0, 4.0, 2.0],
            "voltage_exp": [3.2, 3.4, 4.1, 2.3],
            "chemistry": ["oxide", "oxide", "phosphate", "sulfate"],
            "system": list("abcd"),
        }
    )
    o = X.loco_offset(t)
    # row a: the other chemistries' residuals are 0.1 and 0.3 -> +0.2; row c: 0.2, 0.4, 0.3 -> +0.3
    assert o["voltage"].to_numpy() == pytest.approx([3.2, 3.2, 4.3, 2.0 + np.mean([0.2, 0.4, 0.1])])
    assert set(o["route"]) == {"r+offset"}
    s = X.experiment_summary(pd.concat([t.assign(route="mp"), t.assign(route="r", voltage=t["voltage_exp"])]))
    assert s.iloc[0]["route"] == "r" and s.iloc[0]["mae"] == 0 and s.iloc[0]["vs_mp"] < 0


def test_the_route_closest_to_experiment_beats_mp_beyond_doubt():
    rng = np.random.default_rng(0)
    n = 30
    exp_v = rng.uniform(2.5, 4.5, n)
    rows = []
    for route, err in (("mp", 0.3 + rng.uniform(0, 0.05, n)), ("umlip_static_a", 0.1 + rng.uniform(0, 0.05, n)),
                       ("umlip_static_b", rng.choice([-0.05, 0.05], n)), ("umlip_static_c", 0.5 * np.ones(n))):
        rows.append(pd.DataFrame({"id": [f"r{k}" for k in range(n)], "route": route, "voltage": exp_v + err,
                                  "voltage_exp": exp_v, "chemistry": ["oxide", "phosphate", "sulfate"] * 10,
                                  "system": [f"s{k}" for k in range(n)]}))
    t = pd.concat(rows, ignore_index=True)
    t = pd.concat([t, X.loco_offset(t)], ignore_index=True)  # an offset route would be perfect here: never chosen
    c = X.closest_route(t, X.experiment_summary(t))
    assert c["route"] == "umlip_static_b" and c["potential"] == "b" and c["better_than_mp"]
    assert c["mae"] == pytest.approx(0.05) and c["sigma"] == pytest.approx(0.05) and c["vs_mp_ci_high"] < 0
    assert X.closest_route(t, X.experiment_summary(t), min_n=31) is None
