"""What graphs look like across parameters (02_graphs): neighbours per atom, environment similarity."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import sparse

from lib.graphs.build import build_graphs
from lib.graphs.neighbors import GraphParams
from lib.graphs.sets import GraphSet

# --------------------------------------------------------------------------------------------------
# how the hyperparameters shape the graphs (02_graphs)


def environment_similarity(gs: GraphSet) -> np.ndarray:
    """(n,) per crystal: mean cosine similarity between the neighbour-element histograms of its atoms.

    Atom i's histogram counts its neighbours by element. Two atoms whose neighbours have the same
    composition score 1. A Na and a Cl that see only each other score 0. The value is the mean over
    pairs of distinct atoms that have at least one neighbour, and NaN for crystals with fewer than two
    such atoms. As the neighbourhoods grow, every atom sees the crystal's overall composition and the
    score goes to 1: "all atoms look alike".
    """
    if len(gs) == 0:
        return np.zeros(0)
    elements, el_idx = np.unique(gs.numbers, return_inverse=True)
    n_at = len(gs.numbers)
    shift = np.repeat(gs.atom_ptr[:-1], gs.n_edges)
    dst = gs.edge_dst.astype(np.int64) + shift
    src = gs.edge_src.astype(np.int64) + shift
    h = sparse.csr_matrix((np.ones(len(dst)), (dst, el_idx[src])), shape=(n_at, len(elements)))
    h.sum_duplicates()
    norm = np.sqrt(np.asarray(h.multiply(h).sum(axis=1)).ravel())
    has = norm > 0
    inv = np.zeros(n_at)
    inv[has] = 1.0 / norm[has]
    hn = sparse.diags(inv) @ h
    crystal = np.repeat(np.arange(len(gs)), gs.n_atoms)
    membership = sparse.csr_matrix((np.ones(n_at), (crystal, np.arange(n_at))), shape=(len(gs), n_at))
    s = membership @ hn
    sq = np.asarray(s.multiply(s).sum(axis=1)).ravel()
    m = np.bincount(crystal, weights=has.astype(float), minlength=len(gs))
    out = np.full(len(gs), np.nan)
    ok = m >= 2
    out[ok] = (sq[ok] - m[ok]) / (m[ok] * (m[ok] - 1))
    return out


def graph_sweep(
    data,
    params_list: Sequence[GraphParams],
    n_jobs: int = 2,
    progress: bool = True,
    cache: bool = False,
    name: str | None = None,
):
    """Build the graphs of ``data`` under each parameter set and measure them.

    Returns (table, degrees). table has one row per parameter set: builder, cutoff, k, mean/median/max
    degree, % of atoms with fewer than k neighbours (cgcnn), % of isolated atoms, % of structures with
    an isolated atom, mean neighbour-composition similarity (:func:`environment_similarity`), build
    seconds. degrees maps ``params.tag`` to every atom's number of neighbours. Structures with
    isolated atoms are kept here, because counting them is the point.
    """
    rows, degrees = [], {}
    for p in params_list:
        gs = build_graphs(
            data,
            p,
            cache=cache,
            n_jobs=n_jobs,
            progress=progress,
            name=name,
            on_isolated="keep",
            verbose=False,
        )
        deg = gs.degrees()
        rep = gs.report
        n_at = max(rep["n_atoms"], 1)
        n_st = max(rep["n_structures"], 1)
        sim = environment_similarity(gs)
        rows.append(
            {
                "builder": p.builder,
                "cutoff": p.cutoff,
                "k": p.max_neighbors,
                "n_structures": rep["n_structures"],
                "mean_degree": float(deg.mean()) if len(deg) else np.nan,
                "median_degree": float(np.median(deg)) if len(deg) else np.nan,
                "max_degree": int(deg.max()) if len(deg) else 0,
                "pct_atoms_fewer_than_k": 100.0 * rep["atoms_fewer_than_k"] / n_at
                if p.builder == "cgcnn"
                else np.nan,
                "pct_atoms_isolated": 100.0 * rep["isolated_atoms"] / n_at,
                "pct_structures_isolated": 100.0 * rep["structures_with_isolated"] / n_st,
                "env_similarity": float(np.nanmean(sim)) if np.isfinite(sim).any() else np.nan,
                "build_seconds": rep.get("build_seconds", np.nan),
            }
        )
        degrees[p.tag] = deg
    return pd.DataFrame(rows), degrees
