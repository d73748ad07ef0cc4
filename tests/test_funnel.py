"""The screen's funnel: selection by the GNN, the uMLIP stage, the ranking and the counts (a stand-in potential)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lib import data
from lib.cathodes import candidates as C
from lib.cathodes import electrodes as E
from lib.cathodes import funnel as F
from lib.cathodes import hull as H
from lib.cathodes import potentials as P
from lib.cathodes import screen as S
from lib.cathodes import stability as ST
from lib.structures import as_structure


@pytest.fixture(scope="module")
def table():
    return data.load_dataset("cgcnn", source="auto", progress=False, verbose=False)


@pytest.fixture(scope="module")
def generated(table):
    size = C.SCREEN_SIZES["smoke"]
    protos = C.find_prototypes(table, E.read_pairs(), n_extra=0)
    return C.generate_candidates(table, protos, exclude="none", progress=False, **size.kwargs())


class Flat(P.UniversalPotential):
    """Every structure at its minimum (no force, no stress); energy per atom by the structure's Li fraction,
    so charged states (no Li) sit at -6 and discharged ones lower; one composition fails to relax."""

    name = "flat"

    def __init__(self, fail_formula: str | None = None):
        self.fail_formula = fail_formula

    def _e(self, s) -> float:
        return -6.0 - 2.0 * s.composition.get_atomic_fraction("Li")

    def efs(self, structures):
        out = []
        for s in structures:
            e = np.nan if s.composition.reduced_formula == self.fail_formula else self._e(s)
            out.append({"e": e, "f": np.zeros((len(s), 3)), "s": np.zeros((3, 3))})
        return out

    def energies(self, structures, progress=False):
        return np.array([self._e(as_structure(s)) for s in structures]), None

    def ion_energy(self, ion):
        return -1.9


def test_candidates_the_mirror_holds_are_kept_and_named_with_exclude_none(table, generated):
    cands, dropped = generated
    kept = cands[cands["known_as"] != ""]
    assert len(kept) >= 5 and (dropped["category"] != "in the mirror").all()
    assert {"LiMnPO4", "LiCoPO4", "LiNiPO4"} <= set(kept["formula"])  # the olivines re-created from LiFePO4
    assert kept.set_index("formula").loc["LiMnPO4", "known_as"] == "mp-18997"
    default, _ = C.generate_candidates(table, C.find_prototypes(table, E.read_pairs(), n_extra=0),
                                       progress=False, **C.SCREEN_SIZES["smoke"].kwargs())
    assert len(default) == len(cands) - len(kept) and (default["known_as"] == "").all()


def test_select_promising_orders_by_an_optimistic_hull_and_keeps_plausible_voltages():
    t = pd.DataFrame({"voltage": [3.0, 1.0, 3.5, 6.0, np.nan, 2.2],
                      "voltage_std": [0.1, 0.2, 0.1, 0.1, 0.1, 0.2],
                      "e_hull_discharged": [0.10, -0.2, 0.05, -0.5, 0.0, 0.08],
                      "ef_discharged_std": [0.08, 0.0, 0.0, 0.0, 0.0, 0.01]})
    sel = F.select_promising(t, top=3, v_window=(2.5, 4.8))
    # row 1 (1 V) and row 3 (6 V) cannot reach the window, row 4 is not scored; 0.10-0.08 < 0.05 < 0.08-0.01
    assert list(sel) == [0, 2, 5]
    assert list(F.select_promising(t, top=1)) == [0]
    assert len(F.select_promising(t.iloc[:0], top=3)) == 0


def test_refine_ranks_on_the_potentials_numbers_and_flags_failures(table, generated):
    cands, dropped = generated
    predict = lambda crystals: (np.full(len(crystals), -2.0), np.full(len(crystals), 0.05))  # noqa: E731
    dft = H.Hull(table)
    res = S.screen(cands, predict, dft, progress=False)
    fail = res["formula"].iloc[0]
    model = Flat(fail_formula=fail)
    hull = H.PotentialHull(dft, model, relaxed=False, window=0.0, max_atoms=40)
    ref = F.refine(res, model, hull, top=8, sigma_v={"Li": 0.2, "all": 0.3}, progress=False, cache=None)
    sel = ref[ref["selected"]]
    assert len(sel) == 8 and ref["selected"].sum() == 8
    assert (ref.loc[~ref["selected"], "stage"] == "GNN stage: not among the most promising").all()
    bad = sel[sel["formula"] == fail]
    if len(bad):  # a failed relaxation is flagged, never used
        assert bad["umlip_status"].str.contains("exploded").all() and bad["umlip_voltage"].isna().all()
        assert not bad["umlip_passes"].any()
    good = sel[sel["umlip_status"] == "converged"]
    assert len(good) and (good["umlip_voltage_std"] == 0.2).all()
    for _, r in good.iterrows():  # the voltage is pymatgen's on the potential's energies and the ion's metal
        p = E.pair_properties(r["umlip_charged"], r["umlip_discharged"], r["umlip_e_charged"],
                              r["umlip_e_discharged"], "Li", ion_energy=-1.9)
        assert r["umlip_voltage"] == pytest.approx(p["voltage"])
        assert r["dv_gnn"] == pytest.approx(r["umlip_voltage"] - r["voltage"])
    passing = ref[ref["umlip_passes"]]
    assert (passing["stage"] == "passes").all()
    assert sorted(passing["rank_umlip"]) == list(range(1, len(passing) + 1))
    if len(passing) > 1:
        order = passing.sort_values("rank_umlip")["umlip_specific_energy"].to_numpy()
        assert (np.diff(order) <= 0).all()
    counts = F.funnel_counts(cands, dropped, ref)
    n, d = counts["n"].to_numpy(), counts["dropped"].to_numpy()
    assert n[0] == cands.attrs["n_tried"] and n[3] == 8 and n[-1] == len(passing)
    assert (n[:-1] == n[1:] + d[1:]).all()  # every candidate is accounted for at every stage
    final = F.final_view(ref)
    assert len(final) == 8 and list(final["rank"]) == list(range(1, 9))
    assert final["passes"].iloc[: len(passing)].all()
    np.testing.assert_allclose(final.set_index("candidate_id").loc[passing["candidate_id"], "voltage"],
                               passing["umlip_voltage"])
    # ranked on the voltage model's numbers where the benchmark supports it (defaults.voltage_choice)
    ref2 = ref.assign(vm_voltage=ref["umlip_voltage"] + 0.5, vm_specific_energy=-ref["umlip_specific_energy"])
    f2 = F.final_view(ref2, rank_on="delta")
    assert f2.attrs["rank_on"] == "delta" and final.attrs["rank_on"] == "potential"
    np.testing.assert_allclose(f2.set_index("candidate_id").loc[passing["candidate_id"], "voltage"],
                               passing["umlip_voltage"] + 0.5)
    np.testing.assert_allclose(f2.set_index("candidate_id").loc[passing["candidate_id"], "potential_voltage"],
                               passing["umlip_voltage"])
    if len(passing) > 1:  # the order of the passing ones is reversed by the reversed specific energy
        assert f2["candidate_id"].iloc[0] == final["candidate_id"].iloc[len(passing) - 1]
    with pytest.raises(ValueError, match="rank_on"):
        F.final_view(ref, rank_on="gnn")


class Bumpy(Flat):
    """Flat, but a phase without Li of three or more elements sits 0.3 eV/atom higher: charged polyanion
    states (FePO4, MnPO4) lie 0.3 eV/atom above a hull of binaries, discharged ones on it."""

    name = "bumpy"

    def _e(self, s) -> float:
        c = s.composition
        return super()._e(s) + (0.3 if c.get_atomic_fraction("Li") == 0 and len(c.elements) >= 3 else 0.0)


def test_refine_judges_both_states_oxygen_and_volume_on_a_system_hull(table, generated, tmp_path):
    cands, dropped = generated
    predict = lambda crystals: (np.full(len(crystals), -2.0), np.full(len(crystals), 0.05))  # noqa: E731
    res = S.screen(cands, predict, H.Hull(table), progress=False)
    model = Bumpy()
    hull = ST.SystemHull(model, table[["material_id", "structure"]], cache=tmp_path, archive_dir=None)
    crit = F.Criteria(max_e_hull=0.1, max_e_hull_charged=0.2)
    ref = F.refine(res, model, hull, top=12, progress=False, cache=None, criteria=crit)
    conv = ref[ref["selected"] & ref["umlip_status"].eq("converged")]
    assert len(conv) >= 6
    for _, r in conv.iterrows():  # every number is the stability module's on the relaxed pair
        c, d = r["umlip_charged"], r["umlip_discharged"]
        assert r["umlip_e_hull_charged"] == pytest.approx(hull.e_above_hull(c, r["umlip_e_charged"]))
        assert r["umlip_e_hull_discharged"] == pytest.approx(0.0, abs=1e-6)  # linear in x: on the hull
        assert r["umlip_volume_change"] == pytest.approx(ST.volume_change(c, d, "Li", signed=True))
        o2 = ST.oxygen_release_onset(c, r["umlip_e_charged"], hull)
        assert r["o2_mu_onset"] == pytest.approx(o2.mu_o)
    poly = conv["umlip_charged"].map(lambda c: len(as_structure(c).composition.elements) >= 3)
    assert poly.any() and (~poly).any()  # both kinds among the relaxed ones: the criterion can fail
    np.testing.assert_allclose(conv.loc[poly, "umlip_e_hull_charged"], 0.3, atol=1e-6)
    assert conv.loc[poly, "umlip_why_not"].str.startswith("charged E_hull > 0.2").all()
    assert not conv.loc[~poly, "umlip_why_not"].str.startswith("charged").any()
    counts = F.funnel_counts(cands, dropped, ref).set_index("stage")
    assert counts.loc["charged state near its hull (E_hull ≤ 0.2 eV/atom)", "dropped"] == int(poly.sum())
    assert "volume change within the limit (no limit set)" in counts.index
    n, dd = counts["n"].to_numpy(), counts["dropped"].to_numpy()
    assert (n[:-1] == n[1:] + dd[1:]).all() and n[-1] == int(ref["umlip_passes"].sum())
    loose = F.refine(res, model, hull, top=12, progress=False, cache=None,
                     criteria=F.Criteria(max_e_hull=0.1, max_e_hull_charged=None))
    lw = loose.loc[conv.index, "umlip_why_not"]  # without the criterion they leave later, or pass
    assert not lw.str.startswith("charged").any() and (lw[poly] != conv.loc[poly, "umlip_why_not"]).all()
    assert (lw[~poly] == conv.loc[~poly, "umlip_why_not"]).all()
    assert ref.attrs["umlip"]["hull"] == "SystemHull" and ref.attrs["umlip"]["criteria"]["max_e_hull_charged"] == 0.2


def test_sigma_from_benchmark_is_the_quantile_of_the_errors():
    t = pd.DataFrame({"ion": ["Li"] * 20 + ["Na"] * 3, "avg_voltage": 3.0,
                      "umlip_relaxed_voltage": [3.0 + 0.01 * k for k in range(20)] + [3.5, 3.6, 3.7]})
    s = F.sigma_from_benchmark(t)
    assert s["Li"] == pytest.approx(np.quantile(np.arange(20) * 0.01, 0.683))
    assert s["Na"] == s["all"]  # fewer than 10 pairs: the pooled value


def test_run_screen_rediscovery_and_the_chapters_results(table, tmp_path):
    predict = lambda crystals: (np.full(len(crystals), -2.0), np.full(len(crystals), 0.05))  # noqa: E731
    size = C.SCREEN_SIZES["smoke"]
    run = F.run_screen(table, E.read_pairs(), predict, Flat(), size, top=5, sigma_v={"Li": 0.2}, cache=None,
                       hull="near")
    assert run.n_prototypes == 3 and len(run.candidates) == 35 and run.refined["selected"].sum() == 5
    assert run.counts["n"].iloc[0] == run.candidates.attrs["n_tried"]
    assert "5 relaxed with flat" in run.summary()
    top = run.top(3)
    assert len(top) == 3 and list(top["rank"]) == [1, 2, 3] and set(top.columns) <= set(F.TOP_COLUMNS)
    real, how = F.rediscovery(run)
    assert how["real"] == len(real) == int((run.candidates["known_as"] != "").sum())
    assert how["passing"] <= how["all_passing"] == int(run.refined["umlip_passes"].sum())
    assert list(real.columns) == list(F.REAL_COLUMNS)
    known = pd.DataFrame({"same_reaction": [True, True, False], "v_mp": [3.4, 2.9, 4.0],
                          "v_ml_screen": [3.0, 3.0, 1.0], "umlip_voltage": [3.5, 2.9, 1.0],
                          "vm_voltage": [3.4, 2.8, 1.0], "umlip_passes": [True, False, True]})
    ks = F.known_summary(known).set_index("route")
    assert ks.loc["GNN, unrelaxed", "mae"] == pytest.approx(0.25) and ks.loc["GNN, unrelaxed", "max"] == pytest.approx(0.4)
    assert ks.loc["uMLIP, relaxed", "within_0.3"] == 2 and ks["pass"].eq(1).all()
    long = pd.DataFrame({"battery_id": ["b"], "route": ["constant"], "voltage": [3.0]})
    dft = pd.DataFrame({"battery_id": ["b"], "charged": [None], "dft_voltage": [3.1]})
    written = F.write_results("smoke", tmp_path, dft, dft, pd.DataFrame(columns=["cause", "detail"]), long, run,
                              known)
    assert written["cathode_candidates_smoke.csv"] == 35
    back = pd.read_csv(tmp_path / "cathode_candidates_smoke.csv")
    assert "umlip_discharged" not in back and back["profile"].eq("smoke").all()
