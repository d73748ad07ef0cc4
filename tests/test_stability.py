"""lib.cathodes.stability: the system hull, both states, O2 release, volume change, the screen's table.

Every energy here is given (a stand-in energy model that looks energies up), no network is run: the numbers
checked are pymatgen's own phase diagrams, hand calculations written out below, NIST's Shomate fit of O2 and
pymatgen's InsertionElectrode.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from pymatgen.analysis.phase_diagram import GrandPotentialPhaseDiagram, PDEntry, PhaseDiagram
from pymatgen.apps.battery.insertion_battery import InsertionElectrode
from pymatgen.core import Composition, Element, Lattice, Structure
from pymatgen.entries.computed_entries import ComputedEntry, ComputedStructureEntry
from scipy.optimize import brentq

from lib.cathodes import stability as st
from lib.structures import Crystal

# ----------------------------------------------------------------------------------------------
# a stand-in energy model and small chemical systems with given energies
# ----------------------------------------------------------------------------------------------

#: elemental reference energies (eV/atom) on an MP-like total-energy scale
MU = {"Li": -1.909, "Co": -7.108, "O": -4.948, "Mn": -9.162, "Ni": -5.780}


class LookupModel:
    """Energies looked up by the first lattice parameter (unique per phase here); records what it is asked."""

    name = "lookup"
    scale = "total"

    def __init__(self, by_a: dict[float, float]):
        self.by_a, self.asked, self.calls = dict(by_a), [], 0

    def energies(self, structures):
        self.calls += 1
        keys = [round(float(np.asarray(s.lattice if isinstance(s, Crystal) else s.lattice.matrix)[0, 0]), 6)
                for s in structures]
        self.asked += keys
        return np.array([self.by_a[k] for k in keys]), None


class Refuse(LookupModel):
    def energies(self, structures):
        raise AssertionError("the hull should have been read back, not computed")


def cell(counts: dict[str, int], a: float) -> Crystal:
    """A cubic cell of edge ``a`` with the given atoms on a grid (only its composition and ``a`` matter)."""
    numbers = [Element(el).Z for el, n in counts.items() for _ in range(n)]
    k = len(numbers)
    frac = [((i + 0.5) / k, (i * 0.37) % 1.0, (i * 0.61) % 1.0) for i in range(k)]
    return Crystal(np.eye(3) * a, frac, numbers)


def total(counts: dict[str, int], dh_per_atom: float) -> float:
    """Energy per atom of a phase ``dh_per_atom`` below its elements (MU)."""
    n = sum(counts.values())
    return sum(MU[e] * c for e, c in counts.items()) / n + dh_per_atom


def system(phases: list[tuple[str, dict[str, int], float]], a0: float = 3.0):
    """(table, model, {id: (composition, energy per atom)}) of phases (id, counts, E_f per atom)."""
    rows, by_a, truth = [], {}, {}
    for k, (pid, counts, dh) in enumerate(phases):
        a = round(a0 + 0.01 * k, 6)
        e = total(counts, dh)
        rows.append({"material_id": pid, "structure": cell(counts, a), "source": "test"})
        by_a[a] = e
        truth[pid] = (Composition(counts), e)
    return pd.DataFrame(rows), LookupModel(by_a), truth


#: Li-Co-O: elements (two polymorphs each), binaries and ternaries (formation energies per atom, eV/atom)
LI_CO_O = [
    ("Li-a", {"Li": 1}, 0.0), ("Li-b", {"Li": 2}, 0.004), ("Co-a", {"Co": 2}, 0.0),
    ("Co-b", {"Co": 1}, 0.016), ("O-a", {"O": 8}, 0.0), ("O-b", {"O": 2}, 0.010),
    ("Li2O", {"Li": 2, "O": 1}, -2.066), ("Li2O2", {"Li": 2, "O": 2}, -1.643),
    ("LiO8", {"Li": 1, "O": 8}, 0.05), ("CoO", {"Co": 1, "O": 1}, -1.230),
    ("Co3O4", {"Co": 3, "O": 4}, -1.319), ("CoO2", {"Co": 1, "O": 2}, -0.95),
    ("LiCoO2", {"Li": 1, "Co": 1, "O": 2}, -1.760), ("LiCoO2-b", {"Li": 2, "Co": 2, "O": 4}, -1.745),
    ("Li6CoO4", {"Li": 6, "Co": 1, "O": 4}, -1.800), ("LiCo2O4", {"Li": 1, "Co": 2, "O": 4}, -1.48),
]

#: Mn-O with experimental formation enthalpies (kJ/mol per formula unit; NIST-JANAF / CRC): MnO -385.2,
#: Mn3O4 -1387.8, Mn2O3 -959.0, MnO2 -520.0, converted to eV (1 kJ/mol = 0.0103643 eV) per atom
KJ = 0.0103643
MN_O = [
    ("Mn", {"Mn": 1}, 0.0), ("O2", {"O": 2}, 0.0), ("O2-b", {"O": 8}, 0.02),
    ("MnO", {"Mn": 1, "O": 1}, -385.2 * KJ / 2), ("Mn3O4", {"Mn": 3, "O": 4}, -1387.8 * KJ / 7),
    ("Mn2O3", {"Mn": 2, "O": 3}, -959.0 * KJ / 5), ("MnO2", {"Mn": 1, "O": 2}, -520.0 * KJ / 3),
]


def hull_of(phases, tmp_path, **kw):
    table, model, truth = system(phases)
    hull = st.SystemHull(model, table, cache=tmp_path / "hulls", archive_dir=tmp_path / "records", **kw)
    return hull, truth


# ----------------------------------------------------------------------------------------------
# (a) the hull is pymatgen's PhaseDiagram of the same entries
# ----------------------------------------------------------------------------------------------


def test_hull_equals_pymatgen_without_a_phase(tmp_path):
    hull, truth = hull_of(LI_CO_O, tmp_path)
    els = ["Li", "Co", "O"]
    ref = PhaseDiagram([PDEntry(c, e * c.num_atoms, name=i) for i, (c, e) in truth.items() if i != "LiCoO2"])
    full = PhaseDiagram([PDEntry(c, e * c.num_atoms, name=i) for i, (c, e) in truth.items()])
    assert "LiCoO2" in {e.name for e in full.stable_entries}  # removing it changes the hull
    pd_ = hull.phase_diagram(els, exclude_ids=["LiCoO2"])
    assert {e.name for e in pd_.all_entries} == {e.name for e in ref.all_entries}
    # every phase and a few probes: the same energy above the hull (to 1e-8) as pymatgen's own diagram
    probes = [(truth[i][0], truth[i][1]) for i in truth] + [
        (Composition("LiCoO2"), total({"Li": 1, "Co": 1, "O": 2}, -1.70)),
        (Composition("Li2CoO3"), total({"Li": 2, "Co": 1, "O": 3}, -1.6)),
        (Composition("LiCo2O3"), total({"Li": 1, "Co": 2, "O": 3}, -1.4)),
    ]
    got = [hull.e_above_hull(c, e, exclude_ids=["LiCoO2"]) for c, e in probes]
    want = [ref.get_e_above_hull(PDEntry(c, e * c.num_atoms), allow_negative=True) for c, e in probes]
    np.testing.assert_allclose(got, want, atol=1e-8, rtol=0)
    # LiCoO2 itself, checked as if new: 15 meV/atom below its other polymorph, which is on the others' hull
    assert got[list(truth).index("LiCoO2")] == pytest.approx(-0.015, abs=1e-9)
    with_it = hull.e_above_hull(*truth["LiCoO2"])
    assert with_it == pytest.approx(0.0, abs=1e-9)
    assert np.isnan(hull.e_above_hull(Composition("CoO2"), math.nan))
    # the references: the lowest-energy elemental phase of each element
    want = {"Co": "Co-a", "Li": "Li-a", "O": "O-a"}
    assert hull.references(els) == {el: (i, pytest.approx(MU[el])) for el, i in want.items()}


def test_given_reference_replaces_the_elemental_phases(tmp_path):
    hull, truth = hull_of(LI_CO_O, tmp_path, references={"O": MU["O"] + 0.1})
    refs = hull.references(["Li", "Co", "O"])
    assert refs["O"] == ("O reference", pytest.approx(MU["O"] + 0.1))
    # Li2O's formation energy is 0.1 * 1/3 eV/atom lower against an O reference 0.1 eV/atom higher
    comp, e = truth["Li2O"]
    pd_ = hull.phase_diagram(["Li", "O"])
    assert pd_.get_form_energy_per_atom(PDEntry(comp, e * 3)) == pytest.approx(-2.066 - 0.1 / 3, abs=1e-9)
    assert "O-a" not in {x.name for x in hull.phase_diagram(["Li", "O"]).all_entries}


def test_missing_element_is_an_error(tmp_path):
    hull, _ = hull_of([p for p in LI_CO_O if p[0] not in ("Co-a", "Co-b")], tmp_path)
    with pytest.raises(ValueError, match="no usable elemental phase of Co"):
        hull.phase_diagram(["Li", "Co", "O"])


# ----------------------------------------------------------------------------------------------
# (c) excluded systems and ids never reach the phase diagram
# ----------------------------------------------------------------------------------------------


def test_excluded_systems_and_ids_never_reach_the_diagram(tmp_path):
    phases = LI_CO_O + [("Ni", {"Ni": 1}, 0.0), ("NiO", {"Ni": 1, "O": 1}, -1.2),
                        ("LiNiO2", {"Li": 1, "Ni": 1, "O": 2}, -1.5),
                        ("LiCo0.5Ni0.5O2", {"Li": 2, "Co": 1, "Ni": 1, "O": 4}, -1.7)]
    table, model, truth = system(phases)
    hull = st.SystemHull(model, table, exclude_systems=["Co-Li-O"], exclude_ids=["CoO"], cache=None,
                         archive_dir=None)
    ternary = {"LiCoO2", "LiCoO2-b", "Li6CoO4", "LiCo2O4"}
    assert set(hull.excluded) == ternary | {"LiCo0.5Ni0.5O2", "CoO"}  # the quaternary holds Li-Co-O too
    assert hull.excluded["CoO"] == "excluded by id"
    assert hull.excluded["LiCoO2"] == "excluded system Co-Li-O"
    pd_ = hull.phase_diagram(["Li", "Co", "Ni", "O"], exclude_ids=["NiO"])
    names = {e.name for e in pd_.all_entries}
    assert not names & (ternary | {"LiCo0.5Ni0.5O2", "CoO", "NiO"})
    assert {"Li2O", "Co3O4", "CoO2", "LiNiO2"} <= names  # the subsystems stay
    # the model was never asked for an excluded phase (their lattice parameters)
    a_of = {r.material_id: round(float(r.structure.lattice[0, 0]), 6) for r in table.itertuples()}
    assert not {a_of[i] for i in hull.excluded} & set(model.asked)
    assert a_of["NiO"] in model.asked  # excluded per call only: computed, but not in this diagram
    # LiCoO2 is then judged against the binaries only (pymatgen's diagram of the same phases)
    comp, e = truth["LiCoO2"]
    e_hull = hull.e_above_hull(comp, e)
    ref = PhaseDiagram([PDEntry(c, x * c.num_atoms) for i, (c, x) in truth.items()
                        if set(c.elements) <= {Element("Li"), Element("Co"), Element("O")}
                        and i not in ternary | {"CoO"}])
    assert e_hull == pytest.approx(ref.get_e_above_hull(PDEntry(comp, e * 4), allow_negative=True), abs=1e-10)
    assert e_hull < -0.1  # far below a hull that has no Li-Co-O ternary


# ----------------------------------------------------------------------------------------------
# computed once per system, stored, archived
# ----------------------------------------------------------------------------------------------


def test_system_files_and_archive(tmp_path):
    table, model, truth = system(LI_CO_O)
    kw = {"cache": tmp_path / "hulls", "archive_dir": tmp_path / "records"}
    h1 = st.SystemHull(model, table, **kw)
    e1 = h1.energies(["Li", "Co", "O"])
    f = tmp_path / "hulls" / "Co-Li-O.json"
    assert f.is_file() and len(model.asked) == len(LI_CO_O)
    h1.energies(["Li", "O"])  # a subsystem: its file is written, nothing computed again
    assert (tmp_path / "hulls" / "Li-O.json").is_file() and len(model.asked) == len(LI_CO_O)
    # read back from the file, then from the archive alone
    h2 = st.SystemHull(Refuse({}), table, **kw)
    assert h2.energies(["Li", "Co", "O"]) == e1
    path = st.archive("lookup", cache=tmp_path / "hulls", archive_dir=tmp_path / "records")
    first = path.read_bytes()
    again = st.archive("lookup", cache=tmp_path / "hulls", archive_dir=tmp_path / "records")
    assert again.read_bytes() == first  # same hulls, same bytes
    assert set(st.archived("lookup", tmp_path / "records")) == {"Co-Li-O", "Li-O"}
    h3 = st.SystemHull(Refuse({}), table, cache=tmp_path / "empty", archive_dir=tmp_path / "records")
    assert h3.energies(["Li", "Co", "O"]) == e1
    # many systems at once: one call of the model for all their phases, each system's file written
    m5 = LookupModel(model.by_a)
    h5 = st.SystemHull(m5, table, cache=tmp_path / "five", archive_dir=None)
    h5.prepare(["Co-O", "Li-O", ["Li", "Co", "O"]])
    assert m5.calls == 1 and len(m5.asked) == len(LI_CO_O)
    assert sorted(p.name for p in (tmp_path / "five").iterdir()) == ["Co-Li-O.json", "Co-O.json", "Li-O.json"]
    assert h5.energies(["Co", "O"]) == {i: e for i, e in e1.items() if "Li" not in i} and m5.calls == 1
    # a structure that changed under the same id is computed again, alone
    moved = table.copy()
    k = int(np.flatnonzero(moved["material_id"] == "CoO2")[0])
    moved.at[k, "structure"] = cell({"Co": 1, "O": 2}, 9.5)
    m2 = LookupModel({**model.by_a, 9.5: -6.0})
    h4 = st.SystemHull(m2, moved, **kw)
    assert h4.energies(["Li", "Co", "O"])["CoO2"] == -6.0 and m2.asked == [9.5]


# ----------------------------------------------------------------------------------------------
# both states
# ----------------------------------------------------------------------------------------------


def test_both_states(tmp_path):
    hull, truth = hull_of(LI_CO_O, tmp_path)
    r = st.both_states(Composition("CoO2"), Composition("LiCoO2"), truth["CoO2"][1] + 0.02,
                       truth["LiCoO2"][1] + 0.03, hull)
    base_c = hull.e_above_hull(Composition("CoO2"), truth["CoO2"][1])
    assert r["e_hull_charged"] == pytest.approx(base_c + 0.02, abs=1e-9)
    assert r["e_hull_discharged"] == pytest.approx(0.03, abs=1e-9)
    assert base_c > 0.05  # CoO2 lies well above the hull (Co3O4 + O2 below it)


def test_every_polymorph_of_a_formula_is_found_to_judge_it_as_new(tmp_path):
    hull, truth = hull_of(LI_CO_O, tmp_path)
    assert hull.ids_of("LiCoO2") == ["LiCoO2", "LiCoO2-b"]  # both cells, 4 and 8 atoms
    assert hull.ids_of("Li2Co2O4") == ["LiCoO2", "LiCoO2-b"] and hull.ids_of("CoO2") == ["CoO2"]
    e = truth["LiCoO2"][1]
    with_one = hull.e_above_hull(Composition("LiCoO2"), e, exclude_ids=["LiCoO2"])
    as_new = hull.e_above_hull(Composition("LiCoO2"), e, exclude_ids=hull.ids_of("LiCoO2"))
    assert with_one == pytest.approx(e - truth["LiCoO2-b"][1], abs=1e-9)  # the other polymorph sets the hull
    assert as_new < with_one < 0  # without any polymorph: only the other compositions' phases


# ----------------------------------------------------------------------------------------------
# (b) oxygen release
# ----------------------------------------------------------------------------------------------


def test_oxygen_release_of_mno2_by_hand(tmp_path):
    hull, truth = hull_of(MN_O, tmp_path)
    e_mno2 = truth["MnO2"][1]
    r = st.oxygen_release_onset(Composition("MnO2"), e_mno2, hull)
    # by hand: MnO2 -> 1/2 Mn2O3 + 1/4 O2; per MnO2 1/2 O atom released, so
    # mu_O* = [E(MnO2) - 1/2 E(Mn2O3)] / (2 - 3/2) - E_O, E per formula unit (formation: E_O = 0)
    dh = {k: v * Composition(c).num_atoms for k, c, v in
          (("MnO2", "MnO2", -520.0 * KJ / 3), ("Mn2O3", "Mn2O3", -959.0 * KJ / 5))}
    mu = (dh["MnO2"] - 0.5 * dh["Mn2O3"]) / 0.5
    assert mu == pytest.approx(-0.8395, abs=1e-4)  # (-5.3894 + 4.9697) / 0.5
    assert r.mu_o == pytest.approx(mu, abs=1e-9)
    assert r.mu_o_hull == pytest.approx(mu, abs=1e-9)  # MnO2 is on the hull
    assert r.products == ("Mn2O3", "O2") and r.product_ids == ("Mn2O3",)
    assert r.o_lost == pytest.approx(0.25)
    assert r.mu_o_abs == pytest.approx(mu + MU["O"], abs=1e-9) and r.reference == "O2"
    # the temperature of O2 at 1 atm with that mu_O, from NIST's Shomate fit (independent of the JANAF table)
    t = brentq(lambda x: shomate_mu(x) - mu, 300, 2000)
    assert r.t_onset == pytest.approx(t, abs=1.0)
    assert 700 < r.t_onset < 800  # 754 K; MnO2 turns into Mn2O3 in air at several hundred °C
    # pymatgen's element profile of MnO2 gives the same critical mu_O (where O starts to be released)
    prof = hull.phase_diagram(["Mn", "O"]).get_element_profile(Element("O"), Composition("MnO2"))
    first = next(p for p in prof if p["evolution"] < -1e-9)  # negative: O given off (pymatgen 2026.10)
    assert first["chempot"] - MU["O"] == pytest.approx(mu, abs=1e-6)
    # and the grand-potential diagram open to O: MnO2 is the stable phase just above mu_O*, Mn2O3 just below
    entries = hull.entries(["Mn", "O"])
    for d, stable in ((0.01, "MnO2"), (-0.01, "Mn2O3")):
        gpd = GrandPotentialPhaseDiagram(entries, {Element("O"): MU["O"] + mu + d})
        assert {e.original_entry.name for e in gpd.stable_entries} >= {stable}
        assert {e.original_entry.name for e in gpd.stable_entries} & {"MnO2", "Mn2O3"} == {stable}
    # the same at 0.21 atm (air) is lower in temperature
    air = st.oxygen_release_onset(Composition("MnO2"), e_mno2, hull, p_o2=0.21)
    assert air.mu_o == r.mu_o and air.t_onset < r.t_onset - 20


def test_oxygen_release_of_a_metastable_oxide(tmp_path):
    hull, truth = hull_of(MN_O, tmp_path)
    # MnO2 0.05 eV/atom higher, checked as new (without itself): by hand mu_O* rises by 3 * 0.05 / 0.5 eV
    r0 = st.oxygen_release_onset(Composition("MnO2"), truth["MnO2"][1], hull)
    r = st.oxygen_release_onset(Composition("Mn2O4"), truth["MnO2"][1] + 0.05, hull, exclude_ids=["MnO2"])
    assert r.mu_o == pytest.approx(r0.mu_o + 0.3, abs=1e-9)
    assert r.products == ("Mn2O3", "O2")
    # without MnO2 its composition's equilibrium is Mn2O3 + O2, which gives off its O2 at once (mu_O = 0),
    # as pymatgen's element profile says
    assert r.mu_o_hull == pytest.approx(0.0, abs=1e-9)
    prof = hull.phase_diagram(["Mn", "O"], ["MnO2"]).get_element_profile(Element("O"), Composition("MnO2"))
    assert next(p for p in prof if p["evolution"] < -1e-9)["chempot"] == pytest.approx(MU["O"], abs=1e-6)
    mn2o3 = st.oxygen_release_onset(Composition("Mn2O3"), truth["Mn2O3"][1], hull)
    # Mn2O3 -> 2/3 Mn3O4 + 1/6 O2 by hand
    e = {k: total(c, dh) * sum(c.values()) for k, c, dh in MN_O if k in ("Mn2O3", "Mn3O4")}
    assert mn2o3.mu_o == pytest.approx((e["Mn2O3"] - 2 / 3 * e["Mn3O4"]) / (1 / 3) - MU["O"], abs=1e-9)
    assert mn2o3.products == ("Mn3O4", "O2")
    # far enough above the hull: released at any temperature
    hot = st.oxygen_release_onset(Composition("MnO2"), truth["MnO2"][1] + 0.5, hull)
    assert hot.mu_o > 0 and hot.t_onset == 0.0 and hot.notes
    # a PhaseDiagram or a list of entries work as well
    pd_ = hull.phase_diagram(["Mn", "O"])
    assert st.oxygen_release_onset(Composition("MnO2"), truth["MnO2"][1], pd_).mu_o == pytest.approx(r0.mu_o)
    assert st.oxygen_release_onset(Composition("MnO2"), truth["MnO2"][1], pd_.all_entries).mu_o == \
        pytest.approx(r0.mu_o)
    with pytest.raises(ValueError, match="holds no O"):
        st.oxygen_release_onset(Composition("Mn"), -9.0, hull)


def shomate_mu(t: float, p_atm: float = 1.0) -> float:
    """1/2 [H(T) - H(298.15) - T S(T)] of O2 in eV from NIST WebBook's Shomate fit (Chase 1998), plus
    1/2 kT ln(p/p°) with p° = 1 bar."""
    h, s = shomate(t)
    return 0.5 * (h - t * s / 1000) / 96.485332 + 0.5 * 8.617333262e-5 * t * math.log(p_atm * 1.01325)


def shomate(t: float) -> tuple[float, float]:
    """H(T) - H(298.15) in kJ/mol and S(T) in J/mol/K of O2, NIST WebBook's Shomate parameters."""
    c = ((31.32234, -20.23531, 57.86644, -36.50624, -0.007374, -8.903471, 246.7945) if t < 700 else
         (30.03235, 8.772972, -3.988133, 0.788313, -0.741599, -11.32468, 236.1663))
    a, b, cc, d, e, f, g = c
    x = t / 1000
    h = a * x + b * x**2 / 2 + cc * x**3 / 3 + d * x**4 / 4 - e / x + f  # kJ/mol
    s = a * math.log(x) + b * x + cc * x**2 / 2 + d * x**3 / 3 - e / (2 * x**2) + g  # J/mol/K
    return h, s


def test_janaf_table_against_shomate():
    for t, s, h in st.JANAF_O2[1:]:  # JANAF's table and NIST's fit of it agree (J/mol/K, kJ/mol)
        assert (h, s) == pytest.approx(shomate(t), abs=0.015), t
        assert st.delta_mu_o(t) == pytest.approx(shomate_mu(t), abs=3e-5), t
    # at p° = 1 bar the table alone: -T S / 2 at 298.15 K = -0.317 eV; 1 atm adds 1/2 kT ln(1.01325)
    one_bar = st.delta_mu_o(298.15, p_o2=1 / 1.01325)
    assert one_bar == pytest.approx(-298.15 * 205.147e-3 / 2 / 96.485332, abs=1e-9)
    assert st.delta_mu_o(298.15) - one_bar == pytest.approx(0.5 * 8.617333e-5 * 298.15 * math.log(1.01325))
    assert st.delta_mu_o(1000) == pytest.approx(-1.1445, abs=1e-3)
    # relative to 0 K instead of 298.15 K (Reuter & Scheffler's convention): -1.10 eV at 1000 K
    assert st.delta_mu_o(1000) - st.delta_mu_o(0) == pytest.approx(-1.0997, abs=1e-3)
    assert st.onset_temperature(st.delta_mu_o(850.0)) == pytest.approx(850.0, abs=1e-3)
    assert st.onset_temperature(-5.0) is None and st.onset_temperature(0.0) == 0.0


# ----------------------------------------------------------------------------------------------
# (d) volume change as pymatgen's max_delta_volume
# ----------------------------------------------------------------------------------------------


def licoo2(c: float = 14.05, li: bool = True) -> Structure:
    species = ["Li", "Co", "O"] if li else ["Co", "O"]
    coords = [[0, 0, 0.5], [0, 0, 0], [0, 0, 0.2396]] if li else [[0, 0, 0], [0, 0, 0.2396]]
    return Structure.from_spacegroup("R-3m", Lattice.hexagonal(2.816 if li else 2.805, c), species, coords)


def test_volume_change_is_pymatgens_max_delta_volume():
    charged = licoo2(13.35, li=False)
    discharged = licoo2()
    discharged.make_supercell([2, 1, 1])  # per framework formula unit, whatever the cells
    ec, ed = -6.4, -5.95
    electrode = InsertionElectrode.from_entries(
        [ComputedStructureEntry(charged, ec * len(charged)),
         ComputedStructureEntry(discharged, ed * len(discharged))],
        ComputedEntry("Li", MU["Li"]))
    want = 100 * electrode.max_delta_volume
    got = st.volume_change(charged, discharged)
    assert got == pytest.approx(want, rel=1e-12)
    # by hand: V per CoO2 of each cell (3 and 6 formula units)
    vc, vd = charged.volume / 3, discharged.volume / 6
    assert got == pytest.approx(100 * (vd / vc - 1), rel=1e-12) and 3 < got < 8
    assert st.volume_change(charged, discharged, signed=True) == pytest.approx(100 * (vc / vd - 1), rel=1e-12)
    assert st.volume_change(Crystal.from_structure(charged), Crystal.from_structure(discharged)) == \
        pytest.approx(got)
    with pytest.raises(ValueError, match="different frameworks"):
        st.volume_change(Structure(Lattice.cubic(4.2), ["Co", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]), discharged)


# ----------------------------------------------------------------------------------------------
# the screen's table
# ----------------------------------------------------------------------------------------------


def test_stability_table(tmp_path):
    hull, truth = hull_of(LI_CO_O, tmp_path)
    c, d = licoo2(13.35, li=False), licoo2()
    ec, ed = truth["CoO2"][1] + 0.01, truth["LiCoO2"][1] + 0.005
    rows = pd.DataFrame({
        "charged": [c, None, c, c],
        "discharged": [d, d, d, d],
        "e_charged": [ec, ec, ec, ec],
        "e_discharged": [ed, ed, np.nan, ed],
        "exclude_ids": [(), (), (), ["LiCoO2", "LiCoO2-b"]],
    }, index=[10, 11, 12, 13])
    t = st.stability_table(rows, hull, prefix="s_")
    assert list(t.index) == [10, 11, 12, 13]  # nothing dropped
    assert list(t.columns) == [f"s_{k}" for k in st.COLUMNS]
    both = st.both_states(c, d, ec, ed, hull)
    assert t.at[10, "s_e_hull_charged"] == pytest.approx(both["e_hull_charged"], abs=1e-12)
    assert t.at[10, "s_e_hull_discharged"] == pytest.approx(0.005, abs=1e-9)
    o2 = st.oxygen_release_onset(c, ec, hull)
    assert t.at[10, "s_o2_mu_onset"] == pytest.approx(o2.mu_o) and t.at[10, "s_o2_products"] == "Co3O4 + O2"
    assert t.at[10, "s_o2_t_onset"] == 0.0 and o2.mu_o > 0  # CoO2, 0.086 eV/atom above the hull: O2 at once
    assert t.at[10, "s_volume_change"] == pytest.approx(st.volume_change(c, d))
    assert t.at[10, "s_reason"] == ""
    # the reasons, counted; each row keeps every number it could get
    assert t.at[11, "s_reason"] == "no charged structure" and np.isnan(t.at[11, "s_o2_mu_onset"])
    assert t.at[11, "s_e_hull_discharged"] == pytest.approx(0.005, abs=1e-9)
    assert t.at[12, "s_reason"] == "no discharged energy" and np.isfinite(t.at[12, "s_volume_change"])
    assert t.at[13, "s_e_hull_discharged"] < -0.1  # LiCoO2 checked against a hull without its polymorphs
    assert t.attrs["reasons"] == {"no charged structure": 1, "no discharged energy": 1}
    assert t.attrs["complete"] == 2 and t.attrs["rows"] == 4
    # CoO2 -> 1/3 Co3O4 + 1/3 O2 by hand (per CoO2 2/3 O released)
    e = {k: total(cc, dh) * sum(cc.values()) for k, cc, dh in LI_CO_O if k == "Co3O4"}
    assert o2.mu_o == pytest.approx((ec * 3 - e["Co3O4"] / 3) / (2 / 3) - MU["O"], abs=1e-9)


def test_phases_without_energy_are_named_and_counted(tmp_path):
    table, model, truth = system(LI_CO_O)
    a = round(float(table.loc[table["material_id"] == "Co3O4", "structure"].iloc[0].lattice[0, 0]), 6)
    model.by_a[a] = math.nan  # the model gave no energy for Co3O4 (e.g. not computed yet)
    hull = st.SystemHull(model, table, cache=tmp_path / "hulls", archive_dir=None)
    assert hull.missing(["Li", "Co", "O"]) == ["Co3O4"]
    assert hull.failed == {"Co3O4": "no finite energy from the model"}
    assert "Co3O4" not in {e.name for e in hull.phase_diagram(["Co", "O"]).all_entries}
    # CoO2 now looks 0.04 eV/atom more stable than with Co3O4 on the hull: why a gap must be said
    comp, e = truth["CoO2"]
    full, _ = hull_of(LI_CO_O, tmp_path / "full")
    assert hull.e_above_hull(comp, e) < full.e_above_hull(comp, e) - 0.03
    rows = pd.DataFrame({"charged": [licoo2(13.35, li=False)], "discharged": [licoo2()],
                         "e_charged": [e], "e_discharged": [truth["LiCoO2"][1]]})
    t = st.stability_table(rows, hull)
    assert t.attrs["hull_missing"] == {"Co-O": 1, "Co-Li-O": 1} and t.at[0, "reason"] == ""
    # the file keeps no energy for it, so a later model computes it
    record = json.loads((tmp_path / "hulls" / "Co-Li-O.json").read_text())
    stored = {d["id"]: d["energy_per_atom"] for d in record["phases"]}
    assert stored["Co3O4"] is None and stored["CoO"] == pytest.approx(truth["CoO"][1])


def test_the_gnn_stages_dft_hull_works_too(tmp_path):
    """The screen's formation-energy Hull (lib.cathodes.hull) has the same two methods: the table takes it,
    and mu_O* relative to the O reference does not depend on the scale (total or formation energies)."""
    from lib.cathodes.hull import Hull

    table, _, truth = system(MN_O)
    ef = {i: e - sum(MU[el.symbol] * c.get_atomic_fraction(el) for el in c.elements)
          for i, (c, e) in truth.items()}
    dft = Hull(table.assign(formation_energy_per_atom=[ef[i] for i in table["material_id"]]))
    total_hull, _ = hull_of(MN_O, tmp_path)
    sites = [[0, 0, 0], [0.5, 0.5, 0.5], [0.3, 0.3, 0], [0.7, 0.7, 0], [0.8, 0.2, 0.5], [0.2, 0.8, 0.5]]
    mno2 = Structure(Lattice.tetragonal(4.40, 2.87), ["Mn", "Mn", "O", "O", "O", "O"], sites)  # rutile
    a = st.oxygen_release_onset(mno2, ef["MnO2"], dft)
    b = st.oxygen_release_onset(mno2, truth["MnO2"][1], total_hull)
    assert a.mu_o == pytest.approx(b.mu_o, abs=1e-9) and a.products == b.products
    rows = pd.DataFrame({"charged": [mno2], "discharged": [mno2], "e_charged": [ef["MnO2"]],
                         "e_discharged": [ef["MnO2"]]})
    t = st.stability_table(rows, dft, ion="Li")
    assert t.at[0, "o2_mu_onset"] == pytest.approx(a.mu_o) and t.at[0, "volume_change"] == 0.0
    assert t.at[0, "e_hull_charged"] == pytest.approx(0.0, abs=1e-9) and "hull_missing" in t.attrs
