"""lib.cathodes.metrics, routes and defaults: intervals over chemical systems, every route as one long table,
the per-ion default potential the screen and lib.predict read."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lib.cathodes import defaults, routes
from lib.cathodes import metrics as cm


def test_system_of_a_pair_is_its_frameworks_elements():
    assert cm.system_of("LiFePO4", "Li") == "Fe-O-P"
    assert cm.system_of("Mg(CoO2)2", "Mg") == "Co-O"


def test_bootstrap_of_independent_errors_matches_the_normal_interval():
    rng = np.random.default_rng(3)
    e = rng.exponential(0.2, 900)
    lo, hi = cm.bootstrap_mae(e, np.arange(len(e)), n_boot=4000)
    se = e.std(ddof=1) / np.sqrt(len(e))
    assert lo == pytest.approx(e.mean() - 1.96 * se, abs=0.25 * se)
    assert hi == pytest.approx(e.mean() + 1.96 * se, abs=0.25 * se)


def test_bootstrap_resamples_systems_not_pairs():
    """Ten systems of 50 pairs that share their error: the interval is that of ten values, far wider than the
    one
    that takes 500 pairs as independent."""
    rng = np.random.default_rng(0)
    per_system = rng.exponential(0.2, 10)
    e = np.repeat(per_system, 50)
    groups = np.repeat(np.arange(10), 50)
    lo, hi = cm.bootstrap_mae(e, groups, n_boot=4000)
    nlo, nhi = cm.bootstrap_mae(e, np.arange(len(e)), n_boot=4000)
    assert (hi - lo) > 4 * (nhi - nlo)
    se10 = per_system.std(ddof=1) / np.sqrt(10)
    assert (hi - lo) == pytest.approx(2 * 1.96 * se10, rel=0.35)
    # one value everywhere: no spread to draw
    assert cm.bootstrap_mae(np.full(20, 0.3), groups[:20]) == pytest.approx((0.3, 0.3))


def test_paired_difference_of_a_shifted_route_is_the_shift():
    rng = np.random.default_rng(1)
    err = np.abs(rng.normal(0, 0.2, 300))
    g = rng.integers(0, 60, 300)
    d = cm.paired_difference(err + 0.1, err, g)
    assert (
        d["diff"] == pytest.approx(0.1)
        and d["ci_low"] == pytest.approx(0.1)
        and d["ci_high"] == pytest.approx(0.1)
    )
    worse = cm.paired_difference(err + rng.uniform(0, 0.2, 300), err, g)
    assert 0 < worse["ci_low"] < worse["diff"] < worse["ci_high"]
    with_gap = cm.paired_difference(np.r_[err, np.nan], np.r_[err, 1.0], np.r_[g, 99])
    assert with_gap["n"] == 300  # a pair one route lacks is left out of both


def _long():
    rng = np.random.default_rng(2)
    n = 400
    ion = np.where(np.arange(n) < 300, "Li", "Na")
    ref = rng.uniform(2, 4.5, n)
    system = [f"S{k % 80}" for k in range(n)]
    good = ref + rng.normal(0, 0.1, n)
    bad = ref + rng.normal(0, 0.4, n)
    parts = []
    for route, v in (
        ("umlip_static_chgnet", bad),
        ("umlip_static_sevennet", good),
        ("umlip_static_chgnet_r2scan", ref + 0.01),
    ):
        v = v.copy()
        v[:5] = np.nan
        parts.append(
            pd.DataFrame(
                {
                    "battery_id": [f"b{k}" for k in range(n)],
                    "ion": ion,
                    "system": system,
                    "route": route,
                    "voltage": v,
                    "reference": ref,
                    "error": ["failed"] * 5 + [""] * (n - 5),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def test_route_summary_and_the_per_ion_table_read_by_the_screen(tmp_path):
    long = _long()
    s = cm.route_summary(long)
    row = s[(s.route == "umlip_static_sevennet") & (s.ion == "Li")].iloc[0]
    assert row["n"] == 295 and row["n_missing"] == 5
    assert row["ci_low"] < row["mae"] < row["ci_high"]
    assert 0.06 < row["mae"] < 0.1
    paired = pd.concat([cm.paired_table(long, r) for r in long["route"].unique()])
    path = defaults.write_table(s, paired, tmp_path / "potential_by_ion.csv")
    t = pd.read_csv(path)
    # the r2SCAN route is closest to these made-up references but not eligible (another level of theory)
    assert defaults.potential_by_ion(path) == {"Li": "sevennet", "Na": "sevennet"}
    li = t.set_index("ion").loc["Li"]
    assert li["runner_up"] == "chgnet" and li["gain_ci_low"] > 0  # chgnet − sevennet, clearly positive
    assert defaults.potential_for("Li", path) == "sevennet"
    assert defaults.potential_for("Cs", path) == defaults.FALLBACK
    errors = tmp_path / defaults.ERRORS.name  # every static route's errors per ion, beside the table
    q = defaults.sigma_for("Na", "chgnet", errors)
    assert q == pytest.approx(s.set_index(["route", "ion"]).loc[("umlip_static_chgnet", "Na"), "q68"], abs=1e-4)
    assert np.isnan(defaults.sigma_for("Cs", "chgnet", errors))


def test_the_screen_and_predict_read_the_per_ion_table(tmp_path, monkeypatch):
    path = tmp_path / "potential_by_ion.csv"
    pd.DataFrame({"ion": ["Li", "Na"], "potential": ["sevennet_mf0", "chgnet"]}).to_csv(path, index=False)
    monkeypatch.setattr(defaults, "TABLE", path)
    from lib.cathodes import screen

    assert screen.screen_potential("Li").name == "sevennet-mf-0-pbe"
    assert screen.screen_potential("Na").name == "chgnet-0.3.0"
    assert screen.screen_potential("Na", "sevennet").name == "sevennet-0"
    from lib import predict

    assert predict.voltage_potential("Na", None) == "chgnet"
    assert predict.voltage_potential("Na", "sevennet") == "sevennet"


def test_the_shipped_per_ion_table_names_known_potentials():
    from lib.cathodes.potentials import POTENTIALS, SCALES

    table = defaults.potential_by_ion()
    assert table, "pretrained/potential_by_ion.csv is missing: make bench BENCH=electrodes writes it"
    assert set(table.values()) <= {k for k in POTENTIALS if SCALES[k] == "total"}
    assert "Li" in table


def test_relaxed_sample_is_stratified_in_every_prefix():
    pairs = pd.DataFrame({"ion": ["Li"] * 1000 + ["Na"] * 200 + ["Cs"] * 40})
    s = routes.relaxed_sample(pairs, n_li=400, n_other=50)
    assert s["ion"].value_counts().to_dict() == {"Li": 400, "Na": 50}
    head = s.iloc[:90]["ion"].value_counts()
    assert head["Li"] == pytest.approx(80, abs=2) and head["Na"] == pytest.approx(10, abs=2)


class _Counting:
    """A stand-in potential: energy per atom = -(mean atomic number), counting how many structures it
    computed."""

    name, scale, can_relax = "counting", "total", True

    def __init__(self):
        self.computed = 0

    def compute(self, structures):
        self.computed += len(structures)
        return np.array([-float(np.mean(s.atomic_numbers)) for s in structures])


def test_static_energies_are_cached_resumed_and_read_back_only(tmp_path):
    from pymatgen.core import Lattice, Structure

    from lib.cathodes.relax import static_energies

    ss = [Structure(Lattice.cubic(3 + 0.1 * k), ["Li", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]) for k in range(10)]
    m = _Counting()
    e = static_energies(m, ss[:6], m.compute, cache=tmp_path)
    assert m.computed == 6 and e == pytest.approx(np.full(6, -5.5))
    again = static_energies(m, ss, m.compute, cache=tmp_path, cached_only=True)  # nothing computed
    assert m.computed == 6 and np.isfinite(again[:6]).all() and np.isnan(again[6:]).all()
    static_energies(m, ss, m.compute, cache=tmp_path)  # resumes: only the four missing ones
    assert m.computed == 10


def test_a_potential_with_half_its_energies_is_not_ranked(tmp_path):
    long = _long()
    half = long["route"].eq("umlip_static_sevennet") & (long["battery_id"].str[1:].astype(int) % 2 == 0)
    long.loc[half, "voltage"] = np.nan  # the best one, half pending
    s = cm.route_summary(long)
    path = defaults.write_table(s, pd.DataFrame(columns=["route", "best", "ion", "ci_low", "ci_high"]),
                                tmp_path / "t.csv")
    assert defaults.potential_by_ion(path) == {"Li": "chgnet", "Na": "chgnet"}


def test_one_energy_model_protocol_for_predictors_and_potentials():
    from lib.cathodes import potentials as P
    from lib.cathodes import screen

    def predict(crystals):
        return np.full(len(crystals), -1.0), np.full(len(crystals), 0.1)

    m = P.energy_model(predict)
    assert isinstance(m, P.EnergyModel) and m.scale == "formation" and m.ion_energy("Li") == 0.0
    assert m.energies([])[0].shape == (0,)
    pot = P.get_potential("chgnet")  # not loaded: constructing it is cheap
    assert P.energy_model(pot) is pot and isinstance(pot, P.EnergyModel)
    with pytest.raises(P.EnergyModelError, match="neither"):
        P.energy_model(42)
    frame = pd.DataFrame({"discharged": [None], "charged": [None]})
    with pytest.raises(P.EnergyModelError, match="formation energies"):
        screen._predict_states(frame, pot)  # a total-energy model cannot score the GNN stage
