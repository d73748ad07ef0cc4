"""Built pairs for the experimental rows MP has no pair of (lib.cathodes.experiment:
build_experiment_pairs, built_voltages, with_built): small hand-made structures and fake energy models, so
every test takes seconds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Composition, Lattice, Structure

from lib.cathodes import experiment as X
from lib.cathodes.electrodes import pair_properties
from lib.structures import Crystal


def _licoo2() -> Structure:
    """Layered O3 LiCoO2 (R-3m, hexagonal setting: 3 formula units, 12 atoms)."""
    return Structure.from_spacegroup("R-3m", Lattice.hexagonal(2.82, 14.05), ["Li", "Co", "O"],
                                     [[0, 0, 0.5], [0, 0, 0], [0, 0, 0.26]])


def _key(s: Structure) -> tuple:
    return (len(s), *np.round(s.frac_coords, 4).ravel().tolist())


class FakeModel:
    """Energies per atom from a table keyed by the structure (else by its reduced formula), the ion's metal
    at ``mu`` eV/atom: the protocol of lib.cathodes.potentials' models (``energies -> (array, None)``)."""

    name = "fake"

    def __init__(self, by_structure=None, by_formula=None, mu: float = -1.9):
        self.by_structure, self.by_formula, self.mu = by_structure or {}, by_formula or {}, mu
        self.calls = 0

    def energies(self, structures, progress=False, **kw):
        self.calls += 1
        out = []
        for s in structures:
            s = s.to_structure() if isinstance(s, Crystal) else s
            by_formula = self.by_formula.get(s.composition.reduced_formula, np.nan)
            out.append(self.by_structure.get(_key(s), by_formula))
        return np.array(out, float), None

    def ion_energy(self, ion):
        return self.mu


def test_full_removal_has_the_charged_composition_and_no_ion_left():
    s = _licoo2()
    cands, note = X.build_charged(s, "Li", 0.0)
    assert len(cands) == 1 and "RemoveSpeciesTransformation" in note
    c = cands[0]
    assert c.composition.reduced_formula == "CoO2"
    assert Composition("Li").elements[0] not in c.composition
    assert len(c) == 9  # 12 atoms less the 3 Li
    np.testing.assert_allclose(c.lattice.matrix, s.lattice.matrix)  # the discharged cell, unrelaxed
    assert X.same_framework(s, c, "Li")
    assert X.ion_fraction("LiCoO2", "CoO2", "Li") == 0.0


def test_partial_removal_keeps_the_lowest_energy_ordering_of_the_model():
    s = _licoo2()
    assert X.ion_fraction("LiCoO2", "Li0.5CoO2", "Li") == pytest.approx(0.5)
    assert X.ion_fraction("Li5Fe2(PO4)3", "Li3Fe2(PO4)3", "Li") == pytest.approx(0.6)
    cands, note = X.build_charged(s, "Li", 0.5, n_orderings=3)
    assert len(cands) >= 2 and "lowest-Ewald" in note
    for c in cands:
        comp = c.composition
        assert comp["Li"] / comp["Co"] == pytest.approx(0.5)
        assert comp["O"] / comp["Co"] == pytest.approx(2.0)
    # the fake model makes the Ewald-last ordering the lowest in energy: it must be the one kept
    energies = {_key(c): -5.0 + 0.1 * (len(cands) - 1 - i) for i, c in enumerate(cands)}
    model = FakeModel(by_structure=energies, by_formula={"LiCoO2": -5.2})
    j, e = X.lowest_energy(cands, model)
    assert j == len(cands) - 1 and e[j] == pytest.approx(-5.0)
    built = pd.DataFrame([{"id": "row", "ion": "Li", "discharged": s, "charged_candidates": cands}])
    v = X.built_voltages(built, {"fake": model}).iloc[0]
    assert v["route"] == "umlip_static_fake" and v["charged_choice"] == len(cands) - 1
    ref = pair_properties(cands[-1], s, -5.0, -5.2, "Li", ion_energy=-1.9)["voltage"]
    assert v["voltage"] == pytest.approx(ref)
    # by hand: per CoO2, E(LiCoO2) = 4·(−5.2), E(Li0.5CoO2) = 3.5·(−5.0), Δx = 0.5
    assert v["voltage"] == pytest.approx(-(4 * -5.2 - 3.5 * -5.0 - 0.5 * -1.9) / 0.5)


def test_built_voltage_of_a_full_removal_equals_pair_properties():
    s = _licoo2()
    c = X.build_charged(s, "Li", 0.0)[0][0]
    model = FakeModel(by_formula={"LiCoO2": -5.0, "CoO2": -5.5}, mu=-1.9)
    built = pd.DataFrame([{"id": "licoo2", "ion": "Li", "discharged": s, "charged_candidates": [c]}])
    v = X.built_voltages(built, {"fake": model}).iloc[0]
    ref = pair_properties(c, s, -5.5, -5.0, "Li", ion_energy=-1.9)["voltage"]
    assert v["voltage"] == pytest.approx(ref)
    assert v["voltage"] == pytest.approx(1.6)  # −(4·(−5.0) − 3·(−5.5) − (−1.9)) per CoO2
    assert v["error"] == "" and v["e_charged"] == -5.5 and v["e_discharged"] == -5.0


def _exp(rows):
    base = {"structure_type": "layered O3 (alpha-NaFeO2)", "voltage_exp": 4.0}
    return pd.DataFrame([{**base, **r} for r in rows])


def test_rows_without_a_structure_say_why_and_built_rows_form_their_own_class():
    exp = _exp([
        {"id": "licoo2", "ion": "Li", "discharged_formula": "LiCoO2", "charged_formula": "CoO2"},
        {"id": "nafepo4", "ion": "Na", "discharged_formula": "NaFePO4", "charged_formula": "FePO4"},
        {"id": "li2coo2", "ion": "Li", "discharged_formula": "Li2CoO2", "charged_formula": "LiCoO2"},
    ])
    pairs = pd.DataFrame(columns=["ion", "low_formula", "high_formula", "battery_id", "avg_voltage",
                                  "low_mpid"])
    sources = pd.DataFrame({"material_id": ["mp-x"], "structure": [Crystal.from_structure(_licoo2())],
                            "source": ["test"]})
    model = FakeModel(by_formula={"LiCoO2": -5.0, "CoO2": -5.5})
    b = X.build_experiment_pairs(exp, pairs, sources, energies=model).set_index("id")
    assert b.loc["licoo2", "status"] == "built" and bool(b.loc["licoo2", "built"])
    assert b.loc["licoo2", "discharged_id"] == "mp-x" and b.loc["licoo2", "discharged_rule"] == "the only one"
    assert b.loc["nafepo4", "status"] == "no structure"
    assert "neither NaFePO4 nor FePO4" in b.loc["nafepo4", "why"]
    assert b.loc["li2coo2", "status"] == "no structure"
    assert "only the charged end LiCoO2" in b.loc["li2coo2", "why"] and "not done" in b.loc["li2coo2", "why"]

    m = X.with_built(X.match_experiment(exp, pairs), b.reset_index())
    assert dict(zip(m["id"], m["match"], strict=True)) == {"licoo2": "built", "nafepo4": "no MP pair",
                                                           "li2coo2": "no MP pair"}
    assert m.set_index("id").loc["licoo2", "mp_match"] == "no MP pair"
    assert "neither" in m.set_index("id").loc["nafepo4", "why"]
    long = pd.DataFrame(columns=["battery_id", "route", "voltage"])
    bl = X.built_voltages(b.reset_index(), {"fake": model})
    t = X.experiment_table(m, long, bl)
    assert set(t["id"]) == {"licoo2"} and set(t["route"]) == {"umlip_static_fake"}  # no MP voltage for it
    assert t["match"].eq("built").all() and t["voltage"].iloc[0] == pytest.approx(1.6)


def test_polymorph_chosen_by_structure_type_then_energy():
    assert X.structure_type_spacegroups("layered O3 (alpha-NaFeO2)")[0] == {166}
    assert X.structure_type_spacegroups("NASICON-type (monoclinic)")[1] == "monoclinic"
    assert X.structure_type_spacegroups("borate (LiMBO3)") is None
    o3 = _licoo2()
    other = Structure(Lattice.cubic(4.2), ["Li", "Co", "O", "O"],
                      [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0, 0], [0, 0.5, 0.25]])  # a low-symmetry LiCoO2
    cand = pd.DataFrame({"material_id": ["mp-a", "mp-b"], "structure": [other, o3]})
    low_other = FakeModel(by_structure={_key(other): -6.0, _key(o3): -5.0})
    j, rule = X._choose_discharged(cand, "layered O3 (alpha-NaFeO2)", low_other)
    assert j == 1 and "R-3m" in rule  # the space group the row names wins over the lower energy
    j, rule = X._choose_discharged(cand, "borate", low_other)
    assert j == 0 and "lowest static energy of 2" in rule


def test_voltage_models_on_built_pairs_give_their_voltage_or_say_why():
    s = _licoo2()
    c = X.build_charged(s, "Li", 0.0)[0][0]
    built = pd.DataFrame([{"id": "licoo2", "ion": "Li", "discharged": s, "charged_candidates": [c]},
                          {"id": "none", "ion": "Li", "discharged": None, "charged_candidates": []}])

    class Gnn:  # the GNN voltage model's protocol: predict(pairs) -> (V, sigma)
        def predict(self, pairs):
            assert list(pairs["formula_charged"]) == ["CoO2"] and list(pairs["formula_discharged"]) == ["LiCoO2"]
            assert isinstance(pairs["charged"].iloc[0], Crystal)
            return np.array([3.9]), np.array([0.4])

    class Broken:  # a delta model that cannot run: its rows say why, the GNN's are kept
        potential = "nothing"

    t = X.model_voltages(built, FakeModel(by_formula={"CoO2": -5.5}), delta=Broken(), gnn=Gnn())
    assert list(t["id"]) == ["licoo2", "licoo2"]  # the row without a charged end has no pair
    g = t.set_index("route")
    assert g.loc["voltage_gnn", "voltage"] == pytest.approx(3.9) and g.loc["voltage_gnn", "sigma"] == 0.4
    assert np.isnan(g.loc["voltage_model", "voltage"]) and g.loc["voltage_model", "error"]
