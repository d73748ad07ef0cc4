"""Ion mobility (lib.cathodes.mobility): hops, the NEB and its cache, with ASE's EMT on fcc Cu (seconds).

A vacancy hop in fcc Cu is between equivalent sites: its band must come out symmetric, its end points must be
relaxed minima of equal energy, and its barrier is EMT's vacancy migration energy of Cu (0.78 eV in this
31-atom cell; a number that moves if the band, the relaxation or the interpolation breaks).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from ase.build import bulk
from ase.calculators.emt import EMT
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor

from lib.cathodes import mobility as mob
from lib.structures import Crystal

torch.set_num_threads(1)

A = 3.6  # Å, fcc Cu
NN = A / math.sqrt(2)  # the nearest Cu-Cu distance
SETTINGS = mob.NEBSettings(n_images=3, min_length=7.0)  # 2x2x2 conventional cells: 31 atoms with the vacancy


class CountingEMT(EMT):
    """EMT that counts its calculations."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls = 0

    def calculate(self, *args, **kwargs):
        self.calls += 1
        super().calculate(*args, **kwargs)


def cu() -> Structure:
    return AseAtomsAdaptor.get_structure(bulk("Cu", "fcc", a=A, cubic=True))


@pytest.fixture(scope="module")
def band(tmp_path_factory):
    """One band of the Cu vacancy hop, computed once into a fresh cache folder."""
    folder = tmp_path_factory.mktemp("neb")
    s = cu()
    hop = mob.find_hops(s, "Cu")[0]
    calc = CountingEMT()
    r = mob.neb_barrier(s, hop, calc, settings=SETTINGS, potential="emt", cache=folder)
    return {"result": r, "calls": calc.calls, "folder": folder, "hop": hop, "structure": s}


# ------------------------------------------------------------------------------------------ (a) symmetry


def test_symmetric_hop_gives_a_symmetric_band(band):
    r = band["result"]
    assert r.status == "converged", r.reason
    assert r.supercell == [2, 2, 2] and r.n_atoms == 31
    assert len(r.energies) == SETTINGS.n_images + 2
    e = np.array(r.energies) - r.energies[0]
    assert r.barrier_forward == pytest.approx(r.barrier_backward, abs=2e-3)
    np.testing.assert_allclose(e, e[::-1], atol=3e-3)  # the profile is its own mirror image
    assert int(np.argmax(e)) == len(e) // 2  # the climbing image at the saddle, half-way
    assert 0.6 < r.barrier_forward < 0.95  # EMT's Cu vacancy migration: 0.78 eV here
    assert r.barrier_forward == pytest.approx(e.max())
    assert r.neb_fmax <= SETTINGS.fmax * 1.0001


def test_the_band_calls_the_model_once_per_image_and_step(band):
    # ASE's FIRE reads the NEB forces three times a step: without a view per image of the shared calculator
    # the model would be called about three times as often (440 calls instead of 150 for 5 images)
    r = band["result"]
    expected = SETTINGS.n_images * (r.neb_steps + 1) + sum(r.relax_steps) + 2
    assert expected - 2 <= band["calls"] <= expected + 2


# ------------------------------------------------------------------------------------------ (b) end points


def test_end_points_are_relaxed_minima(band):
    r, hop = band["result"], band["hop"]
    images = r.atoms()
    for end in (images[0], images[-1]):
        a = end.copy()
        a.calc = EMT()
        f = np.sqrt((a.get_forces() ** 2).sum(axis=1)).max()
        assert f < SETTINGS.fmax  # recomputed here, not taken from the result
    assert r.energies[0] == pytest.approx(r.energies[-1], abs=1e-4)  # equivalent states, equal energies
    assert max(r.end_fmax) < SETTINGS.fmax
    # relaxing lowered the energy below that of the unrelaxed cell with the vacancy
    initial, final, moving = mob.hop_endpoints(band["structure"], hop, r.supercell)
    initial.calc = EMT()
    assert r.energies[0] < initial.get_potential_energy() - 1e-3
    # the moving ion went one hop, and every other atom stayed near its site
    d = images[-1].positions - images[0].positions
    assert np.linalg.norm(d[moving]) == pytest.approx(NN, abs=0.1)
    assert np.delete(np.linalg.norm(d, axis=1), moving).max() < 0.1


def test_hop_endpoints_make_one_vacancy_and_move_one_ion():
    s = cu()
    hop = mob.find_hops(s, "Cu")[0]
    initial, final, moving = mob.hop_endpoints(s, hop, (2, 2, 2))
    assert len(initial) == len(final) == 31
    assert (initial.numbers == final.numbers).all()
    d = np.linalg.norm(final.positions - initial.positions, axis=1)
    assert d[moving] == pytest.approx(NN, abs=1e-6)
    assert np.delete(d, moving).max() == 0.0
    # the end point is the vacant site: no atom of the initial state sits there
    sc = final.copy()
    gap = sc.get_distances(moving, [i for i in range(len(sc)) if i != moving], mic=True).min()
    assert gap == pytest.approx(NN, abs=1e-6)


# ------------------------------------------------------------------------------------------ (c) hops


@pytest.mark.parametrize("method", ["pathfinder", "neighbors"])
def test_hops_of_fcc_cu_are_the_nearest_neighbour_distance(method):
    if method == "pathfinder":
        pytest.importorskip("pymatgen.analysis.diffusion")
    hops = mob.find_hops(cu(), "Cu", method=method)
    assert len(hops) == 1  # all twelve neighbours are one distinct hop
    assert hops[0].length == pytest.approx(NN, abs=1e-6)
    assert np.linalg.norm(hops[0].vector(cu())) == pytest.approx(NN, abs=1e-6)


@pytest.mark.parametrize("method", ["pathfinder", "neighbors"])
def test_shortest_hop_is_the_nearest_ion_ion_distance(method):
    if method == "pathfinder":
        pytest.importorskip("pymatgen.analysis.diffusion")
    rocksalt = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.6), ["Na", "Cl"],
                                         [[0, 0, 0], [0.5, 0.5, 0.5]])
    hops = mob.find_hops(rocksalt, "Na", method=method)
    na = [i for i, site in enumerate(rocksalt) if site.specie.symbol == "Na"]
    dist = rocksalt.distance_matrix[np.ix_(na, na)]
    nearest = dist[dist > 0].min()
    assert nearest == pytest.approx(4.6 / math.sqrt(2))
    assert hops[0].length == pytest.approx(nearest, abs=1e-6)
    assert rocksalt[hops[0].start].specie.symbol == rocksalt[hops[0].end].specie.symbol == "Na"
    # a tetragonal cell: the shortest hop (3.0 Å along a) comes first, longer ones after
    tet = Structure(Lattice.tetragonal(3.0, 5.0), ["Li", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    hops = mob.find_hops(tet, "Li", method=method)
    assert hops[0].length == pytest.approx(3.0)
    assert all(h.length >= 3.0 - 1e-9 for h in hops)


def test_find_hops_refuses_an_absent_ion():
    with pytest.raises(ValueError, match="no Li"):
        mob.find_hops(cu(), "Li")


def test_supercell_is_the_widest_under_the_atom_cap():
    # LiFePO4 as MP gives it (Pmnb setting, 28 atoms): 2x1x2 = 112 atoms under 120, one doubling under 60
    frac = np.random.default_rng(0).random((28, 3))
    lfp = Structure(Lattice.orthorhombic(4.75, 10.44, 6.09), ["Li"] * 28, frac)
    assert mob.choose_supercell(lfp, 8.0, 120) == (2, 1, 2)
    assert mob.choose_supercell(lfp, 8.0, 60) == (2, 1, 1)  # 6.09 Å narrowest, not 4.75
    assert mob.choose_supercell(cu(), 7.0, 120) == (2, 2, 2)
    assert mob.choose_supercell(cu(), 8.0, 120) == (3, 3, 3)  # 108 atoms


# ------------------------------------------------------------------------------------------ (d) the cache


def test_cached_band_is_read_back_without_computing(band):
    r = band["result"]
    assert band["calls"] > 20 and not r.cached  # the first run computed
    assert (band["folder"] / f"{r.key}.json").is_file()
    calc = CountingEMT()
    again = mob.neb_barrier(band["structure"], band["hop"], calc, settings=SETTINGS, potential="emt",
                            cache=band["folder"])
    assert calc.calls == 0  # nothing recomputed
    assert again.cached and again.key == r.key
    assert again.barrier_forward == pytest.approx(r.barrier_forward, abs=1e-9)
    assert again.energies == r.energies and again.images == r.images


def test_cache_key_follows_settings_hop_and_calculator(band):
    s, hop = band["structure"], band["hop"]
    k = mob.neb_key(s, hop, SETTINGS, "emt", CountingEMT())
    assert k == band["result"].key
    assert mob.neb_key(s, hop, mob.NEBSettings(n_images=5, min_length=7.0), "emt", CountingEMT()) != k
    assert mob.neb_key(s, hop, SETTINGS, "other", CountingEMT()) != k
    assert mob.neb_key(s, hop, SETTINGS, "emt", CountingEMT(asap_cutoff=True)) != k  # its parameters
    assert mob.neb_key(s, hop, SETTINGS, "emt", EMT()) != k  # another class
    other = mob.Hop("Cu", hop.start, hop.end, tuple(-v for v in hop.image), hop.length)
    assert mob.neb_key(s, other, SETTINGS, "emt", CountingEMT()) != k
    moved = s.copy()
    moved.translate_sites([0], [0.01, 0, 0])
    assert mob.neb_key(moved, hop, SETTINGS, "emt", CountingEMT()) != k


def test_a_damaged_cache_file_is_recomputed(band, tmp_path):
    r = band["result"]
    (tmp_path / f"{r.key}.json").write_text("{not json")
    calc = CountingEMT()
    again = mob.neb_barrier(band["structure"], band["hop"], calc, settings=SETTINGS, potential="emt",
                            cache=tmp_path)
    assert calc.calls > 0 and not again.cached
    assert again.barrier_forward == pytest.approx(r.barrier_forward, abs=1e-6)  # deterministic


# ------------------------------------------------------------------------------------ table, figure, bench


class FakePotential:
    name = "emt"

    def ase_calculator(self):
        return CountingEMT()  # the class of the band's calculator: the same cache key


def test_bench_lines_and_references(band, monkeypatch):
    import lib.cathodes.potentials as potentials

    monkeypatch.setattr(potentials, "get_potential", lambda name: FakePotential())
    s = band["structure"]
    pairs = pd.DataFrame([{"battery_id": "x", "ion": "Cu", "low_mpid": "mp-30", "high_mpid": "mp-0",
                           "discharged": Crystal.from_structure(s), "charged": Crystal.from_structure(s),
                           "formula_discharged": "Cu", "ef_discharged": 0.0}])
    refs = pd.DataFrame([
        {"material": "Cu", "ion": "Cu", "formula": "Cu", "mp_id_if_known": "mp-30", "path_note": "nn hop",
         "barrier_eV": 0.7, "method": "test", "source": "test", "doi": "", "note": ""},
        {"material": "CuNone", "ion": "Cu", "formula": "Cu", "mp_id_if_known": "mp-999", "path_note": "",
         "barrier_eV": 0.5, "method": "test", "source": "test", "doi": "", "note": ""},
    ])
    lines = {d["name"]: d for d in mob.neb_bench("emt", settings=SETTINGS, cache=band["folder"], pairs=pairs,
                                                  references=refs, sources=None)}
    assert lines["neb_barrier_Cu"]["value"] == pytest.approx(band["result"].barrier_forward)
    assert lines["neb_barrier_Cu"]["cached"] and lines["neb_barrier_Cu"]["material_id"] == "mp-30"
    assert lines["neb_barrier_ref_Cu"]["value"] == 0.7
    assert lines["neb_seconds_Cu"]["value"] == 0.0 and lines["neb_seconds_Cu"]["computed_seconds"] > 0
    # an MP id the pairs lack: no other polymorph stands in for it
    none = lines["neb_barrier_CuNone"]
    assert math.isnan(none["value"]) and "mp-999" in none["reason"]
    with pytest.raises(ValueError, match="no reference"):
        list(mob.neb_bench("emt", ["nothing"], pairs=pairs, references=refs, sources=None))


def test_reference_list_is_cited():
    refs = mob.load_references()
    assert {"material", "ion", "formula", "mp_id_if_known", "path_note", "barrier_eV", "method", "source",
            "doi", "note"} <= set(refs.columns)
    assert {"LiFePO4", "LiCoO2", "LiMn2O4", "Li2FeSiO4", "Na3V2(PO4)3"} <= set(refs["material"])
    assert refs["source"].str.len().gt(10).all() and refs["note"].str.len().gt(10).all()
    lfp = refs.set_index("material").loc["LiFePO4"]
    assert lfp["barrier_eV"] == pytest.approx(0.27) and lfp["doi"].startswith("10.")
    assert ((refs["barrier_eV"] > 0) & (refs["barrier_eV"] < 2)).sum() >= 4


def test_table_and_figure(band, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    r = band["result"]
    t = mob.barrier_table([r])
    assert t.loc[0, "barrier_forward [eV]"] == pytest.approx(r.barrier_forward)
    assert t.loc[0, "supercell"] == "2x2x2" and t.loc[0, "status"] == "converged"
    ax = mob.plot_profile(r)
    assert max(ax.lines[0].get_ydata()) == pytest.approx(r.barrier_forward, abs=0.05)  # the fit peaks there
    ax.figure.savefig(tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_predict_barrier_option_reaches_the_module(monkeypatch, tmp_path):
    from lib import predict

    seen = {}

    def fake(ion, path, potential=None, out=None, device=None):
        seen.update(ion=ion, path=path, potential=potential, out=out)
        return 0

    monkeypatch.setattr(mob, "barrier_cli", fake)
    out = str(tmp_path / "b.csv")
    assert predict.main(["--barrier", "Li", "x.cif", "--potential", "chgnet", "--out", out]) == 0
    assert seen == {"ion": "Li", "path": "x.cif", "potential": "chgnet", "out": out}


def test_barrier_cli_writes_table_and_figure(band, monkeypatch, tmp_path):
    import lib.cathodes.potentials as potentials

    monkeypatch.setattr(potentials, "get_potential", lambda name: FakePotential())
    monkeypatch.setattr(mob, "CACHE", band["folder"].parent)  # data/neb/<potential> -> the band's folder
    (band["folder"].parent / "emt").mkdir(exist_ok=True)
    for p in band["folder"].glob("*.json"):
        (band["folder"].parent / "emt" / p.name).write_text(p.read_text())
    cif = tmp_path / "Cu.cif"
    band["structure"].to(filename=str(cif))
    out = tmp_path / "barrier.csv"
    rc = mob.barrier_cli("Cu", cif, potential="chgnet", out=str(out), settings=SETTINGS, progress=False)
    assert rc == 0
    t = pd.read_csv(out)
    assert t.loc[0, "barrier_forward [eV]"] == pytest.approx(band["result"].barrier_forward, abs=1e-3)
    assert bool(t.loc[0, "cached"])  # the CIF round trip kept the structure's cache key
    assert out.with_suffix(".png").stat().st_size > 1000


def test_a_band_whose_images_lie_below_its_end_points_says_so():
    from lib.cathodes.mobility import NEBResult

    flat = NEBResult(key="a", id="a", ion="Li", potential="p", hop={}, status="converged", energies=[0.0, 0.2, 0.4, 0.2, 0.0])
    assert flat.end_points_lowest == 0.0 and flat.barrier_from_lowest == pytest.approx(0.4)
    dip = NEBResult(key="b", id="b", ion="Li", potential="p", hop={}, status="converged",
                    energies=[0.0, -0.21, 0.17, -0.2, 0.0], barrier_forward=0.17)  # the shape of the spinel's 8a-16c-8a band
    assert dip.barrier == pytest.approx(0.17) and dip.end_points_lowest == pytest.approx(0.21)
    assert dip.barrier_from_lowest == pytest.approx(0.38)
