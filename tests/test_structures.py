"""lib.structures: the Crystal array form and the CIF parser (fast exact path vs pymatgen)."""

from __future__ import annotations

import json
import lzma
import random
import warnings

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.io.cif import CifWriter

from lib.structures import (
    STRUCTURE_ATOL,
    Crystal,
    StructureError,
    _fast_parse_cif,
    _pymatgen_parse_cif,
    crystals_from_flat,
    crystals_to_flat,
    parse_cif,
    parse_structure_dict,
)


def nacl() -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def pmg_cif(structure: Structure, **kw) -> str:
    return str(CifWriter(structure, **kw))


def test_crystal_roundtrip_through_pymatgen():
    s = nacl()
    c = Crystal.from_structure(s)
    assert len(c) == 8 and sorted(c.numbers.tolist()) == [11] * 4 + [17] * 4
    assert c.volume == pytest.approx(5.64**3)
    back = c.to_structure()
    assert np.allclose(back.lattice.matrix, s.lattice.matrix)
    assert np.allclose(back.cart_coords, c.cart_coords)
    assert c.formula == "NaCl"


def test_partial_occupancy_is_refused_with_reason():
    s = Structure(Lattice.cubic(3.0), [{"Fe": 0.5, "Ni": 0.5}], [[0, 0, 0]])
    with pytest.raises(StructureError) as err:
        Crystal.from_structure(s)
    assert err.value.reason == "partial occupancy"
    with pytest.raises(StructureError) as err:
        parse_cif(pmg_cif(s))
    assert err.value.reason == "partial occupancy"


def test_unparseable_cif_has_reason():
    for bad in ("data_x\n_cell_length_a 3\nloop_\n _atom_site_label\n", "this is not a CIF"):
        with pytest.raises(StructureError) as err:
            parse_cif(bad)
        assert err.value.reason == "unparseable CIF"
    with pytest.raises(StructureError) as err:
        parse_cif("")
    assert err.value.reason == "no structure"


def _mirror_cifs(mirror, n: int, seed: int) -> list[tuple[str, str]]:
    recs = []
    for name in ("mp_cgcnn_2020.jsonl.xz", "mp_elastic_cgcnn_2020.jsonl.xz"):
        with lzma.open(mirror / name, "rt") as fh:
            recs += [(d["material_id"], d["cif"]) for d in map(json.loads, fh)]
    random.Random(seed).shuffle(recs)
    return recs[:n]


def test_fast_path_matches_pymatgen_on_mirror(mirror):
    """600 random real CIFs: the fast path takes every one and equals pymatgen's parse: same sites in the
    same order, lattice and coordinates within STRUCTURE_ATOL (two code paths: their last bits may differ
    from one CPU to another, e.g. numpy's vectorised trigonometry)."""
    recs = _mirror_cifs(mirror, 600, seed=0)
    declined, mismatched = [], []
    for mid, cif in recs:
        fast = _fast_parse_cif(cif)
        if fast is None:
            declined.append(mid)
            continue
        ref = _pymatgen_parse_cif(cif)
        if not fast.equals(ref, atol=STRUCTURE_ATOL):  # site order identical, values to 1e-8
            mismatched.append(mid)
    assert declined == []
    assert mismatched == []


def test_ideal_fractions_and_wrapping_match_pymatgen():
    cif = pmg_cif(
        Structure(
            Lattice.hexagonal(3.0, 5.0),
            ["Li", "O", "O"],
            [[0, 0, 0], [1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]],
        )
    )
    cif = cif.replace("0.33333333", "0.33334").replace("0.66666667", "-0.33333")
    fast = _fast_parse_cif(cif)
    assert fast is not None
    assert fast.equals(_pymatgen_parse_cif(cif), atol=STRUCTURE_ATOL)
    assert 1 / 3 in fast.frac_coords  # 0.33334 is within 1e-4 of 1/3: set to the ideal value
    assert np.all((fast.frac_coords >= 0) & (fast.frac_coords < 1))  # -0.33333 wrapped to 0.66667
    assert fast.numbers.tolist() == [3, 8, 8]  # sorted by electronegativity


def test_symmetry_and_noble_gases_go_to_pymatgen():
    sym_cif = pmg_cif(nacl(), symprec=0.1)  # written with Fm-3m operations: needs expansion
    assert _fast_parse_cif(sym_cif) is None
    c = parse_cif(sym_cif)
    assert len(c) == 8 and c.volume == pytest.approx(5.64**3, rel=1e-6)
    ar = pmg_cif(Structure(Lattice.cubic(5.3), ["Ar"], [[0, 0, 0]]))  # no Pauling X: pymatgen decides
    assert _fast_parse_cif(ar) is None and parse_cif(ar).numbers.tolist() == [18]


def test_write_cif_round_trip():
    c = Crystal.from_structure(
        Structure(
            Lattice([[3.1, 0.2, 0.0], [0.3, 4.0, 0.1], [0.0, 0.4, 5.2]]),
            ["O", "Fe", "Li"],
            [[0.1, 0.2, 0.3], [0.5, 0.5, 0.5], [0.9, 0.05, 0.7]],
        )
    )
    text = c.to_cif()
    fast = _fast_parse_cif(text)
    assert fast is not None and fast.equals(_pymatgen_parse_cif(text), atol=STRUCTURE_ATOL)
    # the same crystal up to the 8 written decimals, re-oriented by pymatgen's cell convention
    assert fast.volume == pytest.approx(c.volume, rel=1e-7)
    assert fast.numbers.tolist() == [3, 26, 8]  # Li, Fe, O: by electronegativity
    d_in = np.sort(Structure(c.lattice, c.numbers, c.frac_coords).distance_matrix.ravel())
    d_out = np.sort(fast.to_structure().distance_matrix.ravel())
    assert np.allclose(d_in, d_out, atol=1e-6)


def test_structure_dict_and_flat_arrays():
    s = nacl()
    c = parse_structure_dict(s.as_dict())
    assert c.equals(Crystal.from_structure(s))
    crystals = [c, Crystal(np.eye(3) * 3, [[0, 0, 0]], [3])]
    flat = crystals_to_flat(crystals)
    assert flat["offsets"].tolist() == [0, 8, 9]
    back = crystals_from_flat(
        flat["lattices"].reshape(-1, 9), flat["frac_coords"].ravel(), flat["numbers"], flat["offsets"]
    )
    assert all(a.equals(b) for a, b in zip(crystals, back, strict=True))
    with pytest.raises(ValueError):
        back[0].frac_coords[0, 0] = 1.0  # loaded crystals are read-only views
    disordered = Structure(Lattice.cubic(3.0), [{"Fe": 0.5, "Ni": 0.5}], [[0, 0, 0]]).as_dict()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(StructureError, match="disordered"):
            parse_structure_dict(disordered)
