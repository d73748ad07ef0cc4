"""Crystal graphs, one at a time: the parameters, the neighbour search (k nearest with ties, or all within
a cutoff, periodic images included) and :func:`build_graph`."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from pymatgen.optimization.neighbors import find_points_in_spheres

from lib.structures import Crystal

# never read again.
GRAPH_CODE_VERSION = 1
TIE_TOL = 1e-5  # Å: neighbours this close to the k-th distance count as tied with it
_SORT_DECIMALS = 6  # distances are compared rounded to 1e-6 Å when ordering neighbours
BUILDERS = ("cgcnn", "megnet")
ON_ISOLATED = ("drop", "keep", "error")


# --------------------------------------------------------------------------------------------------
# parameters


@dataclass(frozen=True)
class GraphParams:
    """How a crystal becomes a graph. Hashable; it goes into the cache key and into checkpoints.

    builder: "cgcnn" (the k nearest neighbours within the cutoff) or "megnet" (every neighbour within it).
    cutoff: neighbour search radius in Å.
    max_neighbors: k for "cgcnn"; None for "megnet".
    include_ties: "cgcnn" only. Also keep neighbours tied with the k-th one (within 1e-5 Å).
    """

    builder: str
    cutoff: float
    max_neighbors: int | None = None
    include_ties: bool = True

    def __post_init__(self) -> None:
        if self.builder not in BUILDERS:
            raise ValueError(f"unknown graph builder {self.builder!r}; known: {', '.join(BUILDERS)}")
        if not (isinstance(self.cutoff, (int, float)) and math.isfinite(self.cutoff) and self.cutoff > 0):
            raise ValueError(f"cutoff must be a positive number of Å, got {self.cutoff!r}")
        object.__setattr__(self, "cutoff", float(self.cutoff))
        if self.builder == "cgcnn":
            if self.max_neighbors is None or int(self.max_neighbors) < 1:
                raise ValueError(f"the cgcnn builder needs max_neighbors >= 1, got {self.max_neighbors!r}")
            object.__setattr__(self, "max_neighbors", int(self.max_neighbors))
        elif self.max_neighbors is not None:
            raise ValueError("the megnet builder keeps every neighbour within the cutoff: max_neighbors=None")
        object.__setattr__(self, "include_ties", bool(self.include_ties))

    def as_dict(self) -> dict:
        """Plain dict for run records and checkpoints."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> GraphParams:
        """Inverse of :meth:`as_dict` (unknown keys are an error)."""
        return cls(**d)

    @property
    def tag(self) -> str:
        """Short readable name, e.g. 'cgcnn-r8-k12' or 'megnet-r4'; used in cache file names."""
        r = f"{self.cutoff:g}".replace(".", "p")
        if self.builder == "cgcnn":
            return f"cgcnn-r{r}-k{self.max_neighbors}" + ("" if self.include_ties else "-noties")
        return f"megnet-r{r}"


def cgcnn_params(cutoff: float = 8.0, max_neighbors: int = 8, include_ties: bool = True) -> GraphParams:
    """CGCNN graphs: k = 8 nearest neighbours within 8 Å (thesis Table 3; the reference code uses k = 12)."""
    return GraphParams("cgcnn", cutoff, max_neighbors, include_ties)


def megnet_params(cutoff: float = 4.0) -> GraphParams:
    """MEGNet graphs: every neighbour within 4 Å (the MEGNet paper)."""
    return GraphParams("megnet", cutoff, None)


# --------------------------------------------------------------------------------------------------
# one crystal


@dataclass
class CrystalGraph:
    """The graph of one crystal (numpy).

    numbers: (n,) int64 atomic numbers.
    edge_src: (E,) int64 neighbour j (sends).  edge_dst: (E,) int64 centre atom i (receives).
    distance: (E,) float32 |r_j + image offset - r_i| in Å.
    """

    numbers: np.ndarray
    edge_src: np.ndarray
    edge_dst: np.ndarray
    distance: np.ndarray
    images: np.ndarray | None = None  # (E, 3) int64 lattice translation of the neighbour, when asked for

    @property
    def n_atoms(self) -> int:
        return len(self.numbers)

    @property
    def n_edges(self) -> int:
        return len(self.edge_src)

    def degree(self) -> np.ndarray:
        """(n,) number of incoming edges (neighbours) of each atom."""
        return np.bincount(self.edge_dst, minlength=self.n_atoms)

    def neighbors(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Neighbour indices and distances of atom i, nearest first."""
        m = self.edge_dst == i
        return self.edge_src[m], self.distance[m]


def as_crystal(x) -> Crystal:
    if isinstance(x, Crystal):
        return x
    if hasattr(x, "lattice") and hasattr(x, "frac_coords") and hasattr(x, "species"):  # pymatgen Structure
        return Crystal.from_structure(x)
    raise TypeError(f"expected a lib.structures.Crystal or a pymatgen Structure, got {type(x).__name__}")


def _pairs(cart: np.ndarray, lattice: np.ndarray, r: float) -> tuple:
    """All (centre, neighbour, image offset, distance) pairs within r, the atom itself excluded."""
    ctr, nbr, off, dist = find_points_in_spheres(
        cart, cart, r=r, pbc=np.array([1, 1, 1], dtype=np.int64), lattice=lattice, tol=1e-8
    )
    keep = ~((ctr == nbr) & ~off.any(axis=1)) & (dist <= r + 1e-8)
    return ctr[keep], nbr[keep], off[keep], dist[keep]


def _sorted_pairs(ctr, nbr, off, dist) -> tuple:
    """Pairs grouped by centre, nearest first; ties (to 1e-6 Å) broken by neighbour index, then image."""
    order = np.lexsort((off[:, 2], off[:, 1], off[:, 0], nbr, np.round(dist, _SORT_DECIMALS), ctr))
    return ctr[order], nbr[order], off[order], dist[order]


def _knn_select(ctr, nbr, off, dist, n: int, k: int, include_ties: bool) -> tuple:
    """Keep each centre's first k pairs (with ties, all within TIE_TOL of the k-th); also dk per centre."""
    counts = np.bincount(ctr, minlength=n)
    starts = np.cumsum(counts) - counts
    rank = np.arange(len(ctr)) - starts[ctr]
    sel = rank < k
    full = counts >= k
    dk = np.full(n, np.inf)
    dk[full] = dist[starts[full] + k - 1]
    if include_ties:
        sel |= dist <= dk[ctr] + TIE_TOL
    return ctr[sel], nbr[sel], off[sel], dist[sel], dk


def _neighbor_edges(
    lattice: np.ndarray, frac: np.ndarray, params: GraphParams, images: bool = False
) -> tuple[np.ndarray, ...]:
    """(src, dst, distance float64[, image offsets (E, 3)]) of one crystal, grouped by dst, nearest first.

    For "cgcnn" the search first uses a smaller radius that should hold about 3k neighbours at the
    crystal's density; the answer is kept only if every atom's k-th neighbour (plus the tie tolerance)
    lies inside that radius, which makes it identical to the search at the full cutoff. Otherwise
    (open structures, vacuum) the full cutoff is searched.
    """
    lattice = np.ascontiguousarray(lattice, dtype=np.float64)
    cart = np.ascontiguousarray(frac @ lattice)
    n = len(cart)
    out = None
    if params.builder == "megnet":
        ctr, nbr, off, dist = _sorted_pairs(*_pairs(cart, lattice, params.cutoff))
        out = (nbr, ctr, dist, off)
    else:
        k = params.max_neighbors
        volume = abs(float(np.linalg.det(lattice)))
        r0 = (
            (3.0 * k * volume / (n * 4.0 / 3.0 * math.pi)) ** (1.0 / 3.0)
            if n and volume > 0
            else params.cutoff
        )
        if r0 < 0.8 * params.cutoff:
            c2, n2, o2, d2, dk = _knn_select(
                *_sorted_pairs(*_pairs(cart, lattice, r0)), n, k, params.include_ties
            )
            if np.all(dk + TIE_TOL <= r0 - 1e-7):
                out = (n2, c2, d2, o2)
        if out is None:
            c2, n2, o2, d2, _ = _knn_select(
                *_sorted_pairs(*_pairs(cart, lattice, params.cutoff)), n, k, params.include_ties
            )
            out = (n2, c2, d2, o2)
    return out if images else out[:3]


def build_graph(crystal: Crystal, params: GraphParams, images: bool = False) -> CrystalGraph:
    """The graph of one crystal (a :class:`Crystal` or a pymatgen Structure) under ``params``.

    images: also return each edge's periodic image of the neighbour (``CrystalGraph.images``, for
    drawing; the dataset caches do not store them).
    """
    c = as_crystal(crystal)
    res = _neighbor_edges(c.lattice, c.frac_coords, params, images=images)
    return CrystalGraph(
        c.numbers.copy(),
        res[0].astype(np.int64),
        res[1].astype(np.int64),
        res[2].astype(np.float32),
        images=res[3].astype(np.int64) if images else None,
    )
