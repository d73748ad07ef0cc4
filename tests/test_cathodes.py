"""lib.cathodes: candidates by substitution on the mirror's cathode prototypes, the hull, the ranking, and the
known-cathode check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition
from pymatgen.transformations.standard_transformations import SubstitutionTransformation

from lib import data
from lib.cathodes import candidates as C
from lib.cathodes import electrodes as E
from lib.cathodes import screen as S
from lib.cathodes.electrodes import composition_key, composition_keys
from lib.profiles import PROFILES


@pytest.fixture(scope="module")
def table(mirror) -> pd.DataFrame:
    return data.load_dataset("cgcnn", source="mirror", mirror=mirror, progress=False, verbose=False)


@pytest.fixture(scope="module")
def smoke(table):
    size = C.SCREEN_SIZES["smoke"]
    protos = C.find_prototypes(table, n_extra=size.n_extra)
    return protos, *C.generate_candidates(table, protos, progress=False, **size.kwargs())


@pytest.fixture(scope="module")
def hull(table) -> S.Hull:
    return S.Hull(table)


def _dft_predictor(table: pd.DataFrame, other: float = -1.5):
    """The mirror's DFT formation energy for a mirror crystal (same arrays), ``other`` for anything else."""
    lut = {
        (c.numbers.tobytes(), c.frac_coords.tobytes()): e
        for c, e in zip(table["structure"], table["formation_energy_per_atom"], strict=True)
    }

    def predict(crystals):
        return np.array(
            [lut.get((c.numbers.tobytes(), c.frac_coords.tobytes()), other) for c in crystals]
        ), None

    return predict


def test_prototypes_are_the_classic_families(smoke):
    protos = smoke[0]
    assert [(p.key, p.discharged_id, p.charged_id, p.metal) for p in protos] == [
        ("layered", "mp-19340", "mp-714944", "V"),
        ("olivine", "mp-19017", None, "Fe"),
        ("spinel", "mp-19394", None, "V"),
    ]


def test_candidates_are_deterministic_charge_balanced_and_new(table, smoke):
    protos, cands, drops = smoke
    size = C.SCREEN_SIZES["smoke"]
    again, drops2 = C.generate_candidates(table, protos, progress=False, **size.kwargs())
    assert cands["candidate_id"].tolist() == again["candidate_id"].tolist()
    assert all(
        a.equals(b) and c.equals(d)
        for a, b, c, d in zip(
            cands["discharged"], again["discharged"], cands["charged"], again["charged"], strict=True
        )
    )
    assert drops.equals(drops2)
    # 3 prototypes x (9 single substitutions + 6 Mn/Fe/Co/Ni 50:50 mixes); each kept or dropped with a reason
    assert cands.attrs["n_tried"] == 45 == len(cands) + len(drops) and len(cands) == 26
    assert (drops["reason"] != "").all()
    why = drops.set_index("candidate_id")["reason"]
    assert why["layered:V->Fe"].startswith("charged state FeO2 cannot be charge-balanced")  # would need Fe4+
    assert (
        why["olivine:Fe->Mn"] == "in the mirror as mp-18997 (same formula and structure)"
    )  # olivine LiMnPO4
    assert why["olivine:Fe->Co"] == "in the mirror as mp-18915 (same formula and structure)"
    assert why["spinel:V->Fe"] == "discharged state cannot be charge-balanced"  # LiFe2O4 needs Fe3.5+
    c = cands.set_index("candidate_id")
    assert c.loc["layered:V->Co", "formula"] == "LiCoO2" and c.loc["spinel:V->Mn", "formula"] == "LiMn2O4"
    assert c.loc["layered:V->Co", "charged_from"] == "prototype pair mp-714944"
    assert c.loc["spinel:V->Mn", "charged_from"] == "all Li removed"
    assert c.loc["olivine:Fe->Mn0.5Co0.5", "formula"] == "Li2MnCo(PO4)2"
    for f, fc in zip(cands["formula"], cands["formula_charged"], strict=True):
        assert Composition(f).oxi_state_guesses() and Composition(fc).oxi_state_guesses()
        E.check_pair(Composition(fc), Composition(f), "Li")
    # none is a mirror structure: compare every candidate with every mirror entry of its reduced formula
    keys = composition_keys(table["structure"].tolist())
    sm = StructureMatcher()
    for d in cands["discharged"]:
        key = composition_key(d.numbers)
        same = [i for i, k in enumerate(keys) if k == key]
        assert not any(sm.fit(d.to_structure(), table["structure"][i].to_structure()) for i in same)
    with pytest.raises(ValueError, match="unknown substituent"):
        C.generate_candidates(table, protos, metals=("Fe", "Zz"), progress=False)
    with pytest.raises(E.ElectrodeError, match="unknown working ion"):
        C.generate_candidates(table, protos, ion="H", progress=False)


def test_volume_scaling_predicts_real_olivines(table):
    """RLS volume scaling from olivine LiFePO4 lands within 1 % of the real (DFT-relaxed) LiCoPO4 and LiMnPO4,
    where keeping the prototype's volume is 3-4 % off."""
    t = table.set_index("material_id")
    s = t.loc["mp-19017", "structure"].to_structure()
    for metal, real in (("Co", "mp-18915"), ("Mn", "mp-18997")):
        sub = SubstitutionTransformation({"Fe": metal}).apply_transformation(s)
        scaled, rule = C._scaled(
            sub, sub.composition.oxi_state_guesses()[0], s, s.composition.oxi_state_guesses()[0]
        )
        v_real = t.loc[real, "structure"].volume
        assert rule == "ionic radii" and abs(scaled.volume / v_real - 1) < 0.01 < abs(s.volume / v_real - 1)
    assert C._mix_sites(4, 2) == [0, 2] and C._mix_sites(2, 1) == [0]


def test_hull_of_the_mirror(table, hull):
    t = table.set_index("material_id")
    lfp, ef = t.loc["mp-19017", "structure"], t.loc["mp-19017", "formation_energy_per_atom"]
    assert hull.e_above_hull(lfp, ef) == pytest.approx(
        0.0, abs=1e-9
    )  # olivine LiFePO4 is on the mirror's hull
    below = hull.e_above_hull(lfp, ef, exclude_ids=["mp-19017"])
    assert -0.03 < below < 0  # 16 meV/atom below the hull of the other Li-Fe-P-O phases
    assert hull.e_above_hull(lfp, ef + 0.1) == pytest.approx(0.1, abs=1e-9)
    vo2 = t.loc["mp-714944"]
    assert (
        0.1 < hull.e_above_hull(vo2["structure"], vo2["formation_energy_per_atom"]) < 0.2
    )  # VO2 (C2/m) metastable
    assert np.isnan(hull.e_above_hull(lfp, float("nan")))


def test_screen_scores_and_ranks(table, smoke, hull):
    cands = smoke[1]

    def predict(crystals):  # a "model" with a fixed energy per composition: Li-rich states lower
        li = np.array([np.mean(c.numbers == 3) for c in crystals])
        return -1.5 - 1.6 * li, np.full(len(crystals), 0.03)

    res = S.screen(cands, predict, hull, progress=False)
    assert len(res) == len(cands) and res["rank"].tolist() == list(range(1, len(res) + 1))
    assert res["passes"].tolist() == sorted(res["passes"], reverse=True)  # passing candidates first
    for ok in (True, False):
        se = res.loc[res["passes"] == ok, "specific_energy"].to_numpy()
        assert np.all(np.diff(se) <= 1e-12)  # by specific energy within each group
    low = np.fmin(res["e_hull_discharged"], res["e_hull_charged"]) < -0.1  # far below the known hull
    rule = (res["e_hull_discharged"] <= 0.1) & res["voltage"].between(2.5, 4.8) & ~low
    assert (rule == res["passes"]).all() and low.any() and not (res["pareto"] & low).any()
    assert set(res.loc[low, "why_not"]) == {"E_hull < -0.1 eV/atom: model error suspected"}
    assert (res["voltage_std"] > 0).all() and res["capacity_grav"].between(50, 400).all()
    np.testing.assert_allclose(res["specific_energy"], res["capacity_grav"] * res["voltage"], rtol=1e-9)
    # the Pareto front (of the candidates not flagged): none of them beats a front member in both
    front, rest = res[res["pareto"]], res[~low]
    assert len(front) >= 1
    for _, r in front.iterrows():
        beats = (rest["specific_energy"] > r["specific_energy"]) & (
            rest["e_hull_discharged"] < r["e_hull_discharged"]
        )
        assert not beats.any()
    assert S.pareto_mask(np.array([1.0, 2.0, 2.0, 0.5]), np.array([0.0, 0.1, 0.2, 0.0])).tolist() == [
        True,
        True,
        False,
        False,
    ]
    empty = S.screen(cands.iloc[:0], predict, hull, progress=False)
    assert empty.empty and empty.attrs["max_e_hull"] == 0.1


def test_known_cathodes_beside_dft_and_mp(table, hull, mirror):
    pairs = E.read_pairs(mirror / E.PAIRS_FILE)
    from lib.cathodes.benchmark import energies_2024

    e24 = energies_2024(table, mirror)
    k = S.known_cathodes(table, pairs, _dft_predictor(table), hull, e2024=e24).set_index("discharged_id")
    # one row per MP pair of the lowest-energy polymorph of each known cathode the mirror holds
    assert {"mp-19017", "mp-18997", "mp-19340", "mp-18968"} <= set(k.index)
    lfp = k.loc["mp-19017"]
    assert lfp["formula"] == "LiFePO4" and lfp["charged_id"] == "mp-25001" and not lfp["charged_in_mirror"]
    assert lfp["v_mp"] == pytest.approx(3.405, abs=1e-3) and lfp["same_reaction"] and lfp["screen_balanced"]
    assert lfp["ef_ml"] == lfp["ef_dft"] and -0.03 < lfp["e_hull_dft"] < 0
    lvo = k.loc[
        "mp-19340"
    ]  # both ends in the mirror: the "model" that returns DFT energies gives the DFT voltage
    assert lvo["charged_in_mirror"] and lvo["v_ml_pair"] == pytest.approx(lvo["v_dft"], abs=1e-9)
    assert lvo["v_dft"] == pytest.approx(lvo["v_mp"], abs=0.03)
    # MP's reference checked against MP's own 2024 energies: close for LiVO2 and LiFePO4; LiCo2O4's charged end is
    # named by today's id (mp-32686, the mirror's mp-714976) and the 2024 energies give 4.26 V, not MP's 3.28 V
    ef24 = S.ef_2024_by_id(e24)
    assert ef24["mp-32686"] == e24.loc["mp-714976", "ef_2024"] and e24.loc["mp-714976", "material_id_2024"] == "mp-32686"
    assert lvo["v_mp_2024"] == pytest.approx(2.949, abs=0.01) and lfp["v_mp_2024"] == pytest.approx(3.50, abs=0.01)
    lco = k.loc["mp-764935"]
    assert lco["charged_id"] == "mp-32686" and lco["v_mp"] == pytest.approx(3.279, abs=1e-3)
    assert lco["v_mp_2024"] == pytest.approx(4.26, abs=0.01)
    lfs = k.loc["mp-18968"]  # Li2FeSiO4: MP's charged state is LiFeSiO4; removing both Li would need Fe4+
    assert (
        lfs["dx_mp"] == 1
        and lfs["dx_screen"] == 2
        and not lfs["same_reaction"]
        and not lfs["screen_balanced"]
    )


def test_figures_say_when_there_is_nothing_to_draw(smoke):
    import matplotlib

    matplotlib.use("Agg")
    from lib.cathodes import plots as pc

    assert pc.formula_label("Li2MnCo(PO4)2") == "Li$_{2}$MnCo(PO$_{4}$)$_{2}$"
    assert pc.formula_label("LiNi0.5Mn1.5O4") == "LiNi$_{0.5}$Mn$_{1.5}$O$_{4}$"
    empty = smoke[1].iloc[:0]
    texts = []
    for fig in (
        pc.voltage_capacity(empty),
        pc.pareto_front(empty),
        pc.top_candidates(empty),
        pc.voltage_parity(
            pd.DataFrame({"a": [], "b": [], "ion": []}), "a", "b", pred_label="p", ref_label="r"
        ),
    ):
        texts += [t.get_text() for ax in fig.axes for t in ax.texts]
    assert texts == [
        "no candidate was scored: nothing to show",
        "no candidate was scored: no Pareto front",
        "no candidate to draw",
        "no pair has both voltages",
    ]


def test_another_working_ion_is_scaled_from_the_li_prototype(table, smoke):
    protos = smoke[0]
    li = C.generate_candidates(table, protos, metals=("Cr",), progress=False)[0].set_index("candidate_id")
    na = C.generate_candidates(table, protos, ion="Na", metals=("Cr",), progress=False)[0].set_index(
        "candidate_id"
    )
    assert na.loc["layered:V->Cr:Na", "formula"] == "NaCrO2" and na.attrs["ion"] == "Na"
    # Na+ (1.02 Å) is larger than Li+ (0.76 Å): the RLS volume grows; the charged CrO2 is the same framework
    ratio = na.loc["layered:V->Cr:Na", "discharged"].volume / li.loc["layered:V->Cr", "discharged"].volume
    assert 1.1 < ratio < 1.4
    assert na.loc["layered:V->Cr:Na", "charged"].equals(li.loc["layered:V->Cr", "charged"])


def test_every_profile_has_a_screen_size():
    """08 runs in every profile of make all (the best one included): each needs its screen size."""
    assert set(C.SCREEN_SIZES) == set(PROFILES)


def test_oxidation_guess_by_dynamic_programming_is_pymatgens():
    """The every-framework stream's charge balance (candidates._oxidation_dp) gives pymatgen's most likely
    assignment on real cathode formulas (capped as oxidation_guess caps them), and None where pymatgen finds
    none; on Li17(PO3)20, where pymatgen walks through ~50,000 combinations, the same answer without them."""
    formulas = ["LiFePO4", "Li2MnO3", "LiMn2O4", "Fe3O4", "LiCoO2", "Li3V2(PO4)3", "LiFeSO4F", "Na2Fe2(SO4)3",
                "Li2FeSiO4", "Li5Fe2(PO4)3", "LiV3O8", "Li4Ti5O12", "NaVPO4F", "Li2CuO2", "LiTiS2", "FeO2",
                "LiMo2O4", "Li2NiMn3O8", "Na3V2(PO4)2F3", "LiCrO2", "Cr2O7", "Li2Co2(MoO4)3", "LiVOPO4",
                "NiPO4"]
    for f in formulas:
        comp = Composition(f)
        ours = C.oxidation_guess(comp, fast=True)
        theirs = C.oxidation_guess(comp)
        assert (ours is None) == (theirs is None), f
        if ours is not None:
            assert ours.keys() == theirs.keys() and all(np.isclose(ours[k], theirs[k]) for k in ours), f
    assert C.oxidation_guess(Composition("FeO2"), fast=True) is None  # would need Fe4+ (capped out of ICSD's)
    big = Composition("Li17(PO3)20")
    assert C._enumeration_size(big.reduced_composition, {}) > C.GUESS_ENUMERATION_LIMIT
    assert C.oxidation_guess(big) is None  # not balanced with Li+, P5+, O2-: found by the dynamic programme
