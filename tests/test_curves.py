"""lib.cathodes.curves: intermediate orderings, the hull in ion content, voltage steps through pymatgen, the
cache, the figure, measured plateaus and the bench hook. A fake potential whose energies follow a formula
stands in for the neural networks, so every expected voltage is known in closed form and the tests run in
seconds."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from lib.cathodes import curves as C
from lib.cathodes.electrodes import pair_properties
from lib.structures import Crystal

MU = -1.9  # eV/atom: the fake's Li metal
E0, B, W = -20.0, -6.0, -0.4  # eV per CoO2: E(x) = E0 + B x + W x (1 - x), convex for W < 0


def energy_per_fu(x: float) -> float:
    return E0 + B * x + W * x * (1 - x)


class FakePotential:
    """The duck type of lib.cathodes.potentials' potentials that the curves use (static energies only)."""

    name = "fake-curves"
    scale = "total"
    can_relax = False

    def __init__(self, fail_after: int | None = None, nan_for_x: float | None = None):
        self.calls = 0  # structures whose energy was computed
        self.fail_after, self.nan_for_x = fail_after, nan_for_x

    def energies(self, structures, progress: bool = False):
        out = []
        for s in structures:
            if self.fail_after is not None and self.calls >= self.fail_after:
                raise RuntimeError("killed")
            self.calls += 1
            x, fu, _ = C.ion_content(s, "Li")
            nan = self.nan_for_x is not None and abs(x - self.nan_for_x) < 1e-9
            e = math.nan if nan else energy_per_fu(x)
            out.append(e * fu / len(s))
        return np.array(out), None

    def ion_energy(self, ion: str) -> float:
        return MU


def licoo2() -> Structure:
    """Layered LiCoO2 (R-3m, conventional hexagonal cell: 12 atoms, 3 Li)."""
    return Structure.from_spacegroup("R-3m", Lattice.hexagonal(2.82, 14.05), ["Li", "Co", "O"],
                                     [[0, 0, 0.5], [0, 0, 0], [0, 0, 0.26]])


def coo2() -> Structure:
    s = licoo2()
    s.remove_species(["Li"])
    return s


def step_voltage(x1: float, x2: float) -> float:
    return -(energy_per_fu(x2) - energy_per_fu(x1)) / (x2 - x1) + MU


# ----------------------------------------------------------------------------------------------
# voltages
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("charged", [None, "given"])
def test_two_end_curve_is_the_pairs_average_voltage(charged):
    pot = FakePotential()
    c, d = coo2(), licoo2()
    curve = C.voltage_curve(pot, d, "Li", c if charged else None, fractions=(), relax=False, cache=None,
                            progress=False)
    e_c, e_d = pot.energies([c, d])[0]
    usual = pair_properties(c, d, e_c, e_d, "Li", ion_energy=MU)  # the project's average voltage of a pair
    assert curve.ok and len(curve.steps) == 1
    assert curve.average_voltage == pytest.approx(usual["voltage"], abs=1e-9)
    assert curve.average_voltage == pytest.approx(MU - B, abs=1e-9)  # 4.1 V from the formula
    assert curve.capacity_grav == pytest.approx(usual["capacity_grav"], rel=1e-9)
    assert curve.capacity_grav == pytest.approx(273.8, abs=0.1)  # LiCoO2's theoretical capacity
    assert curve.steps["x_charge"].iloc[0] == 0 and curve.steps["x_discharge"].iloc[0] == 1


def test_quarter_steps_follow_the_energies_and_the_cutoff():
    curve = C.voltage_curve(FakePotential(), licoo2(), "Li", coo2(), relax=False, cache=None, progress=False,
                            cutoff=4.1)
    st = curve.steps
    np.testing.assert_allclose(st["x_charge"], [0, 0.25, 0.5, 0.75], atol=1e-12)
    np.testing.assert_allclose(st["x_discharge"], [0.25, 0.5, 0.75, 1], atol=1e-12)
    want = [step_voltage(a, b) for a, b in zip(st["x_charge"], st["x_discharge"], strict=True)]
    np.testing.assert_allclose(st["voltage"], want, atol=1e-9)
    np.testing.assert_allclose(st["voltage"], [4.4, 4.2, 4.0, 3.8], atol=1e-9)
    assert curve.average_voltage == pytest.approx(4.1, abs=1e-9)  # the steps average to the pair's voltage
    assert st["capacity_grav"].sum() == pytest.approx(curve.capacity_grav, rel=1e-9)
    assert curve.accessible_capacity == pytest.approx(curve.capacity_grav / 2, rel=1e-9)  # 4.0 and 3.8 V only
    assert curve.states["on_curve"].sum() == 5
    assert curve.states.loc[curve.states["on_curve"], "e_above_hull_per_fu"].abs().max() < 1e-9
    assert not curve.skipped


def test_unstable_intermediates_leave_one_step():
    class Concave(FakePotential):  # W > 0: every intermediate above the line between the ends
        def energies(self, structures, progress=False):
            out = []
            for s in structures:
                x, fu, _ = C.ion_content(s, "Li")
                out.append((E0 + B * x + 0.4 * x * (1 - x)) * fu / len(s))
            return np.array(out), None

    curve = C.voltage_curve(Concave(), licoo2(), "Li", coo2(), relax=False, cache=None, progress=False)
    assert len(curve.steps) == 1 and curve.average_voltage == pytest.approx(4.1, abs=1e-9)
    inter = curve.states[curve.states["role"] == "ordering"]
    assert not inter["on_curve"].any()
    np.testing.assert_allclose(inter["e_above_hull_per_fu"], 0.4 * inter["x"] * (1 - inter["x"]), atol=1e-9)


def test_relaxed_curve_through_the_batched_relaxation(tmp_path):
    class Relaxing(FakePotential):  # no forces, no stress: every relaxation converges at its first step
        name = "fake-curves-relax"
        can_relax = True

        def efs(self, structures):
            e = self.energies(structures)[0]
            return [{"e": float(x), "f": np.zeros((len(s), 3)), "s": np.zeros((3, 3))}
                    for x, s in zip(e, structures, strict=True)]

    pot = Relaxing()
    curve = C.voltage_curve(pot, licoo2(), "Li", coo2(), relax=True, cache=tmp_path, relax_cache=None,
                            progress=False)
    assert curve.relaxed and (curve.states["status"] == "converged").all()
    np.testing.assert_allclose(curve.steps["voltage"], [4.4, 4.2, 4.0, 3.8], atol=1e-9)
    rec = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert rec["settings"]["relax"] and all(it["final"] is not None for it in rec["items"])
    with pytest.raises(ValueError, match="cannot relax"):  # no forces: no relaxed curve
        C.voltage_curve(FakePotential(), licoo2(), "Li", coo2(), relax=True, cache=None, progress=False)


# ----------------------------------------------------------------------------------------------
# orderings
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fraction", [0.25, 0.5, 0.75])
def test_orderings_have_the_content_and_one_ion_per_site(fraction):
    orders = C.enumerate_orderings(licoo2(), "Li", fraction, n=3)
    assert orders
    full = C.primitive(licoo2())  # one Li per primitive cell
    for o in orders:
        s = o.structure
        comp = s.composition
        assert comp["Co"] == o.cells and comp["O"] == 2 * o.cells  # the framework, whole
        assert comp["Li"] == round(fraction * o.cells)  # the requested content
        d = s.distance_matrix[np.triu_indices(len(s), 1)]
        assert d.min() > 1.5  # no two atoms on one site (the closest pair here is Co-O, ~1.9 Å)
        # every Li sits on a Li site of the full supercell
        sup = full.copy()
        sup.make_supercell(C.supercell_matrix(full.lattice, o.cells))
        li_full = [site for site in sup if site.specie.symbol == "Li"]
        for site in (x for x in s if x.specie.symbol == "Li"):
            assert min(site.distance(t) for t in li_full) < 1e-3
    ewald = [o.ewald for o in orders]
    assert ewald == sorted(ewald) and [o.rank for o in orders] == list(range(len(orders)))


def test_orderings_are_distinct_and_limited():
    orders = C.enumerate_orderings(licoo2(), "Li", 0.5, n=3, max_cells=4)
    from pymatgen.analysis.structure_matcher import StructureMatcher

    sm = StructureMatcher(primitive_cell=False, attempt_supercell=False)
    for i in range(len(orders)):
        for j in range(i + 1, len(orders)):
            assert not sm.fit(orders[i].structure, orders[j].structure)
    with pytest.raises(C.CurveError, match="fits no supercell"):  # a fifth of 1 site needs 5 cells
        C.enumerate_orderings(licoo2(), "Li", 0.2, max_cells=4)
    with pytest.raises(C.CurveError, match="holds no Li"):
        C.enumerate_orderings(coo2(), "Li", 0.5)


# ----------------------------------------------------------------------------------------------
# the cache
# ----------------------------------------------------------------------------------------------


def test_cache_reads_back_and_resumes(tmp_path):
    pot = FakePotential()
    first = C.voltage_curve(pot, licoo2(), "Li", coo2(), relax=False, cache=tmp_path, progress=False)
    n = pot.calls
    assert n == len(first.states) >= 5
    again = C.voltage_curve(pot, licoo2(), "Li", coo2(), relax=False, cache=tmp_path, progress=False)
    assert pot.calls == n  # nothing recomputed
    pd.testing.assert_frame_equal(first.steps, again.steps)
    assert again.key == first.key and (tmp_path / f"{first.key}.json").is_file()
    other = C.voltage_curve(pot, licoo2(), "Li", coo2(), fractions=(0.5,), relax=False, cache=tmp_path,
                            progress=False)
    assert other.key != first.key and pot.calls > n  # other settings, another curve

    # a run killed after 3 structures resumes with the rest only
    folder = tmp_path / "resume"
    killed = FakePotential(fail_after=3)
    with pytest.raises(RuntimeError, match="killed"):
        C.voltage_curve(killed, licoo2(), "Li", coo2(), relax=False, cache=folder, chunk=1, progress=False)
    rec = json.loads(next(folder.glob("*.json")).read_text())
    assert not rec["complete"] and sum(it.get("status") == "static" for it in rec["items"]) == 3
    fresh = FakePotential()
    done = C.voltage_curve(fresh, licoo2(), "Li", coo2(), relax=False, cache=folder, chunk=1, progress=False)
    assert fresh.calls == len(done.states) - 3
    pd.testing.assert_frame_equal(done.steps, first.steps)


# ----------------------------------------------------------------------------------------------
# the figure
# ----------------------------------------------------------------------------------------------


def test_figure_of_a_failed_curve_says_why(tmp_path):
    bad = C.voltage_curve(FakePotential(nan_for_x=1.0), licoo2(), "Li", coo2(), relax=False, cache=None,
                          progress=False)
    assert not bad.ok and "discharged" in bad.error
    fig = C.plot_curve(bad, tmp_path / "bad.png")
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert "no voltage curve" in texts and "discharged" in texts
    assert (tmp_path / "bad.png").stat().st_size > 1000
    good = C.voltage_curve(FakePotential(), licoo2(), "Li", coo2(), relax=False, cache=None, progress=False)
    fig = C.plot_curve(good, tmp_path / "good.png", plateaus=C.plateaus_table().query("material == 'LiCoO2'"))
    ys = np.concatenate([ln.get_ydata() for ln in fig.axes[0].lines if ln.get_label() == "predicted"])
    np.testing.assert_allclose(sorted(set(np.round(ys, 9))), [3.8, 4.0, 4.2, 4.4])
    assert (tmp_path / "good.png").stat().st_size > 1000


# ----------------------------------------------------------------------------------------------
# measured plateaus and the bench hook
# ----------------------------------------------------------------------------------------------


def test_plateau_mae_converts_formula_units():
    # LiMn2O4: a curve per MnO2 (x 0-0.5), plateaus per Mn2O4 (x 0-1)
    table = pd.DataFrame({"material": "LiMn2O4", "ion": "Li", "framework": "MnO2",
                          "x_charge": [0.0, 0.25], "x_discharge": [0.25, 0.5], "voltage": [4.25, 3.9]})
    mae, t = C.plateau_mae(table, C.plateaus_table())
    got = t[t["material"] == "LiMn2O4"].set_index("plateau_index")
    assert got.loc[0, "predicted"] == pytest.approx(4.25) and got.loc[1, "predicted"] == pytest.approx(3.9)
    assert mae == pytest.approx((0.15 + 0.1) / 2)
    assert int(t["compared"].sum()) == 2  # the other materials have no curve
    short = table.assign(x_charge=[0.0, 0.1], x_discharge=[0.1, 0.2])  # covers a fifth of the plateau
    assert math.isnan(C.plateau_voltage(short, 0.0, 1.0))
    assert C.plateau_voltage(short, 0.0, 1.0, min_overlap=0.1) == pytest.approx((4.25 + 3.9) / 2)


def test_plateau_list_is_complete_and_matches_its_csv(tmp_path):
    t = C.plateaus_table()
    assert list(t.columns) == list(C.PLATEAU_COLUMNS)
    assert {"LiCoO2", "LiNiO2", "LiMn2O4", "LiFePO4", "Li4Ti5O12"} <= set(t["material"])
    assert (t["ion"] == "Na").any()
    assert sorted(t.loc[t["material"] == "LiMn2O4", "voltage"]) == [4.0, 4.1]
    assert t["source"].str.len().min() > 10 and t["note"].str.len().min() > 10
    assert ((t["x_high"] > t["x_low"]) & t["voltage"].between(0.5, 5.5)).all()
    path = C.write_plateaus(tmp_path / "p.csv")
    pd.testing.assert_frame_equal(C.load_plateaus(path), t, check_dtype=False)
    if C.PLATEAUS_FILE.is_file():  # the shipped file is the constant
        pd.testing.assert_frame_equal(C.load_plateaus(C.PLATEAUS_FILE), t, check_dtype=False)


def test_curve_bench_on_a_toy_pair(tmp_path):
    pairs = pd.DataFrame({"battery_id": ["toy_Li"], "ion": ["Li"],
                          "charged": [Crystal.from_structure(coo2())],
                          "discharged": [Crystal.from_structure(licoo2())], "formula_charged": ["CoO2"],
                          "formula_discharged": ["LiCoO2"], "avg_voltage": [4.0]})
    out = list(C.curve_bench(FakePotential(), materials=["LiCoO2", "LiFePO4"], relax=False, pairs=pairs,
                             cache=tmp_path, progress=False, figures=tmp_path, sources=None))
    by = {d["name"]: d for d in out}
    assert by["curve_avg_voltage_LiCoO2"]["value"] == pytest.approx(4.1, abs=1e-9)
    assert by["curve_steps_LiCoO2"]["value"] == 4
    assert "no Li pair" in by["curve_failed_LiFePO4"]["why"]
    # the plateau of LiCoO2 (x 0.5-1) against the steps at 4.0 and 3.8 V: their mean 3.9 V, the measured 3.9 V
    assert by["curve_plateau_mae_vs_exp"]["n"] == 1
    assert by["curve_plateau_mae_vs_exp"]["value"] == pytest.approx(0.0, abs=1e-9)
    assert by["curve_seconds_LiCoO2"]["value"] > 0
    assert (tmp_path / "curve_LiCoO2_fake-curves_static.png").is_file()


def test_curve_bench_builds_the_charged_end_of_a_discharged_structure_from_the_sources(tmp_path):
    """LiCoO2 is in no pair (the pairs hold only LiFePO4's formula's neighbour): the sources' R-3m LiCoO2 is
    found by formula and space group, its charged end is built by removing the Li, and the line says so."""
    pairs = pd.DataFrame(columns=["battery_id", "ion", "charged", "discharged", "formula_charged",
                                  "formula_discharged", "avg_voltage"])
    loads = []

    def sources():
        loads.append(1)
        return pd.DataFrame({"material_id": ["mp-1", "mp-2"], "source": ["extra", "extra"],
                             "structure": [Crystal.from_structure(licoo2()), Crystal.from_structure(coo2())]})

    out = list(C.curve_bench(FakePotential(), materials=["LiCoO2", "NaFeO2"], relax=False, pairs=pairs,
                             cache=tmp_path, progress=False, sources=C.sources_loader(sources)))
    by = {d["name"]: d for d in out}
    line = by["curve_avg_voltage_LiCoO2"]
    assert line["charged_built"] and "mp-1" in line["pair"] and "without its Li" in line["pair"]
    assert math.isnan(line["mp_avg_voltage"])
    assert line["value"] == pytest.approx(MU - B, abs=1e-9)  # 4.1 V: from x = 0 (built) to x = 1
    assert by["curve_steps_LiCoO2"]["value"] == 4
    assert "no NaFeO2 among the 2 structures" in by["curve_failed_NaFeO2"]["why"]
    assert len(loads) == 1  # loaded once for both materials
    assert by["curve_plateau_mae_vs_exp"]["n"] == 1


def test_predict_curve_command(tmp_path, monkeypatch, capsys):
    from lib import predict
    from lib.cathodes import potentials

    monkeypatch.setattr(potentials, "get_potential", lambda name: FakePotential())
    monkeypatch.setattr(C, "CACHE", tmp_path / "cache")
    (tmp_path / "LiCoO2.cif").write_text(Crystal.from_structure(licoo2()).to_cif())
    (tmp_path / "CoO2.cif").write_text(Crystal.from_structure(coo2()).to_cif())
    rc = predict.main(["--curve", "Li", str(tmp_path / "LiCoO2.cif"), "--charged", str(tmp_path / "CoO2.cif"),
                       "--static", "--potential", "chgnet", "--cutoff", "4.1",
                       "--out", str(tmp_path / "s.csv"), "--figure", str(tmp_path / "c.png")])
    assert rc == 0
    t = pd.read_csv(tmp_path / "s.csv")
    np.testing.assert_allclose(t["voltage"], [4.4, 4.2, 4.0, 3.8], atol=1e-6)
    assert t["material"].eq("LiCoO2").all() and t["accessible_capacity"].iloc[0] == pytest.approx(
        t["capacity_grav_total"].iloc[0] / 2)
    assert "average 4.10 V" in capsys.readouterr().err and (tmp_path / "c.png").is_file()
    assert list((tmp_path / "cache" / "fake-curves").glob("*.json"))
    assert predict.main(["--curve", "Li", str(tmp_path / "missing.cif"), "--static"]) == 1
