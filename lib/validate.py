"""What a structure must satisfy to become a :class:`lib.structures.Crystal`, checked in one place.

Every structure that enters the project — a CIF (fast path or pymatgen's parser), a pymatgen
``Structure`` or its dict (MP API), an OPTIMADE entry, a snapshot's exact arrays, a Crystal handed to
``lib.predict`` — goes through :func:`check_arrays` before it is used. A structure that fails raises
:class:`StructureError`, whose ``reason`` is one short category from :data:`REASONS` (the data tables
count rejections by it) and whose message names the problem (which atoms, which value, what to do).

The rules (the limits in :class:`Limits`; raise them with environment variables or :func:`set_limits`):

- the lattice is finite and has a positive volume (and, for a CIF, positive lengths and angles in
  (0°, 180°));
- the coordinates are finite and within ``max_frac`` (100) cells of the origin;
- every atomic number is an element the atom features cover: 1..``max_z`` (100,
  ``lib.elements.atom_feature_table``'s default and MEGNet's embedding size);
- no two atoms are closer than ``min_distance`` (0.5 Å; the shortest distance in the 39,928 mirror
  structures is 0.746 Å, an H-H pair), periodic images included: an atom closer than that to its own
  image (a degenerate or collapsed cell) is rejected too;
- at most ``max_atoms`` (1,000) atoms and ``max_volume`` (50,000 Å³) per cell (the mirror's largest:
  200 atoms, 5,719 Å³): bigger cells make graphs that cost minutes and memory, and are most often a
  mistake (a unit in pm or nm, a slab with a huge vacuum).

Occupancies (all exactly 1), element symbols and data blocks are checked by the parsers that see
them (:mod:`lib.structures`), which then call :func:`check_arrays`.

The minimum-distance check is vectorised: when every d-spacing of the cell is at least twice the
threshold (true of every real cell here; others are LLL-reduced first) only the minimum image in
fractional coordinates can be that close, so one pass over all pairs decides it (a few µs for a
typical cell). Cells that stay thin after reduction go to pymatgen's ``find_points_in_spheres``.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, fields, replace

import numpy as np
from pymatgen.core import Lattice
from pymatgen.io.cif import CifFile, str2float
from pymatgen.optimization.neighbors import find_points_in_spheres

from lib.elements import element_table

#: bump when the checks change what is accepted (it keys the processed-table cache)
CHECKS_VERSION = 1

#: reason -> what it means; :class:`StructureError.reason` is always one of these keys
REASONS = {
    "no structure": "the input holds no structure (an empty CIF, a missing file or field)",
    "unparseable CIF": "no CIF parser could read it",
    "several data blocks": "a CIF with more than one data block holding atoms (give one per file)",
    "partial occupancy": "a site with occupancy below 1 or several species (disorder)",
    "bad occupancy": "an occupancy <= 0, > 1 or not a number",
    "unknown element": "a symbol or atomic number that is no element",
    "unsupported element": "an element beyond the atom features' range (Z > max_z)",
    "bad lattice": "non-finite, zero-volume or degenerate cell, or CIF lengths/angles out of range",
    "bad coordinates": "non-finite coordinates, or far outside the cell",
    "atoms too close": "two atoms (or an atom and its periodic image) closer than min_distance",
    "too large": "more atoms or a larger cell volume than the limits allow",
    "formula mismatch": "a CIF whose atoms differ from its _chemical_formula_sum (truncated or edited?)",
    "not periodic": "not a 3D-periodic crystal",
    "bad structure": "anything else that makes the arrays unusable",
}

#: environment variables that override the default limits (read at each check)
ENV = {
    "max_atoms": "COMPENDIUM_MAX_ATOMS",
    "max_volume": "COMPENDIUM_MAX_VOLUME",
    "min_distance": "COMPENDIUM_MIN_DISTANCE",
}


class StructureError(ValueError):
    """A structure that cannot become a Crystal; ``reason`` is a short category (:data:`REASONS`)."""
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Limits:
    """The limits every structure is checked against.

    max_atoms: atoms per cell. max_volume: cell volume in Å³. min_distance: Å, the closest two atoms
    (or an atom and its periodic image) may be. max_z: the largest atomic number (the atom-feature
    table covers 1..100). max_frac: how far (in cells) a fractional coordinate may lie from the cell.
    """
    max_atoms: int = 1000
    max_volume: float = 50_000.0
    min_distance: float = 0.5
    max_z: int = 100
    max_frac: float = 100.0

    def as_dict(self) -> dict:
        return asdict(self)


DEFAULT_LIMITS = Limits()
_overrides: dict = {}


def set_limits(**changes) -> Limits:
    """Change the limits for this process (and the worker processes it starts); returns the old ones.

    ``set_limits(max_atoms=5000, max_volume=2e5)``; ``set_limits()`` with no argument resets them. The
    processed-table cache is keyed by the limits, so a change rebuilds the table once.
    """
    old = current_limits()
    names = {f.name for f in fields(Limits)}
    unknown = set(changes) - names
    if unknown:
        raise TypeError(f"unknown limit(s) {sorted(unknown)}; known: {sorted(names)}")
    if not changes:
        _overrides.clear()
    _overrides.update(changes)
    current_limits()  # fail now on a bad value
    return old


def current_limits() -> Limits:
    """The limits in force: defaults, then environment variables (:data:`ENV`), then :func:`set_limits`."""
    key = (*(os.environ.get(v) for v in ENV.values()), *sorted(_overrides.items()))
    lim = _cache.get(key)
    if lim is None:
        lim = _cache[key] = _limits()
    return lim


_cache: dict = {}


def _limits() -> Limits:
    vals = {}
    for name, var in ENV.items():
        raw = os.environ.get(var)
        if raw not in (None, ""):
            try:
                vals[name] = float(raw)
            except ValueError:
                raise ValueError(f"{var}={raw!r} is not a number") from None
    vals.update(_overrides)
    lim = replace(DEFAULT_LIMITS, **vals)
    lim = replace(lim, max_atoms=int(lim.max_atoms), max_z=int(lim.max_z))
    if not (lim.max_atoms >= 1 and lim.max_volume > 0 and lim.min_distance >= 0 and 1 <= lim.max_z <= 118
            and lim.max_frac > 0):
        raise ValueError(f"invalid structure limits {lim}")
    return lim


def _symbol(z: int) -> str:
    try:
        for sym, (zz, _) in element_table().items():
            if zz == z:
                return sym
    except ImportError:  # pragma: no cover
        pass
    return "?"


def check_arrays(lattice: np.ndarray, frac: np.ndarray, numbers: np.ndarray,
                 limits: Limits | None = None) -> None:
    """Raise :class:`StructureError` unless (lattice, fractional coordinates, atomic numbers) is sound.

    lattice (3, 3) rows in Å, frac (n, 3), numbers (n,) integers. Nothing is changed.
    """
    lim = limits or current_limits()
    lattice = np.asarray(lattice, dtype=np.float64)
    frac = np.asarray(frac, dtype=np.float64)
    numbers = np.asarray(numbers)
    n = len(numbers)
    if lattice.shape != (3, 3) or frac.shape != (n, 3) or n == 0:
        raise StructureError("bad structure", f"lattice {lattice.shape}, coordinates {frac.shape}, "
                             f"{n} atomic numbers: expected (3, 3), (n, 3), n >= 1")
    if not np.isfinite(lattice).all():
        raise StructureError("bad lattice", f"the lattice holds non-finite values: {lattice.tolist()}")
    if not np.isfinite(frac).all():
        bad = int(np.flatnonzero(~np.isfinite(frac).all(axis=1))[0])
        raise StructureError("bad coordinates", f"atom {bad} has non-finite coordinates {frac[bad].tolist()}")
    far = np.abs(frac).max()
    if far > lim.max_frac:
        raise StructureError("bad coordinates", f"a fractional coordinate is {far:g}, more than "
                             f"{lim.max_frac:g} cells from the cell: wrap the coordinates into [0, 1)")
    if not np.issubdtype(numbers.dtype, np.integer):
        raise StructureError("unknown element", f"atomic numbers of type {numbers.dtype}, not integers")
    low, high = int(numbers.min()), int(numbers.max())
    if low < 1 or high > 118:
        raise StructureError("unknown element", f"atomic number {low if low < 1 else high} is no element")
    if high > lim.max_z:
        raise StructureError("unsupported element", f"element {_symbol(high)} (Z = {high}) is beyond the "
                             f"atom features' range 1..{lim.max_z}")
    if n > lim.max_atoms:
        raise StructureError("too large", f"{n} atoms in the cell, more than the limit of {lim.max_atoms} "
                             f"(raise it with {ENV['max_atoms']} or lib.validate.set_limits)")
    volume, spacings = _cell_geometry(lattice)
    if not (volume > 1e-6 and spacings.min() > 1e-9 * np.abs(lattice).max()):
        raise StructureError("bad lattice", f"the cell volume is {volume:.3g} Å³: the lattice vectors are "
                             "(nearly) coplanar")
    if volume > lim.max_volume:
        raise StructureError("too large", f"cell volume {volume:.4g} Å³, more than the limit of "
                             f"{lim.max_volume:g} Å³ (raise it with {ENV['max_volume']} or "
                             "lib.validate.set_limits)")
    if lim.min_distance > 0:
        close = closest_pair(lattice, frac, lim.min_distance, spacings)
        if close is not None:
            d, i, j = close
            zi, zj = _symbol(int(numbers[i])), _symbol(int(numbers[j]))
            what = (f"atom {i} ({zi}) is {d:.4g} Å from its own periodic image (a collapsed or degenerate "
                    "cell)" if i == j else f"atoms {i} ({zi}) and {j} ({zj}) are {d:.4g} Å apart")
            raise StructureError("atoms too close", f"{what}, closer than {lim.min_distance:g} Å: "
                                 f"overlapping or duplicated sites? (limit: {ENV['min_distance']})")


def check_many(crystals, limits: Limits | None = None) -> list[StructureError | None]:
    """:func:`check_arrays` for many crystals at once: the StructureError of each (None where it passes).

    The same rules and messages, vectorised over the crystals (the CGCNN table's 36,744 structures,
    in chunks of 500: 1.5-1.9 s of CPU instead of 3.3-5 s one by one): one pass computes every rule's
    quantities for all crystals and all minimum-image pairs; a crystal that any rule might reject
    (with a margin of 1e-9 on the distances) is then checked again by :func:`check_arrays`, which
    decides and words the error.
    ``crystals``: objects with ``lattice``, ``frac_coords`` and ``numbers`` (:class:`lib.structures.Crystal`).
    """
    lim = limits or current_limits()
    n_cr = len(crystals)
    out: list[StructureError | None] = [None] * n_cr
    if n_cr == 0:
        return out
    counts = np.fromiter((len(c.numbers) for c in crystals), dtype=np.int64, count=n_cr)
    flag = counts < 1
    ok_shapes = all(np.shape(c.lattice) == (3, 3) and np.shape(c.frac_coords) == (len(c.numbers), 3)
                    for c in crystals)
    if not ok_shapes or flag.any():
        return [_error_of(c, lim) for c in crystals]
    lat = np.stack([np.asarray(c.lattice, dtype=np.float64) for c in crystals])
    frac = np.concatenate([np.asarray(c.frac_coords, dtype=np.float64) for c in crystals])
    nums = np.concatenate([np.asarray(c.numbers) for c in crystals])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    r = lim.min_distance
    with np.errstate(all="ignore"):
        flag |= ~np.isfinite(lat).reshape(n_cr, 9).all(axis=1)
        atom_bad = ~(np.abs(frac) <= lim.max_frac).all(axis=1)
        if nums.dtype.kind not in "iu":
            return [_error_of(c, lim) for c in crystals]
        atom_bad |= (nums < 1) | (nums > lim.max_z)
        flag |= np.add.reduceat(atom_bad.astype(np.int64), starts) > 0
        flag |= counts > lim.max_atoms
        cross = np.cross(lat[:, [1, 2, 0]], lat[:, [2, 0, 1]])
        volume = np.abs(np.einsum("ij,ij->i", lat[:, 0], cross[:, 0]))
        spacing = (volume[:, None] / np.sqrt((cross * cross).sum(axis=2))).min(axis=1)
        longest = np.abs(lat).reshape(n_cr, 9).max(axis=1)
        flag |= ~((volume > 1e-6 * (1 + 1e-9)) & (spacing > 1e-9 * (1 + 1e-9) * longest))
        flag |= ~(volume <= lim.max_volume * (1 - 1e-9))
        if r > 0:
            flag |= ~(spacing >= 2 * r * (1 + 1e-9))  # thin cells: LLL and the general search, one by one
            todo = np.flatnonzero(~flag & (counts > 1))
            for part in np.array_split(todo, max(1, int(np.ceil((counts[todo] ** 2).sum() / 2e6)))):
                flag[part[_too_close(lat, frac, starts, counts, part, r * (1 + 1e-9))]] = True
    for k in np.flatnonzero(flag):
        out[k] = _error_of(crystals[k], lim)
    return out


def _error_of(c, lim: Limits) -> StructureError | None:
    try:
        check_arrays(c.lattice, c.frac_coords, c.numbers, lim)
    except StructureError as exc:
        return exc
    return None


def _too_close(lat, frac, starts, counts, idx, r: float) -> np.ndarray:
    """Which of the crystals ``idx`` (cells whose d-spacings are all >= 2r) hold a pair closer than r.

    Crystals with the same number of atoms n are stacked, so that every operation runs over
    (crystals, xyz, n, n) blocks without gathers: minimum image in fractional coordinates (exact for
    such cells, see :func:`closest_pair`), then Cartesian squared distances by a batched matmul.
    """
    out = np.zeros(len(idx), dtype=bool)
    ns = counts[idx]
    order = np.argsort(ns, kind="stable")
    sizes, first = np.unique(ns[order], return_index=True)
    bounds = [*first.tolist(), len(order)]
    for g, n in enumerate(sizes.tolist()):
        group = order[bounds[g]:bounds[g + 1]]
        per = max(1, 3_000_000 // (3 * n * n))  # crystals per block: ~24 MB of float64 at most
        diag = np.arange(n) * (n + 1)
        for a in range(0, len(group), per):
            sel = group[a:a + per]
            cr = idx[sel]
            ft = frac[starts[cr][:, None] + np.arange(n)].transpose(0, 2, 1)  # (B, 3, n)
            df = ft[:, :, None, :] - ft[:, :, :, None]
            df -= np.rint(df)
            x = np.matmul(lat[cr].transpose(0, 2, 1), df.reshape(len(cr), 3, n * n))
            x *= x
            d2 = x[:, 0] + x[:, 1] + x[:, 2]
            d2[:, diag] = np.inf
            out[sel] = d2.min(axis=1) < r * r
    return out


# ----------------------------------------------------------------------------------------------
# what only a CIF shows (lib.structures calls these on its CIF paths)
# ----------------------------------------------------------------------------------------------

_CIF_LENGTHS = ("_cell_length_a", "_cell_length_b", "_cell_length_c")
_CIF_ANGLES = ("_cell_angle_alpha", "_cell_angle_beta", "_cell_angle_gamma")
_LETTERS = re.compile(r"\s*([A-Za-z]+)")
_BLOCK = re.compile(r"^[ \t]*data_", re.IGNORECASE | re.MULTILINE)
_ATOMS = re.compile(r"^[ \t]*_atom_site_(?:fract|cartn)_x\b", re.IGNORECASE | re.MULTILINE)
_FORMULA_TERM = re.compile(r"([A-Z][a-z]?)([0-9]*\.?[0-9]*)")


def _elements() -> dict[str, tuple[int, float]]:
    return element_table()


def check_cif(text: str) -> str | None:
    """What only the CIF text shows, before pymatgen reads it: one data block with atoms (more are
    refused: which one is meant?), cell lengths > 0 and angles in (0°, 180°), element symbols that are
    elements (pymatgen would read ``Xx`` as a dummy species, ``Bq`` as boron, skip ``OH``), every
    occupancy exactly 1 (``?`` and ``.`` count as 1, as in pymatgen). Returns the block's
    ``_chemical_formula_sum`` (or None) for :func:`check_formula`. StructureError otherwise.
    """
    chunks = _BLOCK.split(text)[1:]
    with_atoms = [c for c in chunks if _ATOMS.search(c)]
    if len(with_atoms) > 1:
        names = [c.split(None, 1)[0] if c.split() else "?" for c in with_atoms]
        raise StructureError("several data blocks", f"{len(with_atoms)} data blocks hold atoms "
                             f"({', '.join('data_' + n for n in names[:4])}): give one structure per "
                             "CIF file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            blocks = list(CifFile.from_str(text).data.values())
    except Exception:  # noqa: BLE001 - pymatgen's parser will say what is wrong
        return None
    block = next((b for b in blocks if "_atom_site_fract_x" in b.data or "_atom_site_Cartn_x" in b.data),
                 None)
    if block is None:
        return None

    def values(key: str) -> list[str]:
        v = block.data.get(key)
        return [] if v is None else (v if isinstance(v, list) else [v])

    def number(raw: str) -> float | None:
        try:
            return str2float(raw)
        except (ValueError, TypeError):
            return None

    for key in _CIF_LENGTHS + _CIF_ANGLES:
        for raw in values(key)[:1]:
            x = number(raw)
            if key in _CIF_LENGTHS and (x is None or not 0 < x < math.inf):
                raise StructureError("bad lattice",
                                     f"{key} = {raw!r}: a length must be a positive number of Å")
            if key in _CIF_ANGLES and (x is None or not 0 < x < 180):
                raise StructureError("bad lattice", f"{key} = {raw!r}: an angle must lie strictly between 0 "
                                     "and 180 degrees")
    cell = [number(values(k)[0]) if values(k) else None for k in _CIF_LENGTHS + _CIF_ANGLES]
    if all(x is not None for x in cell):
        cosines = [math.cos(math.radians(x)) for x in cell[3:]]
        ca, cb, cg = cosines
        shape = 1 - ca * ca - cb * cb - cg * cg + 2 * ca * cb * cg
        volume = cell[0] * cell[1] * cell[2] * math.sqrt(max(shape, 0.0))
        if shape <= 1e-12 or not volume > 1e-6:
            raise StructureError("bad lattice", f"the cell parameters {[round(x, 6) for x in cell]} make no "
                                 f"cell (volume {volume:.3g} Å³): angles that cannot meet, or a flat cell")
    symbols = values("_atom_site_type_symbol") or values("_atom_site_label")
    for axis in "xyz":
        for k, raw in enumerate(values(f"_atom_site_fract_{axis}")):
            x = number(raw)
            if x is None or not math.isfinite(x):
                site = f"site {k + 1} ({symbols[k] if k < len(symbols) else '?'})"
                raise StructureError("bad coordinates", f"{site}: _atom_site_fract_{axis} = {raw!r} is not a "
                                     "finite number")
    table = _elements()
    for k, sym in enumerate(symbols):
        m = _LETTERS.match(str(sym))
        if m is None or m.group(1).title() not in table:
            raise StructureError("unknown element", f"site {k + 1}: {sym!r} is no element symbol")
    for k, raw in enumerate(values("_atom_site_occupancy")):
        if raw in ("?", "."):
            continue
        x = number(raw)
        site = f"site {k + 1} ({symbols[k] if k < len(symbols) else '?'})"
        if x is None or not math.isfinite(x) or x <= 0 or x > 1 + 1e-6:
            raise StructureError("bad occupancy", f"{site}: occupancy {raw!r} is not in (0, 1]")
        if x < 1:
            raise StructureError("partial occupancy", f"{site} has occupancy {raw}: a disordered structure; "
                                 "order it first or drop it")
    formula = values("_chemical_formula_sum")
    return formula[0] if formula else None


def check_formula(formula: str | None, atoms) -> None:
    """StructureError("formula mismatch") unless ``atoms`` (symbols or atomic numbers of the parsed cell)
    are a whole multiple of the CIF's ``_chemical_formula_sum`` (per formula unit or per cell, amounts
    rounded to 1e-3). A formula this parser cannot read (parentheses, charges) is not checked."""
    if not formula:
        return
    shown = formula.strip().strip("'\"").strip()
    text = shown.replace(" ", "")
    terms = _FORMULA_TERM.findall(text)
    if not terms or "".join(a + b for a, b in terms) != text:
        return
    want: dict[str, float] = {}
    for el, amount in terms:
        try:
            want[el] = want.get(el, 0.0) + (float(amount) if amount else 1.0)
        except ValueError:
            return
    have = Counter(atoms)
    if have and not isinstance(next(iter(have)), str):  # atomic numbers: compare by symbol
        have = Counter({_symbol(int(z)): n for z, n in have.items()})
    ok = have.keys() == want.keys() and all(v > 0 for v in want.values())
    if ok:
        el0 = next(iter(want))
        factor = have[el0] / want[el0]
        ok = all(abs(have[el] - factor * v) <= 1e-3 * factor * v + 1e-9 for el, v in want.items())
    if not ok:
        table = _elements()
        got = " ".join(f"{el}{n}" for el, n in sorted(have.items(), key=lambda t: table.get(t[0], (999,))[0]))
        raise StructureError("formula mismatch", f"the atoms make {got} but _chemical_formula_sum is "
                             f"'{shown}': a truncated or edited file?")


def _cell_geometry(lattice: np.ndarray) -> tuple[float, np.ndarray]:
    """(volume in Å³, the distances between the lattice planes spanned by each pair of lattice vectors)."""
    (a1, a2, a3), (b1, b2, b3), (c1, c2, c3) = lattice.tolist()  # 3x3: plain floats beat numpy calls
    crosses = ((b2 * c3 - b3 * c2, b3 * c1 - b1 * c3, b1 * c2 - b2 * c1),  # b x c, c x a, a x b
               (c2 * a3 - c3 * a2, c3 * a1 - c1 * a3, c1 * a2 - c2 * a1),
               (a2 * b3 - a3 * b2, a3 * b1 - a1 * b3, a1 * b2 - a2 * b1))
    volume = abs(a1 * crosses[0][0] + a2 * crosses[0][1] + a3 * crosses[0][2])
    return volume, np.array([volume / max(math.sqrt(x * x + y * y + z * z), 1e-300) for x, y, z in crosses])


def _d_spacings(lattice: np.ndarray) -> np.ndarray:
    return _cell_geometry(lattice)[1]


def closest_pair(lattice: np.ndarray, frac: np.ndarray, r: float, spacings: np.ndarray | None = None
                 ) -> tuple[float, int, int] | None:
    """(distance, i, j) of the closest pair of atoms nearer than ``r`` Å (i == j: an atom and its image).

    None if there is none.

    Exact for any cell: when every d-spacing is >= 2r, a vector shorter than r has all its fractional
    components in (-1/2, 1/2), so only the minimum image of each pair can be that short (and no atom is
    within r of its own image); that is one vectorised pass over all pairs. Other cells are
    LLL-reduced first (same lattice, same distances) and, if still thin, searched with pymatgen.
    """
    lattice = np.asarray(lattice, dtype=np.float64)
    frac = np.asarray(frac, dtype=np.float64)
    if (spacings if spacings is not None else _d_spacings(lattice)).min() < 2 * r:
        reduced = Lattice(lattice).get_lll_reduced_lattice().matrix
        frac = frac @ lattice @ np.linalg.inv(reduced)
        lattice = reduced
        if _d_spacings(lattice).min() < 2 * r:
            return _closest_pair_search(lattice, frac, r)
    n = len(frac)
    ft = np.ascontiguousarray(frac.T)  # (3, n): numpy's inner loops run over atoms, not over xyz
    best = None
    step = max(1, 400_000 // max(n, 1))
    for a in range(0, n, step):  # rows [a, b) against every atom (one block for n <= 632)
        b = min(a + step, n)
        df = (ft[:, None, :] - ft[:, a:b, None]).reshape(3, -1)
        df -= np.rint(df)
        x = lattice.T @ df  # (3, pairs) Cartesian
        x *= x
        d2 = x[0] + x[1] + x[2]
        d2[np.arange(b - a) * n + np.arange(a, b)] = np.inf  # an atom and itself
        k = int(np.argmin(d2))
        if d2[k] < r * r and (best is None or d2[k] < best[0] ** 2):
            i, j = divmod(k, n)
            best = (math.sqrt(float(d2[k])), *sorted((a + i, j)))
    return best


def _closest_pair_search(lattice: np.ndarray, frac: np.ndarray, r: float) -> tuple[float, int, int] | None:
    """The general search (pymatgen's cell lists) for cells still thin after LLL reduction."""
    n_images = np.prod(2 * np.ceil(r / _d_spacings(lattice)) + 1)
    if n_images * len(frac) > 2_000_000:
        raise StructureError("bad lattice", f"a degenerate cell: {n_images:.3g} periodic images lie within "
                             f"{r:g} Å of each atom")
    cart = np.ascontiguousarray(frac @ lattice)
    ctr, nbr, off, dist = find_points_in_spheres(cart, cart, r=r, pbc=np.array([1, 1, 1], dtype=np.int64),
                                                 lattice=np.ascontiguousarray(lattice), tol=1e-8)
    keep = ~((ctr == nbr) & ~off.any(axis=1)) & (dist < r)
    if not keep.any():
        return None
    k = int(np.argmin(np.where(keep, dist, np.inf)))
    i, j = sorted((int(ctr[k]), int(nbr[k])))
    return float(dist[k]), i, j


__all__ = ["CHECKS_VERSION", "REASONS", "ENV", "StructureError", "Limits", "DEFAULT_LIMITS", "set_limits",
           "current_limits", "check_arrays", "check_many", "check_cif", "check_formula", "closest_pair"]
