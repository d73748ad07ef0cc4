"""The lib functions behind 08_cathodes' tables: DFT consistency, the GNN's voltages, every route on a subset of
MP's pairs with the voltage model as a route (each table the chapter shows comes from one of these)."""

from __future__ import annotations

import numpy as np
import pytest

from lib import data
from lib.cathodes import benchmark as B
from lib.cathodes import routes, screen, voltage_model
from lib.data.electrodes import load_electrode_pairs


@pytest.fixture(scope="module")
def table():
    return data.load_dataset("cgcnn", source="auto", progress=False, verbose=False)


@pytest.fixture(scope="module")
def pairs(mirror):
    return load_electrode_pairs(mirror)


@pytest.fixture(scope="module")
def consistency(table, pairs):
    return B.dft_consistency(table, pairs)


def test_dft_consistency_of_the_mirror(consistency):
    d = consistency
    assert len(d.dft) == 451 and d.coverage.loc["both", "total"] == 451 and d.coverage["total"].sum() == 4401
    assert d.metrics.loc["all", "mae"] == pytest.approx(0.310, abs=0.002)
    assert d.metrics.loc["Li", "median_ae"] == pytest.approx(0.048, abs=0.002)
    assert d.causes["pairs"].sum() == len(d.outliers) == 85
    assert d.causes.loc["energies changed between releases", "pairs"] >= 55
    assert 360 <= d.metrics_2024.loc["all", "n"] <= 451 and d.metrics_2024.loc["all", "mae"] < 0.1
    assert 0 < d.multi_share[0] < 0.5 and 0 < d.multi_share[1] < 0.5


def test_voltages_2024_are_pymatgens(consistency):
    t = B.voltages_2024(consistency.dft.head(30), consistency.e2024)
    from lib.cathodes.electrodes import pair_properties

    ef = screen.ef_2024_by_id(consistency.e2024)
    r = t.iloc[0]
    p = pair_properties(r["charged"], r["discharged"], ef[r["high_mpid"]], ef[r["low_mpid"]], r["ion"])
    assert r["e2024_voltage"] == pytest.approx(p["voltage"])


def test_gnn_voltages_of_the_shipped_ensemble(table, pairs, consistency):
    g = B.gnn_voltages(
        table, pairs, consistency.dft, "shipped", known_ids=screen.known_cathode_ids(table, pairs)
    )
    assert g.predict.members == 3 and "shipped" in g.note
    mae = g.metrics.loc[("GNN vs MP", "Li"), "mae"]
    assert 0.5 < mae < 0.7  # 0.613 V with the 120-epoch ensemble
    assert g.amplification == pytest.approx(1.63, abs=0.05)
    assert g.ml["ml_voltage_std"].notna().all()


def test_the_voltage_model_as_a_route_says_where_it_is_in_sample(pairs):
    """The shipped correction trained on every usable pair (its card lists them): as a route it gives no voltage
    on a pair it was trained on; a list of training ids given in its place decides the same way."""
    import pandas as pd

    model, card = voltage_model.load()
    trained = voltage_model.training_ids()
    assert trained is not None and len(trained) > 4000
    sub = pd.concat([pairs[pairs["battery_id"].isin(trained)].head(3),
                     pairs[pairs["battery_id"].isin(trained)].iloc[100:103]], ignore_index=True)
    r = routes.voltage_model_route(sub, model, card)
    assert r["error"].str.contains("in sample").all() and r["voltage"].isna().all()
    r = routes.voltage_model_route(sub, model, trained_ids=set(sub["battery_id"].iloc[:3]))
    assert r["error"].iloc[:3].str.contains("in sample").all() and r["voltage"].iloc[:3].isna().all()
    assert r["voltage"].iloc[3:].notna().all() and (r["sigma"].iloc[3:] > 0).all()
    assert (r["route"] == "voltage_model").all()


def test_subset_is_seeded_and_ordered(pairs):
    a, b = routes.subset(pairs, 40), routes.subset(pairs, 40)
    assert len(a) == 40 and a["battery_id"].tolist() == b["battery_id"].tolist()
    assert routes.subset(pairs, 40, seed=1)["battery_id"].tolist() != a["battery_id"].tolist()
    pos = pairs.reset_index().set_index("battery_id").loc[a["battery_id"], "index"].to_numpy()
    assert np.all(np.diff(pos) > 0) and routes.subset(pairs, None) is pairs
