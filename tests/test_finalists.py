"""lib.cathodes.finalists: the screen's finalists get a voltage curve and a migration barrier, the failures
keep their rows with a reason, the re-ranking says what it used, the archive round trip and the resume. A fake
potential stands in for the networks: closed-form static energies for the curves (as in test_curves) and a
counting Lennard-Jones calculator for the bands (its barriers mean nothing; the tests count the calls), so
everything runs in seconds."""

from __future__ import annotations

import gzip
import json
import math
import shutil
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from ase.calculators.lj import LennardJones
from pymatgen.core import Lattice, Structure

from lib.cathodes import curves as C
from lib.cathodes import finalists as F
from lib.cathodes import mobility as M

MU = -1.9  # eV/atom: the fake's Li metal
E0, B, W = -20.0, -6.0, -0.4  # eV per CoO2: E(x) = E0 + B x + W x (1 - x)


class CountingLJ(LennardJones):
    """Lennard-Jones that counts its calculations (any element: a stand-in for a potential's calculator)."""

    def __init__(self, **kwargs):
        super().__init__(sigma=2.0, epsilon=0.05, rc=4.0, **kwargs)
        self.calls = 0

    def calculate(self, *args, **kwargs):
        self.calls += 1
        super().calculate(*args, **kwargs)


class FakePotential:
    """The duck type the finalists need: name, static energies, the ion's metal, an ASE calculator."""

    name = "fake-finalists"
    scale = "total"
    can_relax = False

    def __init__(self):
        self.calls = 0  # structures whose energy was computed
        self.calc = CountingLJ()

    def energies(self, structures, progress: bool = False):
        out = []
        for s in structures:
            self.calls += 1
            x, fu, _ = C.ion_content(s, "Li")
            out.append((E0 + B * x + W * x * (1 - x)) * fu / len(s))
        return np.array(out), None

    def ion_energy(self, ion: str) -> float:
        return MU

    def ase_calculator(self):
        return self.calc


def licoo2(a: float = 2.82) -> Structure:
    return Structure.from_spacegroup(
        "R-3m", Lattice.hexagonal(a, 14.05), ["Li", "Co", "O"], [[0, 0, 0.5], [0, 0, 0], [0, 0, 0.26]]
    )


def coo2(a: float = 2.82) -> Structure:
    s = licoo2(a)
    s.remove_species(["Li"])
    return s


#: quick settings: static curves of the two ends and x = 1/2; one hop in a 2x2x1 cell, a few steps
FAST = replace(F.SMOKE, top=2, neb=M.NEBSettings(n_images=2, fmax=0.1, max_steps=4, relax_steps=3, min_length=4.0,
                                                max_atoms=60))


def final_table(n: int = 3, passes=None, ranks=None, charged=None) -> pd.DataFrame:
    """A screen's final table of LiCoO2-like candidates (lattice constants differ, so the structures do)."""
    rows = []
    for k in range(n):
        a = 2.80 + 0.02 * k
        rows.append(
            {
                "rank": (ranks or list(range(1, n + 1)))[k],
                "formula": f"LiCoO2#{k}",
                "candidate_id": f"c{k}",
                "voltage": 4.0,
                "capacity_grav": 274.0,
                "specific_energy": 1000.0 - 10 * k,
                "passes": True if passes is None else passes[k],
                "discharged": licoo2(a),
                "charged": (charged or {}).get(k, coo2(a)),
            }
        )
    return pd.DataFrame(rows)


def run(final, pot, tmp_path, settings=FAST, **kwargs):
    return F.finalists(
        final,
        "Li",
        pot,
        settings=settings,
        progress=False,
        curve_cache=tmp_path / "curves",
        neb_cache=tmp_path / "neb",
        archive_dir=tmp_path / "records",
        **kwargs,
    )


# ----------------------------------------------------------------------------------------------
# picking and failures
# ----------------------------------------------------------------------------------------------


def test_finalists_are_the_top_passing_rows_in_rank_order(tmp_path):
    final = final_table(5, passes=[True, False, True, True, True], ranks=[4, 1, 2, 5, 3])
    t = run(final, FakePotential(), tmp_path, settings=F.FinalistSettings(top=3, curve=False, barrier=False))
    assert list(t["candidate_id"]) == ["c2", "c4", "c0"]  # ranks 2, 3, 4: c1 (rank 1) does not pass
    assert list(t["rank"]) == [2, 3, 4]
    assert set(t["curve_status"]) == {"skipped"} and set(t["barrier_status"]) == {"skipped"}
    assert {"discharged", "charged", *F.CURVE_COLUMNS, *F.BARRIER_COLUMNS} <= set(t.columns)
    assert F.pick(final, 0).empty


def test_a_failed_curve_keeps_its_row_with_the_reason(tmp_path):
    bad = coo2()
    bad.append("O", [0.5, 0.5, 0.5])  # another framework than the discharged state's: no electrode
    final = final_table(3, charged={1: bad})
    final.loc[2, "discharged"] = None
    pot = FakePotential()
    t = run(final, pot, tmp_path, settings=replace(FAST, top=3, barrier=False))
    assert len(t) == 3
    assert list(t["curve_status"]) == ["ok", "failed", "failed"]
    assert "ElectrodeError" in t.loc[1, "curve_reason"]
    assert t.loc[2, "curve_reason"] == "no relaxed discharged structure"
    assert math.isnan(t.loc[1, "capacity_below_cutoff"])
    counts = t.attrs["finalists"]["curve_failed"]
    assert sum(counts.values()) == 2 and t.attrs["finalists"]["curve_ok"] == 1
    assert len(F.failures(t)) == 2 + 3  # two curves failed, three barriers skipped


def test_curve_columns_count_only_the_steps_below_the_cutoff():
    steps = pd.DataFrame(
        {
            "step": [0, 1, 2],
            "x_charge": [0, 0.25, 0.5],
            "x_discharge": [0.25, 0.5, 1.0],
            "voltage": [4.8, 4.0, 3.5],
            "capacity_grav": [50.0, 60.0, 70.0],
            "capacity_vol": 0.0,
            "formula_charge": "",
            "formula_discharge": "",
        }
    )
    curve = C.Curve(
        ion="Li",
        potential="x",
        framework="CoO2",
        steps=steps,
        states=pd.DataFrame(),
        average_voltage=3.98,
        capacity_grav=180.0,
        accessible_capacity=130.0,
    )
    c = F.curve_columns(curve, 4.5)
    assert c["curve_status"] == "ok" and c["curve_steps"] == 3
    assert (c["curve_v_min"], c["curve_v_max"]) == (3.5, 4.8)
    assert c["capacity_below_cutoff"] == pytest.approx(130.0)
    assert c["capacity_share_below_cutoff"] == pytest.approx(130 / 180)
    assert c["specific_energy_below_cutoff"] == pytest.approx(4.0 * 60 + 3.5 * 70)
    assert F.curve_columns(curve, 5.0)["capacity_share_below_cutoff"] == pytest.approx(1.0)
    failed = C.Curve(
        ion="Li",
        potential="x",
        framework="",
        steps=steps.iloc[:0],
        states=pd.DataFrame(),
        error="no energy for the charged state",
    )
    assert F.curve_columns(failed, 4.5)["curve_reason"] == "no energy for the charged state"


# ----------------------------------------------------------------------------------------------
# the re-ranking
# ----------------------------------------------------------------------------------------------


def ranked_input() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "rank": [1, 2, 3, 4],
            "formula": ["A", "B", "C", "D"],
            "specific_energy": [900.0, 800.0, 700.0, 600.0],
            "curve_status": ["ok", "ok", "ok", "failed"],
            "curve_reason": ["", "", "", "no energy"],
            "specific_energy_below_cutoff": [500.0, 700.0, 600.0, math.nan],
            "barrier_status": ["ok", "ok", "not converged", "ok"],
            "barrier_reason": ["", "", "band not below", ""],
            "barrier": [0.3, 0.9, 0.2, 0.1],
        }
    )


def test_rank_by_energy_below_the_cutoff_with_high_barriers_after():
    r = F.rank_finalists(ranked_input(), max_barrier=0.5)
    assert list(r["formula"]) == [
        "C",
        "A",
        "B",
        "D",
    ]  # C 600 > A 500; B's barrier is too high; D has no curve
    assert list(r["final_rank"]) == [1, 2, 3, 4] and list(r["rank"]) == [3, 1, 2, 4]
    notes = dict(zip(r["formula"], r["rank_note"], strict=True))
    assert notes["A"] == "" and "unconverged" in notes["C"]
    assert "barrier 0.900 eV > 0.5 eV" in notes["B"] and "no curve" in notes["D"]
    assert "below 4.5 V" in r.attrs["ranked_on"] and "barrier ≤ 0.5 eV" in r.attrs["ranked_on"]
    assert (r["ranked_on"] == r.attrs["ranked_on"]).all()
    strict = F.rank_finalists(ranked_input(), max_barrier=0.5, converged_only=True)
    assert list(strict["formula"]) == ["A", "B", "C", "D"]  # C's unconverged band counts as no barrier


def test_rank_on_capacity_alone_or_the_screens_energy():
    r = F.rank_finalists(ranked_input(), use=("capacity_below_cutoff",))
    assert list(r["formula"]) == ["B", "C", "A", "D"] and "barrier not used" in r.attrs["ranked_on"]
    s = F.rank_finalists(ranked_input(), use=())
    assert list(s["formula"]) == ["A", "B", "C", "D"] and "screen's specific energy" in s.attrs["ranked_on"]
    with pytest.raises(ValueError, match="unknown criteria"):
        F.rank_finalists(ranked_input(), use=("volume",))


# ----------------------------------------------------------------------------------------------
# cache, resume and the archive
# ----------------------------------------------------------------------------------------------


def test_second_run_computes_nothing_and_a_longer_list_only_the_new(tmp_path):
    final = final_table(3)
    pot = FakePotential()
    first = run(final, pot, tmp_path, settings=replace(FAST, top=1))
    assert first.loc[0, "curve_status"] == "ok" and first.loc[0, "barrier_status"] in ("ok", "not converged")
    assert math.isfinite(first.loc[0, "barrier"]) and first.loc[0, "barrier_hops_tried"] == 1
    assert pot.calls > 0 and pot.calc.calls > 0
    one_curve, one_band = pot.calls, pot.calc.calls
    second = run(final, pot, tmp_path)  # two finalists: the first is read back, the second computed
    assert pot.calls == 2 * one_curve and 0 < pot.calc.calls - one_band
    calls = (pot.calls, pot.calc.calls)
    again = run(final, pot, tmp_path)
    assert (pot.calls, pot.calc.calls) == calls  # nothing computed
    cols = [
        c for c in [*F.CURVE_COLUMNS, *F.BARRIER_COLUMNS] if not c.endswith("seconds") and c != "barriers"
    ]
    pd.testing.assert_frame_equal(again[cols], second[cols])


def test_archive_round_trip(tmp_path):
    pot = FakePotential()
    t = run(final_table(2), pot, tmp_path)
    out = F.archive(pot.name, tmp_path / "curves", tmp_path / "neb", tmp_path / "records")
    (cfile, nc), (nfile, nn) = out["curves"], out["neb"]
    assert (nc, nn) == (2, 2) and cfile == tmp_path / "records" / "curves" / f"{pot.name}.jsonl.gz"
    first_bytes = cfile.read_bytes()
    F.archive(pot.name, tmp_path / "curves", tmp_path / "neb", tmp_path / "records")
    assert cfile.read_bytes() == first_bytes  # the same records, the same bytes
    lines = [json.loads(x) for x in gzip.decompress(nfile.read_bytes()).decode().splitlines()]
    assert all(d["key"] for d in lines) and [d["key"] for d in lines] == sorted(d["key"] for d in lines)
    shutil.rmtree(tmp_path / "curves")
    shutil.rmtree(tmp_path / "neb")  # a clean clone: only records/
    calls = (pot.calls, pot.calc.calls)
    back = run(final_table(2), pot, tmp_path)
    assert (pot.calls, pot.calc.calls) == calls  # read through the archive, nothing computed
    assert back.attrs["finalists"]["restored_from_archive"] == {"curves": 2, "neb": 2}
    cols = [
        c for c in [*F.CURVE_COLUMNS, *F.BARRIER_COLUMNS] if not c.endswith("seconds") and c != "barriers"
    ]
    pd.testing.assert_frame_equal(back[cols], t[cols])


def test_profile_settings_are_quick_for_smoke_and_careful_otherwise():
    assert F.settings_for("smoke") is F.SMOKE and F.SMOKE.static_curve and F.SMOKE.hops == 1
    careful = F.settings_for("thesis")
    assert not careful.static_curve and careful.neb == M.NEBSettings() and careful.fractions == C.QUARTERS
    assert F.settings_for("unknown") == F.FinalistSettings()


def test_finalists_figure(tmp_path):
    from lib.plots.cathodes import finalist_curves

    t = ranked_input().assign(
        capacity_below_cutoff=[100.0, 120.0, 90.0, math.nan],
        curve=[
            [
                {"x_charge": 0, "x_discharge": 0.5, "voltage": 4.6, "capacity_grav": 80.0},
                {"x_charge": 0.5, "x_discharge": 1, "voltage": 3.9, "capacity_grav": 100.0},
            ],
            [{"x_charge": 0, "x_discharge": 1, "voltage": 3.4, "capacity_grav": 170.0}],
            [{"x_charge": 0, "x_discharge": 1, "voltage": 3.0, "capacity_grav": 150.0}],
            None,
        ],
    )
    files = finalist_curves(t, path=tmp_path / "f.png")
    assert (tmp_path / "f.png").is_file() and files
