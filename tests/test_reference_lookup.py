"""The shared lookup of a reference material's structure among the structure sources
(lib.cathodes.curves.find_structure), as the curves' bench (bench_structures) and the NEB references
(lib.cathodes.mobility.reference_structure) use it: the exact MP id first, then formula and space group (the
fewest sites, then the lowest id), and a reason when nothing matches. Small fake source tables: seconds."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from lib.cathodes import curves as C
from lib.cathodes import mobility as mob
from lib.structures import Crystal


def layered() -> Structure:
    """LiCoO2, R-3m (conventional hexagonal cell, 12 atoms)."""
    return Structure.from_spacegroup("R-3m", Lattice.hexagonal(2.82, 14.05), ["Li", "Co", "O"],
                                     [[0, 0, 0.5], [0, 0, 0], [0, 0, 0.26]])


def primitive_layered() -> Structure:
    return layered().get_primitive_structure()  # the same polymorph, 4 atoms


def rocksalt() -> Structure:
    """LiCoO2 of another space group: Li and Co ordered in alternating (001) layers of a cubic rock salt
    (P4/mmm)."""
    return Structure(Lattice.tetragonal(2.9, 4.1), ["Li", "Co", "O", "O"],
                     [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0, 0, 0.5]])


def sources(rows) -> pd.DataFrame:
    return pd.DataFrame([{"material_id": m, "structure": Crystal.from_structure(s), "source": src}
                         for m, s, src in rows])


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return sources([
        ("mp-30", layered(), "mirror"),              # R-3m, 12 sites
        ("mp-22", primitive_layered(), "extra"),     # R-3m, 4 sites
        ("mp-7", primitive_layered(), "mirror"),     # R-3m, 4 sites, lower id
        ("mvc-1", primitive_layered(), "extra"),     # R-3m, 4 sites, not an MP id
        ("mp-5", rocksalt(), "mirror"),              # P4/mmm
    ])


def test_the_exact_id_comes_first(table):
    f = C.find_structure(table, "LiCoO2", "R-3m", material_id="mp-30")
    assert f.ok and f.exact and f.material_id == "mp-30" and f.source == "mirror" and f.n_sites == 12
    assert "own id" in f.how


def test_else_the_same_polymorph_fewest_sites_then_lowest_id(table):
    f = C.find_structure(table, "LiCoO2", "R-3m", material_id="mp-999")
    assert f.ok and not f.exact and f.material_id == "mp-7" and f.spacegroup == "R-3m" and f.n_sites == 4
    assert "same polymorph, another MP id" in f.how and "mp-999 is not among the 5 structures" in f.how
    assert "fewest sites" in f.how and "mirror" in f.how
    # no id at all: the same rule
    assert C.find_structure(table, "LiCoO2", "R-3m").material_id == "mp-7"


def test_an_exact_id_of_another_polymorph_does_not_stand_in(table):
    f = C.find_structure(table, "LiCoO2", "R-3m", material_id="mp-5")
    assert f.material_id == "mp-7" and "mp-5 is LiCoO2 P4/mmm, not R-3m" in f.how
    g = C.find_structure(table, "LiCoO2", "P4/mmm", material_id="mp-5")
    assert g.exact and g.material_id == "mp-5"


def test_nothing_matches_says_why(table):
    f = C.find_structure(table, "LiMn2O4", "Fd-3m", material_id="mp-25015")
    assert not f.ok and f.structure is None
    assert "no LiMn2O4 among the 5 structures" in f.how and "mp-25015 is not among" in f.how
    g = C.find_structure(table, "LiCoO2", "Fd-3m")
    assert not g.ok and "no LiCoO2 Fd-3m" in g.how
    assert "mp-5 P4/mmm" in g.how and "mp-7 R-3m" in g.how  # the polymorphs that are there


def test_sources_are_loaded_once_and_only_when_needed():
    calls = []

    def loader():
        calls.append(1)
        return sources([("mp-1", primitive_layered(), "x")])

    assert C.resolve_sources(None) is None
    with pytest.raises(ValueError):
        C.resolve_sources("everything")
    assert callable(C.sources_loader(C.AUTO))  # not loaded yet
    load = C.sources_loader(loader)
    assert C.sources_loader(load) is load and not calls
    assert C.resolve_sources(load)["material_id"].tolist() == ["mp-1"]
    assert C.resolve_sources(load) is C.resolve_sources(load) and len(calls) == 1


def empty_pairs() -> pd.DataFrame:
    return pd.DataFrame(columns=["battery_id", "ion", "low_mpid", "high_mpid", "discharged", "charged",
                                 "formula_discharged", "formula_charged", "avg_voltage", "ef_discharged"])


def test_curve_bench_structures_fall_back_to_the_sources(table):
    b = C.bench_structures(empty_pairs(), "LiCoO2", "Li", "LiCoO2", table)
    assert b["charged"] is None and b["charged_built"] and math.isnan(b["mp_avg_voltage"])
    assert len(b["discharged"]) == 4 and "mp-7" in b["how"] and "no MP pair" in b["how"]
    assert "without its Li" in b["how"]
    # without sources (MP's pairs alone): none, and the reason
    none = C.bench_structures(empty_pairs(), "LiCoO2", "Li", "LiCoO2", None)
    assert none["discharged"] is None and "no Li pair" in none["how"]
    # a material whose polymorph is not there either: the reason says both
    lto = C.bench_structures(empty_pairs(), "Li4Ti5O12", "Li", "Li7Ti5O12", table)
    assert lto["discharged"] is None and "no Li7Ti5O12 among the 5 structures" in lto["how"]


def test_a_pair_of_another_polymorph_gives_way_to_the_sources(table):
    pairs = pd.DataFrame([{"battery_id": "rs_Li", "ion": "Li", "low_mpid": "mp-5", "high_mpid": "mp-6",
                           "discharged": Crystal.from_structure(rocksalt()),
                           "charged": Crystal.from_structure(Structure(Lattice.tetragonal(2.9, 4.1),
                                                                       ["Co", "O", "O"],
                                                                       [[0.5, 0.5, 0.5], [0.5, 0.5, 0],
                                                                        [0, 0, 0.5]])),
                           "formula_discharged": "LiCoO2", "formula_charged": "CoO2", "avg_voltage": 4.0}])
    b = C.bench_structures(pairs, "LiCoO2", "Li", "LiCoO2", table)
    assert b["charged_built"] and "mp-7" in b["how"] and "rs_Li is P4/mmm" in b["how"]
    kept = C.bench_structures(pairs, "LiCoO2", "Li", "LiCoO2", None)  # pairs alone: the old choice, noted
    assert not kept["charged_built"] and kept["mp_avg_voltage"] == 4.0 and "not R-3m" in kept["how"]


def reference(mid: str, sg: str, formula: str = "LiCoO2") -> pd.Series:
    return pd.Series({"material": formula, "ion": "Li", "formula": formula, "mp_id_if_known": mid,
                      "path_note": "", "spacegroup": sg, "barrier_eV": 0.5, "method": "", "source": "",
                      "doi": "", "note": ""})


def test_neb_references_use_the_same_lookup(table):
    pairs = empty_pairs()
    f = mob.reference_structure(reference("mp-999", "R-3m"), pairs, table)
    assert f.ok and f.material_id == "mp-7" and "same polymorph, another MP id" in f.how
    assert mob.reference_structure(reference("mp-30", "R-3m"), pairs, table).material_id == "mp-30"
    # no id: formula and space group
    assert mob.reference_structure(reference("", "P4/mmm"), pairs, table).material_id == "mp-5"
    # nothing: the reason, and the old tuple helper gives (None, None)
    miss = mob.reference_structure(reference("mp-1", "Fd-3m", "LiMn2O4"), pairs, table)
    assert not miss.ok and "not in the electrode pairs" in miss.how and "no LiMn2O4" in miss.how
    assert mob._reference_structure(reference("mp-1", "Fd-3m", "LiMn2O4"), pairs, table) == (None, None)
    # without sources an id the pairs lack has no structure (the old behaviour)
    assert not mob.reference_structure(reference("mp-999", "R-3m"), pairs, None).ok


def test_the_shipped_references_name_a_space_group():
    refs = mob.load_references()
    assert "spacegroup" in refs and refs["spacegroup"].str.len().gt(0).all()
    got = dict(zip(refs["material"], refs["spacegroup"], strict=True))
    assert got["LiCoO2"] == "R-3m" and got["LiMn2O4"] == "Fd-3m" and got["LiFePO4"] == "Pnma"
