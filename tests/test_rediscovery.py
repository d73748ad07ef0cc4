"""lib.cathodes.rediscovery and the every-framework generator of lib.cathodes.candidates (issue 41, items 1
and 4): a held-out system reaches no prototype, no hull and no model; the data-mined substitutions are
pymatgen's, charge-balanced and deduplicated; the generator's count; a killed run resumes; the summary's
arithmetic."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition, Species

from lib.cathodes import candidates as C
from lib.cathodes import rediscovery as R
from lib.cathodes import stability as st
from lib.data import load_dataset
from lib.data.electrodes import load_electrode_pairs

#: a small real chemistry: Li pair frameworks of Mn, Fe, Co phosphates and oxides
ELEMENTS = ("Li", "Mn", "Fe", "Co", "P", "O")
SMALL = C.FrameworkSize(None, max_atoms=28, metals=("Mn", "Fe", "Co", "Ni"), threshold=1e-3, max_probable=3,
                        ion_exchange=False, ions=("Li",), extra=False, elements=ELEMENTS)


@pytest.fixture(scope="module")
def pairs(mirror) -> pd.DataFrame:
    return load_electrode_pairs(mirror=mirror)


@pytest.fixture(scope="module")
def cgcnn(mirror) -> pd.DataFrame:
    return load_dataset("cgcnn", source="mirror", mirror=mirror, progress=False, verbose=False)


def _within(table: pd.DataFrame, elements=ELEMENTS) -> pd.DataFrame:
    allowed = set(elements)
    keep = [{e.symbol for e in c.to_structure().composition} <= allowed for c in table["structure"]]
    return table[keep].reset_index(drop=True)


@pytest.fixture(scope="module")
def small(pairs, cgcnn) -> R.Sources:
    """The sources restricted to ELEMENTS (the mirror, MP's Li pairs, their structures as the known ones)."""
    p = pairs[pairs["ion"].eq("Li")]
    p = p[[set(Composition(f).as_dict()) <= set(ELEMENTS) for f in p["formula_discharged"]]]
    p = p.reset_index(drop=True)
    m = _within(cgcnn)
    known = pd.concat([m[["material_id", "structure"]],
                       pd.DataFrame({"material_id": [*p["high_mpid"], *p["low_mpid"]],
                                     "structure": [*p["charged"], *p["discharged"]]})],
                      ignore_index=True).drop_duplicates("material_id").reset_index(drop=True)
    return R.Sources(p, None, m, known)


@pytest.fixture(scope="module")
def frameworks(small) -> list[C.Framework]:
    """Olivine, layered and other LiMO2 frameworks of the small chemistry: the first two of each formula
    (ten)."""
    fws = SMALL.frameworks(small.pairs)
    out = []
    for formula in ("LiFePO4", "LiMnPO4", "LiCoPO4", "LiMnO2", "LiFeO2"):
        out += [f for f in fws if f.formula == formula][:2]
    assert any(f.id == "mp-19017" for f in out)  # olivine LiFePO4
    return sorted(out, key=lambda f: (len(f), f.id))


# ----------------------------------------------------------------------------------------------
# (a) a held-out chemical system reaches no prototype, no hull phase, no model
# ----------------------------------------------------------------------------------------------


def test_held_out_system_reaches_no_framework_hull_or_model(pairs, small, frameworks):
    held = R.held_out_systems(R.Positive("LiFePO4"))
    assert held == ("Fe-Li-O-P", "Fe-Na-O-P")
    every = C.find_frameworks(pairs, None, max_atoms=80)
    some = [f for f in every if {"Fe", "Li", "O", "P"} <= f.elements]
    assert len(some) > 5  # not vacuous: MP's pairs hold many Fe-Li-O-P frameworks
    blind = C.find_frameworks(pairs, None, max_atoms=80, exclude_systems=held)
    assert not [f for f in blind if C.held_out(f.elements, held)]
    assert len(blind) == len([f for f in every if not C.held_out(f.elements, held)])
    assert any(f.formula == "LiMnPO4" for f in blind) and any(f.system == "Li-Mn-O-P" for f in blind)

    # the hull: every phase of Fe-Li-O-P (LiFePO4, Li3Fe2(PO4)3, ...) is out, Fe-O-P (FePO4) and Li-O-P stay
    class Flat:
        name, scale = "flat", "total"

        def energies(self, structures):
            return np.full(len(structures), -5.0), None

    hull = st.SystemHull(Flat(), small.known, exclude_systems=held, cache=None, archive_dir=None)
    phases = hull.phases(["Fe", "Li", "O", "P"])
    assert phases and not [p for p in phases if {"Fe", "Li", "O", "P"} <= p.elements]
    assert any(p.elements == {"Fe", "O", "P"} for p in phases)
    assert any(v.startswith("excluded system Fe-Li-O-P") for v in hull.excluded.values())

    # the models: no training pair or formation energy of Fe-Li-O-P, no pair of the Fe-O-P framework
    bm = R.BlindModels(small, ions=("Li",), max_iter=20)
    pv, pf = bm.masks(held, ["Fe-O-P"])
    assert (~pv).sum() > 0 and (~pf).sum() > 0
    assert not any(C.held_out(e, held) for e, ok in zip(bm.pair_elements, pv, strict=True) if ok)
    assert not any(C.held_out(e, held) for e, ok in zip(bm.mirror_elements, pf, strict=True) if ok)
    assert "Fe-O-P" not in set(bm.pair_framework[pv])
    lfp = small.pairs.loc[small.pairs["formula_discharged"].eq("LiFePO4"), "battery_id"].astype(str)
    assert len(lfp) and set(lfp).isdisjoint(set(bm.pair_ids[pv]))
    bm.fit(held, ["Fe-O-P"])
    assert bm.training["pairs"] == int(pv.sum()) and bm.training["mirror"] == int(pf.sum())


def test_pool_without_held_out_frameworks_is_the_generator_without_them(frameworks, tmp_path):
    """Keeping a pool candidate when some framework outside H generates it gives exactly the candidates of the
    generator run without H's frameworks (same number per formula)."""
    assert {f.formula for f in frameworks} == {"LiFePO4", "LiMnPO4", "LiCoPO4", "LiMnO2", "LiFeO2"}
    m = R.build_pool(frameworks, SMALL, tmp_path / "pool", chunk_frameworks=5)
    rows = R.read_pool(tmp_path / "pool")
    cands = rows[rows["kind"] == "candidate"].reset_index(drop=True)
    assert m["done"] and len(cands) == sum(c["candidates"] for c in m["chunks"])
    gen = R.generators(rows)
    for positive in ("LiFePO4", "LiMnO2"):
        held = R.held_out_systems(R.Positive(positive))
        alive = np.array([any(not C.held_out(C.system_set(g[0]), held) for g in gen[c])
                          for c in cands["candidate_id"]])
        others = [f for f in frameworks if not C.held_out(f.elements, held)]
        direct = [r for r in C.stream_candidates(others, SMALL) if r["kind"] == "candidate"]
        assert Counter(cands.loc[alive, "formula"]) == Counter(r["formula"] for r in direct)
        # the held-out positive is still generated, from another framework
        assert positive in set(cands.loc[alive, "formula"])


# ----------------------------------------------------------------------------------------------
# (b) pymatgen's data-mined substitutions: its probabilities, charge balance, deduplication
# ----------------------------------------------------------------------------------------------


def test_probability_route_is_pymatgens_substitutor():
    from pymatgen.analysis.structure_prediction.substitutor import Substitutor

    route = C.ProbabilityRoute(threshold=1e-2)
    species = [Species("Fe", 2), Species("P", 5), Species("O", -2)]
    ours = {tuple(sorted((str(k), str(v)) for k, v in mp.items())): p for p, mp in route.maps(species)}
    theirs = {}
    for d in Substitutor(threshold=1e-2).pred_from_list(species):
        new = d["substitutions"]
        if all(v.symbol in C.PALETTE for v in new.values()) and any(k != v for k, v in new.items()):
            theirs[tuple(sorted((str(k), str(v)) for k, v in new.items()))] = d["probability"]
    assert ours.keys() == theirs.keys() and len(ours) > 3
    assert all(np.isclose(ours[k], theirs[k]) for k in ours)
    assert all(p > 1e-2 for p in ours.values())
    assert (("Fe2+", "Mn2+"), ("O2-", "O2-"), ("P5+", "P5+")) in ours  # LiMnPO4 from LiFePO4


def test_probability_candidates_are_balanced_probable_and_deduplicated(small, frameworks):
    olivine = next(f for f in frameworks if f.id == "mp-19017")
    size = C.FrameworkSize(None, metals=(), threshold=1e-3, max_probable=15, ion_exchange=False, ions=("Li",))
    known = C.KnownIndex(small.known)
    rows = list(C.stream_candidates([olivine], size, known))
    cands = [r for r in rows if r["kind"] == "candidate"]
    assert len(cands) >= 3 and {r["route"] for r in rows} == {"probability"}
    for r in cands:
        assert r["probability"] > 1e-3
        for s in (r["discharged"], r["charged"]):
            comp = s.to_structure().composition
            assert C.oxidation_guess(comp) is not None and comp.oxi_state_guesses(max_sites=-1)
        C.check_pair(Composition(r["formula_charged"]), Composition(r["formula"]), "Li")
    # Fe2+ -> Mn2+ on olivine LiFePO4 is olivine LiMnPO4: found among the known structures
    mn = next(r for r in cands if r["formula"] == "LiMnPO4")
    assert mn["known_as"] and mn["known_as"] in set(small.known["material_id"])
    sm = StructureMatcher()
    ref = small.known.set_index("material_id").loc[mn["known_as"], "structure"].to_structure()
    assert sm.fit(mn["discharged"].to_structure(), ref)
    # the same framework twice: every second substitution is a duplicate of the first one's
    again = list(C.stream_candidates([olivine, olivine], size, None))
    firsts = [r for r in again if r["framework_index"] == 0 and r["kind"] == "candidate"]
    seconds = [r for r in again if r["framework_index"] == 1]
    assert len(seconds) == len([r for r in again if r["framework_index"] == 0])
    assert all(r["kind"] == "dropped" and r["category"] == "duplicate" for r in seconds if r["formula"])
    assert {r["duplicate_of"] for r in seconds if r["formula"]} == {r["candidate_id"] for r in firsts}


# ----------------------------------------------------------------------------------------------
# (c) how many candidates
# ----------------------------------------------------------------------------------------------


def test_count_formula_and_the_quick_profile(pairs, frameworks):
    route = C.ProbabilityRoute(1e-3)
    n = C.count_substitutions(frameworks, SMALL, route)
    rows = list(C.stream_candidates(frameworks, SMALL, probable=route))
    assert n == len(rows) > 0  # every substitution ends as a candidate or a dropped row
    quick = C.FRAMEWORK_SIZES["quick"]
    fws = quick.frameworks(pairs)
    assert len(fws) > 1000 and max(len(f) for f in fws) <= quick.max_atoms
    jobs = C.count_substitutions(fws, quick, route)  # lazy: no candidate is built
    sample = fws[::100]
    kept = sum(r["kind"] == "candidate" for r in C.stream_candidates(sample, quick, probable=route))
    share = kept / C.count_substitutions(sample, quick, route)
    # the generator yields >= 10,000 candidates (the kept share of a sample; make bench BENCH=screen counts
    # all of them)
    assert jobs * share >= 10_000 and jobs >= 20_000
    assert C.FRAMEWORK_SIZES["large"].n_frameworks is None and C.FRAMEWORK_SIZES["large"].extra


# ----------------------------------------------------------------------------------------------
# (d) a killed run resumes
# ----------------------------------------------------------------------------------------------


def test_a_killed_pool_resumes(frameworks, tmp_path):
    m1 = R.build_pool(frameworks, SMALL, tmp_path / "a", chunk_frameworks=4, stop_after_chunks=1)
    assert not m1["done"] and m1["next_framework"] == 4 and len(m1["chunks"]) == 1
    first = dict(m1["chunks"][0])
    m2 = R.build_pool(frameworks, SMALL, tmp_path / "a", chunk_frameworks=4)
    assert m2["done"] and m2["chunks"][0] == first  # the first chunk was read back, not redone
    whole = R.build_pool(frameworks, SMALL, tmp_path / "b", chunk_frameworks=4)
    a, b = R.read_pool(tmp_path / "a", structures=True), R.read_pool(tmp_path / "b", structures=True)
    assert a["candidate_id"].tolist() == b["candidate_id"].tolist() and whole["done"]
    assert a["duplicate_of"].tolist() == b["duplicate_of"].tolist()  # the duplicate index was rebuilt
    assert all((x is None and y is None) or x.equals(y)
               for x, y in zip(a["discharged"], b["discharged"], strict=True))


def test_a_pool_built_in_parallel_equals_the_sequential_one(frameworks, tmp_path):
    from concurrent.futures import ThreadPoolExecutor  # the protocol of a Dask client: submit, result

    seq = R.build_pool(frameworks, SMALL, tmp_path / "seq", chunk_frameworks=4)
    with ThreadPoolExecutor(2) as ex:  # killed after one chunk, then finished: resumes like the stream
        m1 = R.build_pool(frameworks, SMALL, tmp_path / "par", chunk_frameworks=4, client=ex, stop_after_chunks=1)
        assert not m1["done"] and m1["next_framework"] == 4
        par = R.build_pool(frameworks, SMALL, tmp_path / "par", chunk_frameworks=4, client=ex)
    assert par["done"] and [c["frameworks"] for c in par["chunks"]] == [c["frameworks"] for c in seq["chunks"]]
    a, b = R.read_pool(tmp_path / "seq"), R.read_pool(tmp_path / "par")
    for col in ("candidate_id", "kind", "category", "duplicate_of", "known_as", "formula"):
        assert a[col].fillna("").tolist() == b[col].fillna("").tolist(), col
    assert (b["category"] == "duplicate").sum() > 0  # duplicates across chunks were found in the merge


def test_a_killed_rediscovery_resumes(small, frameworks, tmp_path, monkeypatch):
    ctx = R.context("test", root=tmp_path, src=small, frameworks=frameworks, size=SMALL, progress=False,
                    ions=("Li",), max_iter=20)
    positives = [R.Positive("LiFePO4", source="test"), R.Positive("LiMnO2", source="test")]
    real = R.run_positive
    calls = []

    def dies_on_the_second(pos, c):
        calls.append(pos.formula)
        if pos.formula == "LiMnO2":
            raise KeyboardInterrupt  # the run is killed here
        return real(pos, c)

    monkeypatch.setattr(R, "run_positive", dies_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        R.run(positives, ctx, progress=False)
    files = sorted(p.name for p in (tmp_path / "test" / "positives").glob("*.json"))
    assert files == ["LiFePO4_Li.json"]
    calls.clear()
    monkeypatch.setattr(R, "run_positive", lambda pos, c: (calls.append(pos.formula), real(pos, c))[1])
    res = R.run(positives, ctx, progress=False)
    assert calls == ["LiMnO2"] and res["cached"].tolist() == [True, False]
    lfp = json.loads((tmp_path / "test" / "positives" / "LiFePO4_Li.json").read_text())
    assert lfp["formula"] == "LiFePO4" and lfp["held_out_systems"] == ["Fe-Li-O-P", "Fe-Na-O-P"]
    assert lfp["regenerated"] and lfp["framework_system"] != "Fe-Li-O-P"  # from another framework
    source = ctx.frameworks[lfp["structure_from"].split(":")[0]]
    assert not C.held_out(source.elements, lfp["held_out_systems"])
    # a candidate whose pool copy came from a held-out framework is rebuilt from one outside (no held-out
    # geometry)
    held = R.held_out_systems(R.Positive("LiFePO4"))
    cands = ctx.pool.cands
    alive = R.alive_mask(ctx.pool, held)
    inside = [c for c, s, ok in zip(cands["candidate_id"], cands["framework_system"], alive, strict=True)
              if ok and C.held_out(C.system_set(s), held)]
    assert inside  # e.g. LiMnPO4 from olivine LiFePO4 (Fe->Mn), also made from LiCoPO4 (Co->Mn)
    st = R.blind_structures(ctx, inside[:3], held)
    pool_copy = R.read_pool(ctx.folder / "pool", structures=True, ids=inside[:3]).set_index("candidate_id")
    sm = StructureMatcher()
    for cid, r in st.iterrows():
        fid = r["built_from"].split(":")[0]
        assert fid != r["framework_id"] and not C.held_out(ctx.frameworks[fid].elements, held)
        assert sm.fit(r["discharged"].to_structure(), pool_copy.loc[cid, "discharged"].to_structure())
    assert 0 < lfp["rank_pct"] <= 100 and lfp["blind"]["stage1_models"]
    again = R.run(positives, ctx, progress=False)
    assert again["cached"].all() and again["rank_pct"].tolist() == res["rank_pct"].tolist()


def test_potential_stage_on_a_blind_hull(small, frameworks, tmp_path):
    """Stage 2 with a stand-in potential: the top candidates' energies, a SystemHull without the held-out
    systems (LiFePO4's own phases never reach it), voltages from the same energies, the positive's rank."""

    class Stub:
        name, scale = "stub", "total"

        def __init__(self):
            self.asked = []

        def energies(self, structures):
            self.asked += [s.to_structure().composition.reduced_formula if hasattr(s, "to_structure")
                           else s.composition.reduced_formula for s in structures]
            return np.array([-5.0 - 0.1 * len(s) / 28 for s in structures]), None

        def ion_energy(self, ion):
            return -1.9

    ctx = R.context("stage2", root=tmp_path, src=small, frameworks=frameworks, size=SMALL, progress=False,
                    ions=("Li",), max_iter=20)
    ctx.potential, ctx.top = Stub(), 5
    ctx.system_hull_kwargs = {"cache": None, "archive_dir": None}
    row = R.run_positive(R.Positive("LiFePO4"), ctx)
    s2 = row["stage2"]
    assert s2["selected"] == 5 and s2["model"] == "stub" and "in-sample" in s2["note"]
    assert 0 <= s2["passing"] <= 5
    # the hull held no Fe-Li-O-P phase: the stand-in was asked for no Fe-Li-O-P structure but the candidates'
    def lfp(f):
        return {"Fe", "Li", "O", "P"} <= set(Composition(f).as_dict())

    chosen = ctx.pool.cands.set_index("candidate_id").loc[s2["selected_ids"], "formula"]
    assert len(ctx.potential.asked) > 10  # the candidates' 10 states and the hull's phases
    assert sum(map(lfp, ctx.potential.asked)) == sum(map(lfp, chosen))


# ----------------------------------------------------------------------------------------------
# (e) the summary's arithmetic, and the ranking
# ----------------------------------------------------------------------------------------------


def test_summary_statistics_by_hand():
    t = pd.DataFrame({
        "formula": ["A", "B", "C", "D", "E", "F"],
        "evaluable": [True, True, True, True, True, False],
        "regenerated": [True, True, True, False, True, False],
        "passes": [True, True, False, False, True, False],
        "rank_pct": [2.0, 10.0, 100.0, 100.0, 4.0, 100.0],
    })
    s = R.summarize(t)
    assert s["n"] == 5 and s["not_evaluable"] == 1
    assert s["regenerated_share"] == pytest.approx(4 / 5)
    assert s["median_rank_pct"] == pytest.approx(10.0)  # median of 2, 4, 10, 100, 100
    assert s["median_rank_pct_passing"] == pytest.approx(4.0)  # median of 2, 4, 10
    assert s["in_top"] == 2 and s["enrichment_top5"] == pytest.approx((2 / 5) / 0.05)  # 8x random
    assert R.rank_percentile(3, 60) == pytest.approx(5.0) and R.rank_percentile(np.nan, 60) == 100.0


def test_stage1_filters_and_ranks_by_specific_energy():
    class Fixed:
        def predict(self, xv, xf):
            return xv[:, 0], xf[:, 0]

    cands = pd.DataFrame({"candidate_id": list("abcde"), "formula": ["X"] * 5,
                          "capacity_grav": [100.0, 200.0, 150.0, 300.0, 120.0]})
    pool = R.ScoredPool(cands, np.array([[3.0], [4.0], [2.0], [5.5], [3.5]]),
                        np.array([[-1.0], [-0.95], [-1.0], [-1.0], [-0.5]]), [("S",)] * 5, pd.DataFrame())
    hull = np.full(5, -1.0)
    s = R.stage1(pool, Fixed(), hull, np.arange(5))
    # e_hull: 0, 0.05, 0, 0, 0.5; voltage window 2.5-4.8: c (2 V) and d (5.5 V) fail, e is 0.5 above the hull
    assert s["passes"].tolist() == [True, True, False, False, False]
    assert s["specific_energy"].tolist() == [300.0, 800.0, 300.0, 1650.0, 420.0]
    assert s.set_index("candidate_id")["rank"].loc[["a", "b"]].tolist() == [2.0, 1.0]
    assert np.isnan(s["rank"].iloc[2:]).all() and s.set_index("candidate_id")["rank_all"]["d"] == 1.0


def test_stage1_expected_ranking_weighs_by_the_probability_to_pass():
    from scipy.stats import norm

    class Fixed:
        sigma = {"sigma_v": 0.5, "sigma_ef": 0.1}

        def predict(self, xv, xf):
            return xv[:, 0], xf[:, 0]

    # a: stable, mid-window; b: more specific energy but 0.08 eV/atom above the hull and near the top of the window
    cands = pd.DataFrame({"candidate_id": ["a", "b"], "formula": ["X", "Y"], "capacity_grav": [150.0, 160.0]})
    pool = R.ScoredPool(cands, np.array([[3.5], [4.6]]), np.array([[-1.1], [-0.92]]), [("S",)] * 2, pd.DataFrame())
    hull = np.full(2, -1.0)
    se = R.stage1(pool, Fixed(), hull, np.arange(2))
    ex = R.stage1(pool, Fixed(), hull, np.arange(2), rank_by="expected")
    assert se.set_index("candidate_id")["rank"].tolist() == [2.0, 1.0]  # b: 736 Wh/kg against a's 525
    assert ex.set_index("candidate_id")["rank"].tolist() == [1.0, 2.0]  # b's chance to pass is lower
    pa = norm.cdf((0.1 + 0.1) / 0.1) * (norm.cdf((4.8 - 3.5) / 0.5) - norm.cdf((2.5 - 3.5) / 0.5))
    assert ex["score"].iloc[0] == pytest.approx(525.0 * pa)
    pb = norm.cdf((0.1 - 0.08) / 0.1) * (norm.cdf((4.8 - 4.6) / 0.5) - norm.cdf((2.5 - 4.6) / 0.5))
    assert ex["score"].iloc[1] == pytest.approx(736.0 * pb)
    with pytest.raises(ValueError, match="rank_by"):
        R.stage1(pool, Fixed(), hull, np.arange(2), rank_by="luck")


def test_positives_files(tmp_path):
    csv = tmp_path / "p.csv"
    csv.write_text("id,ion,discharged_formula\na,Li,LiFePO4\nb,Na,Na2FeP2O7\nc,Li,LiFePO4\n")
    assert [(p.formula, p.ion) for p in R.read_positives(csv)] == [("LiFePO4", "Li"), ("Na2FeP2O7", "Na")]
    txt = tmp_path / "p.txt"
    txt.write_text("# cathodes\nLiCoO2\nLiMn2O4 Li\nNaCrO2 Na  # layered\n")
    assert [(p.formula, p.ion) for p in R.read_positives(txt)] == [("LiCoO2", "Li"), ("LiMn2O4", "Li"),
                                                                    ("NaCrO2", "Na")]
    with pytest.raises(ValueError, match="holds no Na"):
        R.read_positives(tmp_path / "bad.txt") if (tmp_path / "bad.txt").write_text("LiCoO2 Na\n") else None
    ps = R.default_positives()
    assert ("LiFePO4", "Li") in {(p.formula, p.ion) for p in ps} and len(ps) >= 20
    assert ("Li4Ti5O12", "Li") not in {(p.formula, p.ion) for p in ps}  # an anode (1.55 V)
