"""Crystal structures in a fast array form (lattice, fractional coordinates, atomic numbers).

pymatgen's ``Structure`` is the lingua franca, but building, pickling and parsing thousands of them is
slow (a CIF parse costs ~10 ms). The compendium parses each structure once into a :class:`Crystal`,
stores those arrays in the processed tables, and builds graphs and descriptors from them. Convert
with :meth:`Crystal.from_structure` / :meth:`Crystal.to_structure` whenever pymatgen is wanted.

CIF parsing (:func:`parse_cif`) has two paths that give the same result:

- a fast exact path for plain P1 CIFs of the kind pymatgen's ``CifWriter`` writes (one data block,
  the identity as the only symmetry operation, one ``_atom_site`` loop, all occupancies 1): it
  reproduces every step of pymatgen's parser that matters for such a file (lattice from the cell
  parameters through ``Lattice.from_parameters``, coordinates within 1e-4 of 1/3 or 2/3 set to the
  ideal value, wrapping into [0, 1), sites sorted by electronegativity then symbol, ties in file
  order), bit for bit on this project's machines; ``tests/test_structures.py`` checks it against pymatgen
  on mirror entries to :data:`STRUCTURE_ATOL` (another CPU may differ in the last bit);
- pymatgen's ``CifParser`` for everything else (symmetry to expand, disorder, odd formatting).

Every structure is checked where it becomes a Crystal (:func:`parse_cif` on both paths,
:func:`parse_structure_dict`, :func:`parse_optimade`, :meth:`Crystal.from_structure`,
:func:`crystal_from_arrays`) by :func:`lib.validate.check_arrays`: known elements (Z 1..100), a finite
cell of positive volume, no two atoms closer than 0.5 Å (periodic images included), size limits. The
CIF path also checks what only the CIF shows: one data block with atoms, cell lengths > 0 and angles in
(0°, 180°), every occupancy exactly 1 (partial ones are disorder, which a Crystal cannot hold), element
symbols that are elements (pymatgen would read ``Xx`` as a dummy species and ``Bq`` as boron).
Bad input raises :class:`StructureError` whose ``reason`` is a short category ("unparseable CIF",
"partial occupancy", "atoms too close", ...; :data:`lib.validate.REASONS`) that the data tables count,
and whose message names the problem.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Lattice, Structure
from pymatgen.core.periodic_table import DummySpecies, Element, Species
from pymatgen.io.cif import CifParser

from lib.elements import element_table
from lib.validate import StructureError, check_arrays, check_cif, check_formula

#: Å (lattice) and fractional units: two structures that differ by less are the same structure. Two code
#: paths (our CIF parser and pymatgen's, an as_dict round trip) agree to ~1e-15, but not bit for bit on
#: every CPU (vectorised trigonometry differs), so comparisons across code paths use this tolerance.
STRUCTURE_ATOL = 1e-8


@dataclass(frozen=True, eq=False)
class Crystal:
    """An ordered periodic crystal.

    lattice: (3, 3) float64, rows are the lattice vectors in Å.
    frac_coords: (n, 3) float64 fractional coordinates.
    numbers: (n,) int64 atomic numbers.

    Crystals loaded from the processed tables hold read-only views into one shared buffer: copy an
    array (``c.frac_coords.copy()``) before changing it in place.
    """
    lattice: np.ndarray
    frac_coords: np.ndarray
    numbers: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "lattice", np.asarray(self.lattice, dtype=np.float64).reshape(3, 3))
        object.__setattr__(self, "frac_coords", np.asarray(self.frac_coords, dtype=np.float64).reshape(-1, 3))
        object.__setattr__(self, "numbers", np.asarray(self.numbers, dtype=np.int64).reshape(-1))
        if len(self.numbers) != len(self.frac_coords):
            raise ValueError(f"{len(self.numbers)} atomic numbers for {len(self.frac_coords)} sites")
        if len(self.numbers) == 0:
            raise ValueError("a crystal needs at least one site")

    def __len__(self) -> int:
        return len(self.numbers)

    @property
    def cart_coords(self) -> np.ndarray:
        """(n, 3) Cartesian coordinates in Å."""
        return self.frac_coords @ self.lattice

    @property
    def volume(self) -> float:
        """Cell volume in Å³."""
        return float(abs(np.linalg.det(self.lattice)))

    @property
    def formula(self) -> str:
        """Reduced formula, e.g. 'LiCoO2'."""
        return self.to_structure().composition.reduced_formula

    def __repr__(self) -> str:
        return f"Crystal({len(self)} sites, Z={sorted(set(self.numbers.tolist()))}, V={self.volume:.1f} Å³)"

    def to_structure(self):
        """The pymatgen ``Structure`` of this crystal."""
        return Structure(Lattice(self.lattice), self.numbers.tolist(), self.frac_coords)

    @classmethod
    def from_structure(cls, structure, check: bool = True) -> Crystal:
        """From a pymatgen ``Structure``, checked (:func:`lib.validate.check_arrays`); partial occupancies
        and dummy species are refused with a reason. ``check=False``: the caller checks (see
        :func:`lib.validate.check_many`)."""
        if not structure.is_ordered:
            raise StructureError(
                "partial occupancy",
                f"{structure.composition.formula} has partial occupancies; order it first "
                "(e.g. pymatgen's OrderDisorderedStructureTransformation) or drop it",
            )
        if len(structure) == 0:
            raise StructureError("no structure", "a structure without sites")
        species = [site.specie for site in structure]
        odd = next((sp for sp in species
                    if isinstance(sp, DummySpecies) or not isinstance(sp, Element | Species)), None)
        if odd is not None:
            raise StructureError("unknown element", f"species {str(odd)!r} is not an element "
                                 f"({type(odd).__name__})")
        crystal = cls(structure.lattice.matrix, structure.frac_coords, [sp.Z for sp in species])
        return _checked(crystal) if check else crystal

    @classmethod
    def from_cif(cls, text: str) -> Crystal:
        """Parse CIF text (see :func:`parse_cif`)."""
        return parse_cif(text)

    def to_cif(self, name: str | None = None) -> str:
        """A P1 CIF of this crystal in the layout pymatgen's ``CifWriter`` uses (8 decimals)."""
        return write_cif(self, name)

    def equals(self, other: Crystal, atol: float = 0.0) -> bool:
        """Same sites in the same order and the same lattice (within ``atol``; 0: bit for bit)."""
        if len(self) != len(other) or not np.array_equal(self.numbers, other.numbers):
            return False
        if atol == 0.0:
            return np.array_equal(self.lattice, other.lattice) and np.array_equal(
                self.frac_coords, other.frac_coords
            )
        return np.allclose(self.lattice, other.lattice, rtol=0, atol=atol) and np.allclose(
            self.frac_coords, other.frac_coords, rtol=0, atol=atol
        )


# ----------------------------------------------------------------------------------------------
# many crystals <-> flat arrays (the parquet layout of lib.data)
# ----------------------------------------------------------------------------------------------


def as_structure(s):
    """A pymatgen ``Structure`` from a :class:`Crystal` or a ``Structure`` (returned as it is)."""
    return s.to_structure() if isinstance(s, Crystal) else s


def crystals_to_flat(crystals: list[Crystal]) -> dict[str, np.ndarray]:
    """Concatenate crystals: lattices (N, 3, 3), frac_coords (M, 3), numbers (M,), offsets (N+1,)."""
    counts = np.fromiter((len(c) for c in crystals), dtype=np.int64, count=len(crystals))
    offsets = np.zeros(len(crystals) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    if crystals:
        lattices = np.stack([c.lattice for c in crystals])
        frac = np.concatenate([c.frac_coords for c in crystals])
        numbers = np.concatenate([c.numbers for c in crystals])
    else:
        lattices, frac, numbers = np.zeros((0, 3, 3)), np.zeros((0, 3)), np.zeros(0, dtype=np.int64)
    return {"lattices": lattices, "frac_coords": frac, "numbers": numbers, "offsets": offsets}


def crystals_from_flat(
    lattices: np.ndarray, frac_coords: np.ndarray, numbers: np.ndarray, offsets: np.ndarray
) -> list[Crystal]:
    """Split flat arrays back into crystals without copying (read-only views); inverse of the above.

    lattices (N, 3, 3) or (N, 9); frac_coords (M, 3) or (3M,); numbers (M,); offsets (N+1,).
    """
    lattices = np.array(lattices, dtype=np.float64).reshape(-1, 3, 3)
    frac = np.array(frac_coords, dtype=np.float64).reshape(-1, 3)
    nums = np.array(numbers, dtype=np.int64).reshape(-1)
    offsets = np.asarray(offsets, dtype=np.int64)
    if len(offsets) != len(lattices) + 1 or offsets[-1] != len(nums) or len(nums) != len(frac):
        raise ValueError("inconsistent flat crystal arrays")
    if len(lattices) and np.any(np.diff(offsets) <= 0):
        raise ValueError("a crystal needs at least one site")
    for a in (lattices, frac, nums):
        a.flags.writeable = False
    out = []
    new, setattr_ = object.__new__, object.__setattr__
    for i, (lo, hi) in enumerate(zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)):
        c = new(Crystal)
        setattr_(c, "lattice", lattices[i])
        setattr_(c, "frac_coords", frac[lo:hi])
        setattr_(c, "numbers", nums[lo:hi])
        out.append(c)
    return out


# ----------------------------------------------------------------------------------------------
# CIF
# ----------------------------------------------------------------------------------------------


_CELL = (
    "_cell_length_a",
    "_cell_length_b",
    "_cell_length_c",
    "_cell_angle_alpha",
    "_cell_angle_beta",
    "_cell_angle_gamma",
)
# tags pymatgen's CifWriter writes outside loops; anything else sends the file to pymatgen
_PLAIN_TAGS = frozenset(
    _CELL
    + (
        "_symmetry_space_group_name_H-M",
        "_symmetry_Int_Tables_number",
        "_chemical_formula_structural",
        "_chemical_formula_sum",
        "_cell_volume",
        "_cell_formula_units_Z",
    )
)
_SYM_HEADERS = (
    frozenset({"_symmetry_equiv_pos_site_id", "_symmetry_equiv_pos_as_xyz"}),
    frozenset({"_space_group_symop_id", "_space_group_symop_operation_xyz"}),
)
_ATOM_HEADERS = frozenset(
    {
        "_atom_site_type_symbol",
        "_atom_site_label",
        "_atom_site_symmetry_multiplicity",
        "_atom_site_fract_x",
        "_atom_site_fract_y",
        "_atom_site_fract_z",
        "_atom_site_occupancy",
    }
)
_IDENTITY_ROW = re.compile(r"(?:\d+\s+)?'\s*x\s*,\s*y\s*,\s*z\s*'")
_SITE_TOL = 1e-4  # pymatgen CifParser's site_tolerance and frac_tolerance defaults
_IDEAL = (1 / 3, 2 / 3)


def _cif_items(text: str) -> tuple[dict[str, str], list[tuple[list[str], list[str]]]] | None:
    """A simple CIF's single-line tags and its loops (headers, rows), with the number of data blocks checked
    to be one; None when the file has anything else (multi-line values, text fields, ...)."""
    tags: dict[str, str] = {}
    loops: list[tuple[list[str], list[str]]] = []
    lines = text.splitlines()
    n, i, blocks = len(lines), 0, 0
    while i < n:
        s = lines[i].strip()
        if not s or s[0] == "#":
            i += 1
        elif s.startswith("data_"):
            blocks += 1
            i += 1
        elif s == "loop_":
            i += 1
            headers, rows = [], []
            while i < n and lines[i].lstrip().startswith("_"):
                headers.append(lines[i].strip())
                i += 1
            while i < n:
                t = lines[i].strip()
                if not t or t == "loop_" or t[0] in "_#;" or t.startswith("data_"):
                    break
                rows.append(t)
                i += 1
            loops.append((headers, rows))
        elif s[0] == "_":
            parts = s.split(None, 1)
            if len(parts) != 2:
                return None
            tags[parts[0]] = parts[1]
            i += 1
        else:
            return None
    if blocks != 1:
        return None
    return tags, loops


def _cif_sites(headers: list[str], rows: list[str]) -> tuple[list[str], list[tuple[float, ...]]] | None:
    """The atom loop's element symbols and fractional coordinates; None unless every site is one fully
    occupied element."""
    need = ("_atom_site_type_symbol", "_atom_site_fract_x", "_atom_site_fract_y", "_atom_site_fract_z")
    if not rows or any(h not in headers for h in need) or len(set(headers)) != len(headers):
        return None
    col = {h: k for k, h in enumerate(headers)}
    ks, kx, ky, kz = (col[h] for h in need)
    ko = col.get("_atom_site_occupancy")
    symbols, xyz = [], []
    try:
        for row in rows:
            tok = row.split()
            if len(tok) != len(headers):
                return None
            if ko is not None and float(tok[ko]) != 1.0:
                return None
            symbols.append(tok[ks])
            xyz.append((float(tok[kx]), float(tok[ky]), float(tok[kz])))
    except ValueError:
        return None
    return symbols, xyz


def _fast_parse_cif(text: str) -> Crystal | None:
    """The exact fast path for simple P1 CIFs; None when the file needs pymatgen's full parser."""
    items = _cif_items(text)
    if items is None:
        return None
    tags, loops = items
    if not tags.keys() <= _PLAIN_TAGS or len(loops) != 2:
        return None
    try:
        cell = [float(tags[k]) for k in _CELL]
    except (KeyError, ValueError):
        return None
    sym = [lp for lp in loops if frozenset(lp[0]) in _SYM_HEADERS]
    atoms = [lp for lp in loops if frozenset(lp[0]) <= _ATOM_HEADERS]
    if len(sym) != 1 or len(atoms) != 1 or len(sym[0][1]) != 1:
        return None
    if not _IDENTITY_ROW.fullmatch(sym[0][1][0]):
        return None
    found = _cif_sites(*atoms[0])
    if found is None:
        return None
    symbols, xyz = found
    table = element_table()
    if any(s not in table or math.isnan(table[s][1]) for s in symbols):
        return None
    frac = np.array(xyz, dtype=np.float64)
    if not np.all(np.isfinite(frac)) or not all(np.isfinite(cell)) or min(cell) <= 0 or max(cell[3:]) >= 180:
        return None

    matrix = Lattice.from_parameters(*cell).matrix
    if not np.all(np.isfinite(matrix)) or abs(np.linalg.det(matrix)) < 1e-8:
        return None
    recip = np.linalg.inv(matrix).T  # rows: reciprocal vectors (no 2π); 1/|row| = d-spacing
    if np.any(1.0 / np.linalg.norm(recip, axis=1) < 0.01):
        return None  # pymatgen refuses such thin cells: let it say so

    # pymatgen's _sanitize_data: fractions within 1e-4 (relative) of 1/3 or 2/3 become ideal
    for ideal in _IDEAL:
        frac[np.abs(frac / ideal - 1.0) <= _SITE_TOL] = float(str(ideal))
    # two sites closer than the site tolerance would be merged into a disordered site by pymatgen
    if len(frac) > 1:
        d = frac[:, None, :] - frac[None, :, :]
        d -= np.round(d)
        close = np.all(np.abs(d) < _SITE_TOL, axis=-1)
        np.fill_diagonal(close, False)
        if close.any():
            return None
    frac = frac - np.floor(frac)
    order = sorted(range(len(symbols)), key=lambda k: (table[symbols[k]][1], symbols[k]))
    numbers = np.array([table[symbols[k]][0] for k in order], dtype=np.int64)
    if "_chemical_formula_sum" in tags:  # what the file says it holds: a truncated or edited file differs
        check_formula(tags["_chemical_formula_sum"], symbols)
    return Crystal(matrix, frac[order], numbers)


def _checked(crystal: Crystal) -> Crystal:
    """The crystal itself once :func:`lib.validate.check_arrays` accepts it (StructureError otherwise)."""
    check_arrays(crystal.lattice, crystal.frac_coords, crystal.numbers)
    return crystal


def crystal_from_arrays(lattice, frac_coords, numbers, check: bool = True) -> Crystal:
    """A checked Crystal from exact arrays (a snapshot's ``crystal`` field); StructureError if unusable."""
    try:
        crystal = Crystal(lattice, frac_coords, numbers)
    except (TypeError, ValueError) as exc:
        raise StructureError("bad structure", f"unusable crystal arrays: {exc}") from None
    try:
        whole = np.array_equal(crystal.numbers, np.asarray(numbers, dtype=np.float64).reshape(-1))
    except (TypeError, ValueError):
        whole = False
    if not whole:
        raise StructureError("unknown element", "atomic numbers that are not whole numbers")
    return _checked(crystal) if check else crystal


def _pymatgen_parse_cif(text: str) -> Crystal:
    """pymatgen's CifParser (warnings silenced) after :func:`lib.validate.check_cif`, as a checked Crystal."""
    formula = check_cif(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parser = None
        try:
            parser = CifParser.from_str(text)
            structure = parser.parse_structures(primitive=False)[0]
        except Exception as exc:  # noqa: BLE001 - pymatgen raises many types on bad CIFs
            why = [w for w in (getattr(parser, "warnings", None) or []) if "No structure parsed" in w]
            detail = " ".join(why[-1].split()[6:]) if why else ""
            if "exceeded tolerance" in detail:  # two sites merged into one site of occupancy > 1
                raise StructureError("atoms too close", "two or more sites coincide (within pymatgen's site "
                                     f"tolerance): {detail}") from None
            first = str(exc).strip().splitlines()
            raise StructureError(
                "unparseable CIF",
                f"pymatgen cannot parse the CIF: {type(exc).__name__}: {first[-1] if first else ''}"
                + (f" ({detail})" if detail else ""),
            ) from None
    crystal = Crystal.from_structure(structure)
    check_formula(formula, crystal.numbers)
    return crystal


def parse_cif(text: str, check: bool = True) -> Crystal:
    """Parse CIF text into a checked Crystal, fast and exact for pymatgen-style P1 files, else via pymatgen.

    ``check=False`` leaves :func:`lib.validate.check_arrays` to the caller for the fast path (a table
    checks all its structures at once, :func:`lib.validate.check_many`); the pymatgen path always checks.
    """
    if not isinstance(text, str) or not text.strip():
        raise StructureError("no structure", "empty or missing CIF")
    crystal = _fast_parse_cif(text)
    if crystal is None:
        return _pymatgen_parse_cif(text)
    return _checked(crystal) if check else crystal


def _cif_number(x: float) -> str:
    return f"{x:.8f}"


def write_cif(crystal: Crystal, name: str | None = None) -> str:
    """A P1 CIF in the layout of pymatgen's CifWriter (8 decimals), readable by any CIF reader."""
    m = crystal.lattice
    abc = np.linalg.norm(m, axis=1)
    a, b, c = abc
    alpha = math.degrees(math.acos(np.clip(m[1] @ m[2] / (b * c), -1, 1)))
    beta = math.degrees(math.acos(np.clip(m[0] @ m[2] / (a * c), -1, 1)))
    gamma = math.degrees(math.acos(np.clip(m[0] @ m[1] / (a * b), -1, 1)))
    symbols = [Element.from_Z(int(z)).symbol for z in crystal.numbers]
    counts: dict[str, int] = {}
    for s in symbols:
        counts[s] = counts.get(s, 0) + 1
    formula = " ".join(f"{s}{k}" for s, k in counts.items())
    lines = [
        "# P1 CIF written by lib.structures",
        f"data_{name or formula.replace(' ', '')}",
        "_symmetry_space_group_name_H-M   'P 1'",
        f"_cell_length_a   {_cif_number(a)}",
        f"_cell_length_b   {_cif_number(b)}",
        f"_cell_length_c   {_cif_number(c)}",
        f"_cell_angle_alpha   {_cif_number(alpha)}",
        f"_cell_angle_beta   {_cif_number(beta)}",
        f"_cell_angle_gamma   {_cif_number(gamma)}",
        "_symmetry_Int_Tables_number   1",
        f"_chemical_formula_sum   '{formula}'",
        f"_cell_volume   {_cif_number(crystal.volume)}",
        "loop_",
        " _symmetry_equiv_pos_site_id",
        " _symmetry_equiv_pos_as_xyz",
        "  1  'x, y, z'",
        "loop_",
        " _atom_site_type_symbol",
        " _atom_site_label",
        " _atom_site_symmetry_multiplicity",
        " _atom_site_fract_x",
        " _atom_site_fract_y",
        " _atom_site_fract_z",
        " _atom_site_occupancy",
    ]
    for k, (s, (x, y, z)) in enumerate(zip(symbols, crystal.frac_coords, strict=True)):
        lines.append(f"  {s}  {s}{k}  1  {_cif_number(x)}  {_cif_number(y)}  {_cif_number(z)}  1")
    return "\n".join(lines) + "\n"


def _occupancy_error(where: str, occu) -> StructureError | None:
    """None for an occupancy of exactly 1; else the StructureError that says what is wrong with it."""
    try:
        x = float(occu)
    except (TypeError, ValueError):
        return StructureError("bad occupancy", f"{where}: occupancy {occu!r} is not a number")
    if x == 1.0:
        return None
    if not (0.0 < x <= 1.0):
        return StructureError("bad occupancy", f"{where}: occupancy {occu!r} is not in (0, 1]")
    return StructureError("partial occupancy", f"{where} has occupancy {x:g}: a disordered structure; "
                          "order it first or drop it")


def _near_one(x) -> bool:
    try:
        return abs(float(x) - 1.0) <= 1e-6
    except (TypeError, ValueError):
        return False


def parse_structure_dict(d: dict, check: bool = True) -> Crystal:
    """A checked Crystal from pymatgen's ``Structure.as_dict()`` form (MP API documents), without pymatgen.

    Reads ``lattice.matrix`` and each site's ``abc`` as ``Structure.from_dict`` does; sites with more
    than one species or an occupancy below 1 raise StructureError("partial occupancy").
    """
    try:
        matrix = d["lattice"]["matrix"]
        sites = list(d["sites"])
    except (KeyError, TypeError, IndexError):
        raise StructureError("no structure", "not a pymatgen structure dict (no lattice/sites)") from None
    table = element_table()
    numbers, frac = [], []
    for k, site in enumerate(sites):
        if not isinstance(site, Mapping):
            raise StructureError("bad structure", f"site {k} is not a mapping")
        where = f"site {k} ({site.get('label', '?')})"
        species = site.get("species") or []
        if len(species) != 1:
            raise StructureError("partial occupancy", f"{where} holds {len(species)} species: disordered")
        err = _occupancy_error(where, species[0].get("occu", 1))
        if err is not None:
            raise err
        sym = re.sub(r"[\d.+-]+$", "", str(species[0].get("element")))
        if sym not in table:
            raise StructureError("unknown element", f"{where}: unknown element {species[0].get('element')!r}")
        numbers.append(table[sym][0])
        frac.append(site.get("abc"))
    if not numbers:
        raise StructureError("no structure", "structure without sites")
    return crystal_from_arrays(matrix, frac, numbers, check)


def parse_optimade(attrs: Mapping, check: bool = True) -> Crystal:
    """A checked Crystal from an OPTIMADE structure (lattice_vectors, cartesian_site_positions,
    species_at_sites, species)."""
    lat, pos, sites = (
        attrs.get(k) for k in ("lattice_vectors", "cartesian_site_positions", "species_at_sites")
    )
    if lat is None or pos is None or sites is None:
        raise StructureError(
            "no structure", "lattice_vectors, cartesian_site_positions or species_at_sites missing"
        )
    dims = attrs.get("dimension_types")
    if dims is not None and list(dims) != [1, 1, 1]:
        raise StructureError("not periodic", f"dimension_types = {list(dims)}; only 3D crystals are used")
    try:
        species = {s["name"]: s for s in (attrs.get("species") or [])}
    except (KeyError, TypeError):
        raise StructureError("bad structure", "a species entry without a name") from None
    table = element_table()
    numbers = []
    for name in sites:
        sp = species.get(name, {"chemical_symbols": [name], "concentration": [1.0]})
        syms, conc = list(sp.get("chemical_symbols") or []), list(sp.get("concentration") or [1.0])
        if len(syms) != 1 or syms[0] in ("vacancy", "X"):
            raise StructureError("partial occupancy", f"species {name!r} = {syms} with concentrations {conc}")
        err = _occupancy_error(f"species {name!r}", conc[0])
        if err is not None and not _near_one(conc[0]):  # OPTIMADE concentrations: 1 within 1e-6 is 1
            raise err
        if syms[0] not in table:
            raise StructureError("unknown element", f"unknown chemical symbol {syms[0]!r}")
        numbers.append(table[syms[0]][0])
    try:
        lattice = np.asarray(lat, dtype=np.float64)
        cart = np.asarray(pos, dtype=np.float64).reshape(-1, 3)
    except (TypeError, ValueError):
        raise StructureError("bad structure",
                             "lattice_vectors or cartesian_site_positions are not numbers") from None
    if lattice.shape != (3, 3) or not np.all(np.isfinite(lattice)) or abs(np.linalg.det(lattice)) < 1e-8:
        raise StructureError("bad lattice", "lattice_vectors is not a finite 3x3 non-singular matrix")
    if len(cart) != len(numbers):
        raise StructureError("bad structure", f"{len(cart)} positions for {len(numbers)} species_at_sites")
    frac = np.linalg.solve(lattice.T, cart.T).T
    return crystal_from_arrays(lattice, frac, numbers, check)
