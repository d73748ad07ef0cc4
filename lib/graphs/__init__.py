"""Crystal graphs: atoms are nodes, and each atom receives edges from its periodic neighbours.

Two builders, one for each model family:

- ``cgcnn``: each atom's k nearest neighbours within a cutoff. The thesis's Table 3 uses k = 8 and
  8 Å; the reference CGCNN code uses k = 12.
- ``megnet``: every neighbour within a cutoff (the MEGNet paper uses 4 Å).

Both search neighbours with pymatgen's vectorised ``find_points_in_spheres``, called directly on
the :class:`~lib.structures.Crystal` arrays. Periodic images are included: an atom's own images are
neighbours (a one-atom cell still has edges), and only the atom itself at distance 0 is left out.
Neighbours are sorted by distance, then neighbour index, then image offset, so ties break the same
way on every run.

**Ties (``include_ties=True``, the default).** Every neighbour whose distance equals the k-th
distance to within 1e-5 Å is kept too. The graph is then a function of the distances alone: it does
not depend on the order of the atoms or on the cell (a supercell gives every atom the same multiset
of neighbour distances). The reference CGCNN cuts at exactly k. In a high-symmetry crystal that
keeps an arbitrary subset of a shell of equivalent neighbours (fcc with k = 8 keeps 8 of the 12
nearest), and which subset depends on atom order and on floating-point noise.
``include_ties=False`` gives the reference behaviour.

**Too few neighbours.** An atom with fewer than k neighbours within the cutoff keeps only the ones
it has. The reference pads with fake neighbours at a large distance and warns; here the models read
the edge list, so no padding is needed. Such atoms are counted in ``GraphSet.report``.

**Isolated atoms** (no neighbour at all within the cutoff) can receive no message. This happens to
MEGNet graphs at 4 Å in open structures. ``build_graphs(on_isolated=...)`` sets what to do:
"drop" the structure (the default, as the MEGNet reference skips them), with a one-line summary and
every id in ``report["isolated_ids"]``; "keep" it; or "error". The remedy is a larger cutoff
(5 Å removes most of them).

**Edge direction.** Edge e goes from ``edge_src[e]`` (the neighbour j, which sends) to
``edge_dst[e]`` (the centre atom i, which receives): message passing sums over edges into
``edge_dst``. Edges come grouped by centre atom and sorted by distance within each group.

A whole dataset becomes one :class:`GraphSet`: flat arrays with offsets and no padding. It is built
in parallel worker processes that receive chunks of plain arrays, cached under ``data/graphs/``
(keyed by the dataset content, the builder parameters and :data:`GRAPH_CODE_VERSION`), and batched
for the models with vectorised index arithmetic (:meth:`GraphSet.batch`).

Distances reach the models through :class:`GaussianExpansion`, the only place they are expanded.
"""

from lib.elements import ATOM_FEATURE_SPEC, atom_feature_table
from lib.graphs.analysis import environment_similarity, graph_sweep
from lib.graphs.build import build_graphs, cache_key, graph_cache_dir
from lib.graphs.features import GaussianExpansion, cgcnn_gaussian, megnet_gaussian
from lib.graphs.neighbors import (
    BUILDERS,
    GRAPH_CODE_VERSION,
    ON_ISOLATED,
    TIE_TOL,
    CrystalGraph,
    GraphParams,
    as_crystal,
    build_graph,
    cgcnn_params,
    megnet_params,
)
from lib.graphs.sets import GraphBatch, GraphSet, collate, summarize

__all__ = [
    "GRAPH_CODE_VERSION",
    "GraphParams",
    "cgcnn_params",
    "megnet_params",
    "CrystalGraph",
    "build_graph",
    "GraphSet",
    "build_graphs",
    "GraphBatch",
    "collate",
    "GaussianExpansion",
    "cgcnn_gaussian",
    "megnet_gaussian",
    "ATOM_FEATURE_SPEC",
    "atom_feature_table",
    "graph_cache_dir",
    "summarize",
    "cache_key",
    "environment_similarity",
    "graph_sweep",
    "BUILDERS",
    "ON_ISOLATED",
    "TIE_TOL",
    "as_crystal",
]
