"""The universal potential (CHGNet from its wheel), batched relaxations and the hull on a model's energies."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition, Lattice, Structure
from pymatgen.transformations.standard_transformations import RemoveSpeciesTransformation

from lib import data
from lib.cathodes import benchmark as B
from lib.cathodes import electrodes as E
from lib.cathodes import hull as H
from lib.cathodes import potentials as P
from lib.cathodes import relax as R
from lib.structures import Crystal


@pytest.fixture(scope="module")
def chgnet():
    return P.get_potential("chgnet")


@pytest.fixture(scope="module")
def table():
    return data.load_dataset("cgcnn", source="auto", progress=False, verbose=False)


def _by_id(table, mid: str) -> Structure:
    return table.set_index("material_id").loc[mid, "structure"].to_structure()


class Fake(P.UniversalPotential):
    """A stand-in potential: a harmonic well around given positions (or anything a test sets)."""

    name = "fake"

    def __init__(self, e=None, f=None, s=None, fail=False):
        self.e, self.f, self.s, self.fail = e, f, s, fail
        self.seen: list[int] = []  # structures handed to efs, per call

    def efs(self, structures):
        self.seen.append(len(structures))
        if self.fail:
            raise RuntimeError("model blew up")
        out = []
        for st in structures:
            n = len(st)
            out.append({"e": self.e if self.e is not None else -1.0,
                        "f": self.f(st) if callable(self.f) else np.zeros((n, 3)),
                        "s": self.s if self.s is not None else np.zeros((3, 3))})
        return out

    def energies(self, structures, progress=False):
        return np.array([self.e] * len(structures), float), None


def test_batched_efs_equals_chgnets_own(chgnet, table):
    ss = [_by_id(table, "mp-19017"), _by_id(table, "mp-19340")]
    mine = chgnet.efs(ss)
    ref = chgnet.model.predict_graph(chgnet._graphs(ss), task="efs", batch_size=8)
    for a, b in zip(mine, ref, strict=True):
        assert a["e"] == pytest.approx(float(b["e"]), abs=1e-5)
        assert np.abs(a["f"] - np.asarray(b["f"])).max() < 1e-3  # eV/Å, float32 sums in another order
        assert np.abs(a["s"] - np.asarray(b["s"])).max() < 1e-2  # GPa
    # and the static energies are the same numbers
    e, sigma = chgnet.energies(ss)
    assert sigma is None and e == pytest.approx([m["e"] for m in mine], abs=1e-5)
    assert chgnet.scale == "total" and chgnet.can_relax


def test_relaxation_lowers_the_energy_and_ends_below_fmax(chgnet, table, tmp_path):
    s = _by_id(table, "mp-19340").copy()  # LiVO2, 4 atoms: strained by 4 % and rattled
    s.scale_lattice(s.volume * 1.04**3)
    s.perturb(0.08, min_distance=0.02)
    (r,) = R.relax(chgnet, [s], ids=["LiVO2"], cache=tmp_path, progress=False)
    assert r.status == "converged" and r.ok and r.reason == ""
    assert r.fmax < 0.05 and r.steps > 3
    assert r.energy_per_atom < r.initial_energy_per_atom - 1e-3
    assert r.structure is not None and r.structure.formula == "LiVO2"
    assert r.volume_change < 0  # it shrinks back
    # the cache holds it, atomically written as JSON, and is read instead of relaxing again
    files = list(tmp_path.glob("*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["status"] == "converged"
    (again,) = R.relax(chgnet, [s], ids=["again"], cache=tmp_path, progress=False)
    assert again.cached and again.id == "again" and again.energy_per_atom == r.energy_per_atom
    np.testing.assert_allclose(again.structure.lattice, r.structure.lattice)


def _push(st):
    """One atom: no force (at its minimum at once); two atoms: opposite forces that never fall below fmax."""
    return np.zeros((1, 3)) if len(st) == 1 else np.array([[0.3, 0.3, 0.3], [-0.3, -0.3, -0.3]])


def test_a_killed_batch_resumes_without_redoing_finished_structures(tmp_path):
    first = Structure(Lattice.cubic(3.0), ["Li"], [[0, 0, 0]])
    others = [Structure(Lattice.cubic(3.0 + 0.1 * i), ["Li", "Li"], [[0, 0, 0], [0.5, 0.5, 0.5]]) for i in range(3)]
    structures = [first, *others]
    settings = R.Settings(max_steps=2)

    class Killed(Fake):
        def efs(self, structures):
            if len(self.seen) == 1:
                raise KeyboardInterrupt  # the run is killed in its second step
            return super().efs(structures)

    with pytest.raises(KeyboardInterrupt):
        R.relax(Killed(f=_push), structures, cache=tmp_path, progress=False, settings=settings)
    assert len(list(tmp_path.glob("*.json"))) == 1  # the first one finished and was written
    assert not [f for f in tmp_path.iterdir() if "tmp" in f.name]  # no partial file
    counting = Fake(f=_push)
    res = R.relax(counting, structures, cache=tmp_path, progress=False, settings=settings)
    assert res[0].cached and res[0].status == "converged" and not any(r.cached for r in res[1:])
    assert counting.seen[0] == 3  # only the three unfinished ones are computed again
    assert [r.status for r in res[1:]] == ["not converged"] * 3
    assert all("after 2 steps" in r.reason and r.steps == 2 for r in res[1:])
    # other settings are another cache key: nothing is reused across them
    assert R.structure_key(first, "fake", settings) != R.structure_key(first, "fake", R.Settings())


def test_bad_relaxations_are_flagged_with_their_reason(tmp_path):
    s = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    nan = R.relax(Fake(e=np.nan), [s], cache=None, progress=False)[0]
    assert nan.status == "exploded" and "non-finite" in nan.reason and not nan.ok
    # a huge tensile stress blows the cell up: stopped once the volume has grown by more than half
    big = R.relax(Fake(s=-np.eye(3) * 500.0), [s], cache=None, progress=False)[0]
    assert big.status == "exploded" and "volume changed by" in big.reason and abs(big.volume_change) > 0.5
    # forces that push the two atoms together: stopped below 0.5 Å
    pull = lambda st: np.array([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]]) * 3.0  # noqa: E731
    close = R.relax(Fake(f=pull), [s], cache=None, progress=False)[0]
    assert close.status == "exploded" and "Å apart" in close.reason
    failed = R.relax(Fake(fail=True), [s], cache=tmp_path, progress=False)[0]
    assert failed.status == "failed" and "model blew up" in failed.reason and failed.structure is None
    # flagged results are cached too (a failure is not retried silently on every run; delete to retry)
    assert len(list(tmp_path.glob("*.json"))) == 1


def test_lifepo4_voltage_by_removal_within_0p3_v_of_mp(chgnet, table):
    """The screen's construction on olivine LiFePO4: all Li removed, both states and Li metal relaxed."""
    lfp = _by_id(table, "mp-19017")
    fp = RemoveSpeciesTransformation(["Li"]).apply_transformation(lfp)
    r_d, r_c = R.relax(chgnet, [lfp, fp], cache=None, progress=False)
    assert r_d.ok and r_c.ok
    mu = chgnet.ion_energy("Li")
    assert -1.95 < mu < -1.85  # bcc Li, CHGNet (MP's PBE: -1.909 eV/atom)
    p = E.pair_properties(r_c.structure, r_d.structure, r_c.energy_per_atom, r_d.energy_per_atom, "Li",
                          ion_energy=mu)
    assert abs(p["voltage"] - 3.40) < 0.3
    assert p["capacity_grav"] == pytest.approx(170, abs=2)  # 1 Li per LiFePO4


def test_potential_hull_from_given_energies_equals_pymatgens(table):
    dft = H.Hull(table)
    ids = [p[0] for p in dft.phases(["Li", "O"])]
    assert len(ids) > 5
    energies = {mid: -3.0 - 0.013 * k for k, mid in enumerate(ids)}  # any energies, one per phase

    class Given(Fake):
        def energies(self, structures, progress=False):
            assert len(structures) == len(ids)  # asked once, for every phase, in order
            return np.array([energies[m] for m in ids]), None

    hull = H.PotentialHull(dft, Given(), relaxed=False, window=None, max_atoms=None)
    entries = []
    for mid in ids:
        c = dft.crystals[mid].to_structure().composition
        entries.append(PDEntry(c, energies[mid] * c.num_atoms, name=mid))
    ref = PhaseDiagram(entries)
    comp = Composition("Li2O2")
    for e in (-4.5, -3.2, -2.0):
        ours = hull.e_above_hull(comp, e)
        assert ours == pytest.approx(ref.get_e_above_hull(PDEntry(comp, e * 4), allow_negative=True), abs=1e-9)
    # energies of two scales do not mix
    with pytest.raises(P.EnergyModelError):
        P.check_same_scale(Given(), P.FormationEnergyModel(lambda c: (np.zeros(len(c)), None)))


def test_potential_pair_table_uses_total_energies_and_the_models_metal(table):
    pairs = E.read_pairs()
    matched = E.match_pairs(pairs[pairs["battery_id"].isin(["mp-19017_Li"]) | (pairs["low_mpid"] == "mp-19340")],
                            table)
    assert len(matched) >= 1

    class Flat(Fake):
        def ion_energy(self, ion):
            return -2.0

    t = P.potential_pair_table(matched, Flat(e=-5.0), progress=False)
    # with every state at -5 eV/atom and Li at -2: V = a_c e - a_d e + mu (z = 1), per pair
    for c, d, v in zip(t["charged"], t["discharged"], t["umlip_static_voltage"], strict=True):
        g = E.check_pair(c, d, "Li")
        assert v == pytest.approx(float(g.voltage(-5.0, -5.0, ion_energy=-2.0)[0]), abs=1e-9)
    assert t.attrs["umlip_static_ion_energies"] == {"Li": -2.0}


def test_rescored_voltages_take_the_second_potentials_energies_at_the_first_ones_minima(table, tmp_path):
    """Relax with one potential, score with another: the voltages are the scorer's (its energies and its metal),
    on the structures the relaxer left; without relaxed=True it refuses."""
    pairs = E.read_pairs()
    matched = E.match_pairs(pairs[pairs["battery_id"].isin(["mp-19017_Li"]) | (pairs["low_mpid"] == "mp-19340")],
                            table)

    class Scorer(Fake):
        name = "scorer"

        def energies(self, structures, progress=False):
            self.scored = list(structures)
            return np.array([-6.0] * len(structures), float), None

        def ion_energy(self, ion):
            return -1.5

    relaxer, scorer = Fake(), Scorer()  # zero forces: every structure converges at once, as it is
    t = P.potential_pair_table(matched, relaxer, relaxed=True, rescore=scorer, progress=False, cache=tmp_path)
    assert len(scorer.scored) == len(P.pair_crystals(matched))
    for c, d, v in zip(t["charged"], t["discharged"], t["umlip_rescored_voltage"], strict=True):
        g = E.check_pair(c, d, "Li")
        assert v == pytest.approx(float(g.voltage(-6.0, -6.0, ion_energy=-1.5)[0]), abs=1e-9)
    assert t.attrs["umlip_rescored_ion_energies"] == {"Li": -1.5}
    with pytest.raises(ValueError, match="relaxed=True"):
        P.potential_pair_table(matched, relaxer, rescore=scorer, progress=False)


def test_metal_structures():
    for ion in ("Li", "Na", "Mg", "Ca", "Al", "Zn"):
        m = P.metal_structure(ion)
        assert m.composition.reduced_formula == ion
    with pytest.raises(P.EnergyModelError):
        P.metal_structure("Fe")
    assert isinstance(Crystal.from_structure(P.metal_structure("Li")), Crystal)


def test_relaxations_on_a_dask_cluster_fill_the_same_cache(tmp_path):
    from dask.distributed import Client, LocalCluster

    structures = [Structure(Lattice.cubic(3.0 + 0.1 * i), ["Li", "Li"], [[0, 0, 0], [0.5, 0.5, 0.5]])
                  for i in range(5)]
    settings = R.Settings(max_steps=3)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        res = R.relax(Fake(f=_push), structures, cache=tmp_path, progress=False, settings=settings, scheduler=client,
                      chunk=2)
    assert [r.status for r in res] == ["not converged"] * 5 and all(r.steps == 3 for r in res)
    assert len(list(tmp_path.glob("*.json"))) == 5
    again = R.relax(Fake(fail=True), structures, cache=tmp_path, progress=False, settings=settings)
    assert all(r.cached for r in again)  # read back, the failing model never called


def test_archived_relaxations_are_read_back_on_a_machine_without_the_cache(tmp_path, monkeypatch):
    structures = [Structure(Lattice.cubic(3.0 + 0.1 * i), ["Li", "Li"], [[0, 0, 0], [0.5, 0.5, 0.5]])
                  for i in range(3)]
    settings = R.Settings(max_steps=2)
    cache, arch = tmp_path / "cache" / "fake", tmp_path / "records"
    first = R.relax(Fake(f=_push), structures[:2], cache=cache, progress=False, settings=settings)
    path = R.archive("fake", cache=cache, archive_dir=arch)
    assert R.archive("fake", cache=cache, archive_dir=arch).read_bytes() == path.read_bytes()  # same bytes again
    assert len(R.archived("fake", arch)) == 2
    # another machine: an empty default cache, the committed archive
    monkeypatch.setattr(R, "CACHE", tmp_path / "empty")
    monkeypatch.setattr(R, "ARCHIVED", arch)
    counting = Fake(f=_push)
    res = R.relax(counting, structures, progress=False, settings=settings)
    assert [r.cached for r in res] == [True, True, False] and counting.seen[0] == 1  # only the third is computed
    assert [r.energy_per_atom for r in res[:2]] == [r.energy_per_atom for r in first]
    assert res[0].structure.lattice.tolist() == first[0].structure.lattice.tolist()
    # an explicit cache folder (or none) does not read the archive
    assert not any(r.cached for r in R.relax(Fake(f=_push), structures[:1], cache=None, progress=False,
                                             settings=settings))


def test_static_energies_are_cached_beside_the_relaxations_and_archived(tmp_path, monkeypatch):
    """A static energy is computed once per model and structure; it travels in the relaxations' archive."""
    structures = [Structure(Lattice.cubic(3.0 + 0.1 * i), ["Li", "Li"], [[0, 0, 0], [0.5, 0.5, 0.5]])
                  for i in range(3)]
    calls = []

    def compute(ss):
        calls.append(len(ss))
        return [-1.0 - s.lattice.a for s in ss]

    model, cache, arch = Fake(), tmp_path / "cache" / "fake", tmp_path / "records"
    e = R.static_energies(model, structures[:2], compute, cache=cache)
    assert e.tolist() == pytest.approx([-4.0, -4.1]) and calls == [2]
    assert R.static_energies(model, structures, compute, cache=cache)[:2].tolist() == e.tolist()
    assert calls == [2, 1]  # only the third
    R.relax(Fake(f=_push), structures[:1], cache=cache, progress=False, settings=R.Settings(max_steps=2))
    R.archive("fake", cache=cache, archive_dir=arch)
    kinds = sorted(d.get("kind", "relaxation") for d in R.archived("fake", arch).values())
    assert kinds == ["relaxation", "static", "static", "static"]  # relaxations keep their own keys
    monkeypatch.setattr(R, "CACHE", tmp_path / "empty")
    monkeypatch.setattr(R, "ARCHIVED", arch)
    assert R.static_energies(model, structures, compute).tolist() == pytest.approx([-4.0, -4.1, -4.2])
    assert calls == [2, 1]  # all read back from the archive


def test_mp2020_correction_is_pymatgens_for_oxides_fluorides_and_metals():
    """The correction a potential trained on MP's uncorrected energies needs: GGA+U only where MP runs it."""
    from pymatgen.entries.compatibility import MaterialsProject2020Compatibility

    c = MaterialsProject2020Compatibility(check_potcar=False)
    o, fe_u = c.comp_correction["oxide"], c.u_corrections["O"]["Fe"]
    fe2o3 = Structure(Lattice.cubic(5.0), ["Fe", "Fe", "O", "O", "O"],
                      [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]])
    assert P.mp2020_correction(fe2o3) == pytest.approx((3 * o + 2 * fe_u) / 5)
    zno = Structure(Lattice.cubic(4.6), ["Zn", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])  # Zn: no U in MP
    assert P.mp2020_correction(zno) == pytest.approx(o / 2)
    assert P.mp2020_correction(P.metal_structure("Li")) == 0.0


@pytest.fixture(scope="module")
def sevennet():
    return P.get_potential("sevennet")


def test_sevennet_is_on_mps_corrected_scale_and_gives_lifepo4s_voltage(sevennet, chgnet, table):
    """SevenNet-0 learned MP's uncorrected energies: with MP2020 added once it agrees with MP's PBE(+U) energies
    as CHGNet does; without it, oxides of Fe, Mn, Co, Ni, V are ~0.7 eV/atom off. Its voltage of olivine
    LiFePO4 / FePO4 built by removal, both relaxed with it, is within 0.3 V of MP's 3.40 V."""
    ids = ["mp-19017", "mp-18748", "mp-19009", "mp-19395", "mp-542844", "mp-18997", "mp-853240"]
    t = table.set_index("material_id").loc[ids]
    ss = [c.to_structure() for c in t["structure"]]
    e7, _ = sevennet.energies(ss)
    ec, _ = chgnet.energies(ss)
    ref = t["energy_per_atom"].to_numpy(float)
    assert np.isfinite(ref).all()
    assert np.median(np.abs(e7 - ref)) < 0.05 and np.median(np.abs(ec - ref)) < 0.1
    corr = np.array([P.mp2020_correction(s) for s in ss])
    assert np.median(np.abs(e7 - corr - ref)) > 0.3  # the correction matters
    fp = RemoveSpeciesTransformation(["Li"]).apply_transformation(ss[0])
    r_d, r_c = R.relax(sevennet, [ss[0], fp], cache=None, progress=False)
    assert r_d.ok and r_c.ok and r_d.energy_per_atom < e7[0] + 1e-6
    p = E.pair_properties(r_c.structure, r_d.structure, r_c.energy_per_atom, r_d.energy_per_atom, "Li",
                          ion_energy=sevennet.ion_energy("Li"))
    assert abs(p["voltage"] - 3.40) < 0.3


def test_sevennet_efs_forces_and_stress_match_finite_differences(sevennet, table):
    """The efs a relaxation runs on: forces are -dE/dx and the stress is ASE's (GPa), as CHGNet's efs."""
    s = _by_id(table, "mp-19017").copy()
    s.translate_sites([0], [0.08, -0.05, 0.03], frac_coords=False)  # off its minimum: forces of ~0.5 eV/Å
    r = sevennet.efs([s])[0]
    n, h = len(s), 0.01  # its energies are float32: a step of 0.01 Å keeps their rounding below 2e-3 eV/Å
    for i, k in ((0, 0), (0, 1), (5, 2)):
        plus, minus = s.copy(), s.copy()
        plus.translate_sites([i], [h if j == k else 0 for j in range(3)], frac_coords=False)
        minus.translate_sites([i], [-h if j == k else 0 for j in range(3)], frac_coords=False)
        ep, em = (sevennet.efs([x])[0]["e"] * n for x in (plus, minus))
        assert -(ep - em) / (2 * h) == pytest.approx(r["f"][i, k], abs=0.02)
    assert np.abs(r["f"][0]).max() > 0.1
    assert r["s"].shape == (3, 3) and np.allclose(r["s"], r["s"].T, atol=1e-6)
    rc = P.get_potential("chgnet").efs([s])[0]
    assert np.abs(r["s"] - rc["s"]).max() < 2.0  # same sign and units as CHGNet's (GPa), near equilibrium


def test_sevennet_batched_graph_equals_its_calculator_one_by_one(table):
    """The batched path (one graph of several structures, as on a GPU) gives what SevenNet's ASE calculator
    gives one structure at a time: energies, forces and stresses to float32 rounding; batches respect
    ``max_atoms`` and keep the structures' order."""
    ss = [_by_id(table, i).copy() for i in ("mp-19017", "mp-19340", "mp-714944", "mp-18997")]
    ss[0].translate_sites([0], [0.08, -0.05, 0.03], frac_coords=False)  # off its minimum: real forces
    pot = P.SevenNet(max_atoms=40)
    assert pot._batches(ss) == [[0, 1, 2], [3]]  # 28 + 8 + 3 atoms, then 28: batches filled up to 40
    ref = pot._one_by_one(ss)
    for cap in (40, 2000):
        pot.max_atoms = cap
        got = pot.efs(ss)
        for a, b, s in zip(ref, got, ss, strict=True):
            assert b["f"].shape == (len(s), 3)
            assert abs(a["e"] - b["e"]) < 1e-5
            assert np.abs(a["f"] - b["f"]).max() < 1e-4 and np.abs(a["s"] - b["s"]).max() < 1e-3
        np.testing.assert_allclose(pot._static(ss), [r["e"] for r in ref], atol=1e-5)
    assert np.abs(ref[0]["f"]).max() > 0.1
    assert P.SevenNet(device="cpu")._batches(ss) == [[0], [1], [2], [3]]  # CPU default: one structure a call
