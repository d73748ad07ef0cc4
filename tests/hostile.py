"""A corpus of hostile inputs, generated from code: CIFs (good and bad, each bad one with the reasons
that may reject it) and id_prop.csv lines. Used by tests/test_fuzz.py; deterministic (fixed seeds)."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Lattice, Structure
from pymatgen.io.cif import CifWriter

#: what rejects an isolated-atom structure: it is a valid crystal, but its graph has an atom without
#: neighbours (lib.predict says so; build_graphs drops it and lists its id)
GRAPH = "graph"


@dataclass(frozen=True)
class Case:
    name: str
    text: str
    expect: frozenset[str] | None  # None: a good CIF that must be accepted; else the acceptable reasons
    formula: str | None = None  # for good ones: the reduced formula the parse must give


def _bad(name: str, text: str, *reasons: str) -> Case:
    return Case(name, text, frozenset(reasons))


def good_structures(seed: int = 0) -> list[Structure]:
    """Real-looking ordered structures: rock salt, CsCl, perovskite, rutile, fluorite, wurtzite, random."""
    rng = np.random.default_rng(seed)
    out = [
        Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        Structure.from_spacegroup("Pm-3m", Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        Structure.from_spacegroup("Pm-3m", Lattice.cubic(3.9), ["Sr", "Ti", "O"],
                                  [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]]),
        Structure.from_spacegroup("P4_2/mnm", Lattice.tetragonal(4.59, 2.96), ["Ti", "O"],
                                  [[0, 0, 0], [0.305, 0.305, 0]]),
        Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.46), ["Ca", "F"], [[0, 0, 0], [0.25, 0.25, 0.25]]),
        Structure.from_spacegroup("P6_3mc", Lattice.hexagonal(3.25, 5.2), ["Zn", "O"],
                                  [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.382]]),
        Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.43), ["Si"], [[0, 0, 0]]),
        Structure.from_spacegroup("R-3m", Lattice.hexagonal(2.82, 14.05), ["Li", "Co", "O"],
                                  [[0, 0, 0.5], [0, 0, 0], [0, 0, 0.26]]),
    ]
    elements = ["Li", "Na", "Mg", "Al", "Si", "P", "S", "Cl", "K", "Ca", "Ti", "V", "Cr", "Mn", "Fe", "Co",
                "Ni", "Cu", "Zn", "O", "N", "F", "Ba", "La", "W", "Pt", "He", "Pu"]
    while len(out) < 24:  # random cells with atoms at least 1.6 Å apart
        n = int(rng.integers(1, 12))
        a, b, c = rng.uniform(3.0, 9.0, 3)
        al, be, ga = rng.uniform(70, 110, 3)
        lat = Lattice.from_parameters(a, b, c, al, be, ga)
        s = Structure(lat, [str(rng.choice(elements)) for _ in range(n)], rng.random((n, 3)))
        if s.volume / n < 8 or (n > 1 and np.min(s.distance_matrix + np.eye(n) * 99) < 1.6):
            continue
        if min(lat.abc) < 3.0 or s.is_ordered is False:
            continue
        out.append(s)
    return out


def _cif(s: Structure, **kw) -> str:
    return str(CifWriter(s, **kw))


def _p1(cell: tuple, atoms: list[tuple], block: str = "x", occupancy: bool = True, extra: str = "") -> str:
    """A hand-written P1 CIF: cell (a, b, c, alpha, beta, gamma) as given (strings allowed), atoms (symbol,
    x, y, z[, occupancy])."""
    lines = [f"data_{block}", "_symmetry_space_group_name_H-M   'P 1'"]
    for tag, v in zip(("a", "b", "c"), cell[:3], strict=True):
        lines.append(f"_cell_length_{tag}   {v}")
    for tag, v in zip(("alpha", "beta", "gamma"), cell[3:], strict=True):
        lines.append(f"_cell_angle_{tag}   {v}")
    lines += ["_symmetry_Int_Tables_number   1", extra, "loop_", " _symmetry_equiv_pos_site_id",
              " _symmetry_equiv_pos_as_xyz", "  1  'x, y, z'", "loop_", " _atom_site_type_symbol",
              " _atom_site_label", " _atom_site_symmetry_multiplicity", " _atom_site_fract_x",
              " _atom_site_fract_y", " _atom_site_fract_z"] + ([" _atom_site_occupancy"] if occupancy else [])
    for k, at in enumerate(atoms):
        sym, x, y, z = at[:4]
        occ = at[4] if len(at) > 4 else 1
        lines.append(f"  {sym}  {sym}{k}  1  {x}  {y}  {z}" + (f"  {occ}" if occupancy else ""))
    return "\n".join(ln for ln in lines if ln != "") + "\n"


CUBE = (4.0, 4.0, 4.0, 90, 90, 90)
PAIR = [("Na", 0, 0, 0), ("Cl", 0.5, 0.5, 0.5)]


def hostile_cifs(seed: int = 0) -> list[Case]:
    """>= 100 bad CIFs (each with the reasons that may reject it) and the good CIFs they are made from."""
    rng = random.Random(seed)
    goods = good_structures(seed)
    cases: list[Case] = []
    for k, s in enumerate(goods):  # good ones: pymatgen's P1 CIF (fast path) and a symmetrised one
        cases.append(Case(f"good_p1_{k}", _cif(s), None, s.composition.reduced_formula))
        if k % 3 == 0:
            cases.append(Case(f"good_sym_{k}", _cif(s, symprec=0.01), None, s.composition.reduced_formula))
    base = _cif(goods[2])  # SrTiO3, 5 atoms

    # malformed / not a CIF at all
    for k, text in enumerate(["", "   \n", "this is not a CIF", "\x00\x01\x02binary\xff", "data_\n",
                              "data_x\n_cell_length_a 3\nloop_\n _atom_site_label\n",
                              "loop_\nloop_\nloop_\n", "data_x\n" + "_cell_length_a 4\n" * 3,
                              "data_x\n_cell_length_a 4.0\n_cell_length_b 4.0\n_cell_length_c 4.0\n"
                              "_cell_angle_alpha 90\n_cell_angle_beta 90\n_cell_angle_gamma 90\n",
                              "data_x\nloop_\n _atom_site_label\n _atom_site_fract_x\n Na1 0.0\n"]):
        cases.append(_bad(f"malformed_{k}", text, "no structure", "unparseable CIF"))
    cases.append(_bad("non_numeric_coord", _p1(CUBE, [("Na", "abc", 0, 0)]), "bad coordinates"))
    cases.append(_bad("missing_cell", base.replace("_cell_length_a", "_cell_length_q"), "unparseable CIF"))
    # ragged atom loop: a row cut short
    lines = base.splitlines()
    cases.append(_bad("ragged_row", "\n".join(lines[:-1] + [" ".join(lines[-1].split()[:4])]) + "\n",
                      "unparseable CIF", "formula mismatch"))
    # truncated files (the formula line says what should be there)
    for k, cut in enumerate((0.3, 0.5, 0.7, 0.85)):
        cases.append(_bad(f"truncated_{k}", base[: int(len(base) * cut)], "unparseable CIF", "no structure",
                          "formula mismatch"))
    cases.append(_bad("last_atom_missing", "\n".join(base.splitlines()[:-1]) + "\n", "formula mismatch"))

    # occupancies
    for k, occ in enumerate(("0.5", "0.999", "0.25")):
        cases.append(_bad(f"partial_{k}", _p1(CUBE, [("Na", 0, 0, 0, occ), ("Cl", 0.5, 0.5, 0.5)]),
                          "partial occupancy"))
    cases.append(_bad("shared_site", _p1(CUBE, [("Fe", 0, 0, 0, 0.5), ("Ni", 0, 0, 0, 0.5)]),
                      "partial occupancy"))
    cases.append(_bad("alloy_pymatgen", _cif(Structure(Lattice.cubic(3.6), [{"Fe": 0.5, "Ni": 0.5}],
                                                       [[0, 0, 0]])), "partial occupancy"))
    for k, occ in enumerate(("-1", "-0.5", "0", "0.0", "1.5", "2", "abc", "nan", "inf", "-inf")):
        cases.append(_bad(f"bad_occupancy_{k}", _p1(CUBE, [("Na", 0, 0, 0, occ), ("Cl", 0.5, 0.5, 0.5)]),
                          "bad occupancy"))

    # cells
    for k, cell in enumerate([(-4, 4, 4, 90, 90, 90), (4, -4, -4, 90, 90, 90), (0, 4, 4, 90, 90, 90),
                              ("nan", 4, 4, 90, 90, 90), (4, "inf", 4, 90, 90, 90), (4, 4, 4, "nan", 90, 90),
                              (4, 4, 4, 0, 90, 90), (4, 4, 4, 180, 90, 90), (4, 4, 4, 200, 90, 90),
                              (4, 4, 4, -90, 90, 90), (4, 4, 4, 30, 30, 120), (4, 4, 4, 10, 10, 170),
                              ("abc", 4, 4, 90, 90, 90), (4, 4, 4, 120, 120, 120)]):
        cases.append(_bad(f"bad_cell_{k}", _p1(cell, PAIR), "bad lattice"))
    cases.append(_bad("flat_cell", _p1((4, 4, 1e-9, 90, 90, 90), PAIR), "bad lattice"))
    cases.append(_bad("tiny_cell", _p1((0.3, 4, 4, 90, 90, 90), [("Na", 0, 0, 0)]), "atoms too close"))
    cases.append(_bad("sliver_cell", _p1((4, 4, 4, 90, 90, 0.5), [("Na", 0, 0, 0)]), "atoms too close",
                      "bad lattice", "unparseable CIF"))

    # elements
    for k, sym in enumerate(("Xx", "Bq", "Q", "Zz", "X", "Wat", "OH", "D", "Hw", "E", "J", "?", "12")):
        cases.append(_bad(f"unknown_element_{k}", _p1(CUBE, [(sym, 0, 0, 0), ("Cl", 0.5, 0.5, 0.5)]),
                          "unknown element", "unparseable CIF"))
    for k, sym in enumerate(("Md", "No", "Lr", "Rf", "Og")):
        heavy = _p1((6, 6, 6, 90, 90, 90), [(sym, 0, 0, 0), ("O", 0.5, 0.5, 0.5)])
        cases.append(_bad(f"heavy_element_{k}", heavy, "unsupported element"))

    # atoms too close (the fast path and pymatgen's, periodic images included)
    for k, (d, how) in enumerate([(0.0006, "x"), (0.0006, "xyz"), (0.1, "x"), (0.3, "y"), (0.49, "z"),
                                  (0.0, "x"), (1e-5, "x")]):
        off = np.array([d / 4.0 if c in how else 0.0 for c in "xyz"]) / (np.sqrt(len(how)) or 1)
        atoms = [("O", 0.2, 0.3, 0.4), ("O", *(np.array([0.2, 0.3, 0.4]) + off).round(10).tolist()),
                 ("Mg", 0.7, 0.8, 0.9)]
        cases.append(_bad(f"overlap_{k}", _p1(CUBE, atoms), "atoms too close"))
    cases.append(_bad("overlap_periodic", _p1(CUBE, [("O", 0.00001, 0.5, 0.5), ("O", 0.99995, 0.5, 0.5)]),
                      "atoms too close"))
    skewed = _p1((4, 4, 4, 60, 60, 60), [("O", 0.02, 0, 0), ("O", 0.97, 0.03, 0.01)])
    cases.append(_bad("overlap_image_skewed", skewed, "atoms too close"))
    sym_close = ("data_x\n_cell_length_a 4\n_cell_length_b 4\n_cell_length_c 4\n_cell_angle_alpha 90\n"
                 "_cell_angle_beta 90\n_cell_angle_gamma 90\nloop_\n _symmetry_equiv_pos_as_xyz\n 'x, y, z'\n"
                 " '-x, y, z'\nloop_\n _atom_site_type_symbol\n _atom_site_label\n _atom_site_fract_x\n"
                 " _atom_site_fract_y\n _atom_site_fract_z\n O O1 0.02 0.3 0.3\n Mg Mg1 0.5 0.5 0.5\n")
    cases.append(_bad("overlap_by_symmetry", sym_close, "atoms too close"))
    dup = base.splitlines()
    cases.append(_bad("duplicated_atom_line", "\n".join(dup + [dup[-1]]) + "\n", "atoms too close",
                      "formula mismatch"))

    # several data blocks
    two = _cif(goods[0]) + "\n" + _cif(goods[1]).replace("data_", "data_second_")
    cases.append(_bad("two_blocks", two, "several data blocks"))
    cases.append(_bad("good_and_bad_block", _cif(goods[0]) + "\n" + _p1(CUBE, [("Xx", 0, 0, 0)], block="bad"),
                      "several data blocks"))
    cases.append(_bad("three_blocks", _cif(goods[3]) * 3, "several data blocks"))

    # coordinates
    for k, v in enumerate(("nan", "inf", "-inf")):
        cases.append(_bad(f"bad_coord_{k}", _p1(CUBE, [("Na", v, 0, 0), PAIR[1]]), "bad coordinates"))

    # size
    for k, v in enumerate(("1e6", "-5e3", "3.25")):  # far out, but the same site once wrapped (both parsers)
        cases.append(Case(f"far_coord_{k}", _p1(CUBE, [("Na", v, 0, 0), PAIR[1]]), None, "NaCl"))
    cases.append(_bad("huge_cell", _p1((1e5, 1e5, 1e5, 90, 90, 90), PAIR), "too large"))
    cases.append(_bad("huge_cell_pm", _p1((564, 564, 564, 90, 90, 90), PAIR), "too large"))
    many = [("C", x / 11, y / 11, z / 10) for x in range(11) for y in range(11) for z in range(10)]
    cases.append(_bad("too_many_atoms", _p1((14, 14, 13, 90, 90, 90), many[:1001]), "too large"))

    # isolated atoms: valid crystals whose graphs have an atom without neighbours within 8 Å
    for k, a in enumerate((20.0, 25.0, 30.0)):
        cases.append(_bad(f"isolated_{k}", _p1((a, a, a, 90, 90, 90), [("Xe", 0, 0, 0)]), GRAPH))
    cases.append(_bad("isolated_pair", _p1((30, 30, 30, 90, 90, 90), PAIR), GRAPH))

    # random corruption of good files: one token replaced by garbage (each checked: reason or unchanged)
    for k in range(12):
        s = goods[rng.randrange(len(goods))]
        lines = _cif(s).splitlines()
        atom_rows = [i for i, ln in enumerate(lines) if ln.startswith("  ") and len(ln.split()) == 7]
        i = rng.choice(atom_rows)
        tok = lines[i].split()
        j = rng.choice([0, 3, 4, 5, 6])
        if j in (3, 4, 5):
            tok[j] = rng.choice(["nan", "inf", "abc"])
        else:
            tok[j] = rng.choice(["Xx", "Qq", "0", "Bq"] if j == 0 else ["-1", "0.5", "nan", "abc", "0", "7"])
        lines[i] = "  " + "  ".join(tok)
        reasons = {"unknown element", "unparseable CIF", "bad coordinates", "bad occupancy",
                   "partial occupancy", "atoms too close", "formula mismatch"}
        cases.append(_bad(f"corrupt_{k}", "\n".join(lines) + "\n", *reasons))
    return cases


def hostile_id_prop(ids_ok: list[str]) -> tuple[list[str], dict[str, str], list[str]]:
    """id_prop.csv lines for the good ids plus >= 30 broken lines.

    Returns (lines, {id or line text: the reason it must get}, ids that need a (good) CIF file so that
    the line itself is what is wrong). Ids that are no file name get "bad id" and are reported by line.
    """
    lines = [f"{mid},{0.1 * (k + 1):.3f}" for k, mid in enumerate(ids_ok)]
    broken = [  # (line, id it is reported under, reason, needs a CIF)
        ("noval,", "noval", "missing target value", True),
        ("emptyval_sp,   ", "emptyval_sp", "missing target value", True),
        ("nanval,nan", "nanval", "missing target value", True),
        ("noval2", "noval2", "bad line", True),
        ("commaval,1,5", "commaval", "bad line", True),
        ("threecol,1.0,2.0", "threecol", "bad line", True),
        ("semicolon;1.0", "semicolon;1.0", "bad line", False),
        ("textval,abc", "textval", "bad target value", True),
        ('quoted,"1.0"', "quoted", "bad target value", True),
        ("spaces,1 .0", "spaces", "bad target value", True),
        ("hexval,0x10", "hexval", "bad target value", True),
        ("plusval,+-1", "plusval", "bad target value", True),
        ("dotval,.", "dotval", "bad target value", True),
        ("trueval,True", "trueval", "bad target value", True),
        ("listval,[1]", "listval", "bad target value", True),
        ("id,band_gap", "id", "bad target value", True),
        ("infval,inf", "infval", "not finite", True),
        ("ninfval,-inf", "ninfval", "not finite", True),
        ("hugeval,1e999", "hugeval", "not finite", True),
        ("nocif,1.0", "nocif", "no structure", False),
        ("nocif2,2.0", "nocif2", "no structure", False),
        ("ünïcødé,1.0", "ünïcødé", "no structure", False),
        (f"{ids_ok[0]},9.9", ids_ok[0], "duplicated id", False),
        (f"{ids_ok[1]},8.8", ids_ok[1], "duplicated id", False),
        ("../escape,1.0", "../escape", "bad id", False),
        ("/etc/passwd,1.0", "/etc/passwd", "bad id", False),
        ("sub/dir,1.0", "sub/dir", "bad id", False),
        ("back\\slash,1.0", "back\\slash", "bad id", False),
        ("tab\tid,1.0", "tab\tid", "bad id", False),
        ("nul\x00id,1.0", "nul\x00id", "bad id", False),
        ("x" * 300 + ",1.0", "x" * 300, "bad id", False),
        (",1.0", "", "no material id", False),
        (" ,2.0", "", "no material id", False),
        (",", "", "no material id", False),
        (",,", "", "bad line", False),
    ]
    lines += [b[0] for b in broken] + ["\t", "   "]  # blank lines are skipped
    reasons = {mid or line: reason for line, mid, reason, _ in broken}
    return lines, reasons, [mid for _, mid, _, cif in broken if cif]


__all__ = ["Case", "GRAPH", "good_structures", "hostile_cifs", "hostile_id_prop"]
