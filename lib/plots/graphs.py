"""Figures of crystal graphs (02_graphs): the thesis's Figure 13 and how cutoff and k shape the graphs.

Drawn in the compendium's style (:mod:`lib.plots`); elements are coloured with the Jmol colours that
ASE ships. Every function returns a matplotlib Figure; :func:`lib.plots.save` writes it under figures/.
"""

from __future__ import annotations

from collections import Counter

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
import pandas as pd
from ase.data import atomic_numbers, chemical_symbols
from ase.data.colors import jmol_colors
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from lib.graphs import GraphParams, build_graph
from lib.plots.base import PALETTE, corner_text, stamp, use_style
from lib.structures import Crystal


def element_color(z: int) -> tuple:
    """Jmol colour of element z (RGB in 0..1), darkened slightly when too pale to see on white."""
    c = np.asarray(jmol_colors[int(z)], dtype=float)
    if c.mean() > 0.85:
        c = c * 0.8
    return tuple(c)


def _symbol(z: int) -> str:
    return chemical_symbols[int(z)]


def _cell_edges(ax, lattice: np.ndarray) -> None:
    """The 12 edges of the unit cell, drawn thin and grey on a 3D axis."""
    corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=float)
    for a in range(8):
        for b in range(a + 1, 8):
            if np.abs(corners[a] - corners[b]).sum() == 1:
                p = corners[[a, b]] @ lattice
                ax.plot(p[:, 0], p[:, 1], p[:, 2], color="0.6", lw=0.7)


def _equal_3d(ax, pts: np.ndarray) -> None:
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    mid, half = (lo + hi) / 2, (hi - lo).max() / 2 + 0.3
    for setter, m in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), mid, strict=True):
        setter(m - half, m + half)
    ax.set_box_aspect((1, 1, 1))
    ax.set_xlabel("x (Å)", labelpad=-8)
    ax.set_ylabel("y (Å)", labelpad=-8)
    ax.set_zlabel("z (Å)", labelpad=-8)
    ax.tick_params(labelsize=7, pad=-2)


def _labels(numbers: np.ndarray) -> list[str]:
    """'Ta1', 'O1', 'O2', ...: element symbol and running number per element."""
    seen: Counter = Counter()
    out = []
    for z in numbers.tolist():
        seen[z] += 1
        out.append(f"{_symbol(z)}{seen[z]}")
    return out


def pick_crystal(df, elements: tuple[str, ...] = ("Ta", "O"), material_id: str | None = None):
    """A row of a lib.data table for Figure 13: ``material_id`` if it is there, else the smallest
    crystal made of exactly ``elements``, else (no such crystal) the smallest crystal of all."""
    if material_id is not None and (df.material_id == material_id).any():
        return df[df.material_id == material_id].iloc[0]
    want = {atomic_numbers[e] for e in elements}
    sizes = df.structure.map(len)
    match = df.structure.map(lambda c: set(c.numbers.tolist()) == want)
    pool = df[match] if match.any() else df
    return pool.loc[sizes[pool.index].idxmin()]


def pick_centre(crystal: Crystal) -> int:
    """The atom Figure 13 zooms on: the first atom of the heaviest element (the metal in an oxide)."""
    return int(np.flatnonzero(crystal.numbers == crystal.numbers.max())[0])


def fig13(crystal: Crystal, params: GraphParams, centre: int | None = None, title: str = "") -> Figure:
    """The thesis's Figure 13 for one crystal: (a) the atoms of the cell in 3D, (b) one atom's
    surroundings, (c) the crystal graph drawn with networkx, (d) that atom's edges alone.

    params: the graph drawn in (b)-(d) (the thesis: 8 nearest neighbours within 3 Å).
    """
    use_style()
    g = build_graph(crystal, params, images=True)
    centre = pick_centre(crystal) if centre is None else int(centre)
    labels = _labels(crystal.numbers)
    elements = sorted(set(crystal.numbers.tolist()), reverse=True)
    handles = [Line2D([], [], marker="o", ls="", color=element_color(z), label=_symbol(z), markersize=8)
               for z in elements]

    fig = plt.figure(figsize=(11, 9.5))
    _cell_panel(fig.add_subplot(2, 2, 1, projection="3d"), crystal, centre, handles)
    _surroundings_panel(fig.add_subplot(2, 2, 2, projection="3d"), crystal, g, params, centre, labels)
    _graph_panel(fig.add_subplot(2, 2, 3), g, centre, labels)
    _star_panel(fig.add_subplot(2, 2, 4), crystal, g, centre, labels)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _cell_panel(ax, crystal: Crystal, centre: int, handles: list) -> None:
    """(a) the atoms of the cell in 3D, the centre atom ringed."""
    cart = crystal.cart_coords
    _cell_edges(ax, crystal.lattice)
    sizes = np.where(crystal.numbers == crystal.numbers.max(), 140, 60)
    ax.scatter(*cart.T, c=[element_color(z) for z in crystal.numbers], s=sizes, edgecolors="k",
               linewidths=0.4, depthshade=False)
    ax.scatter(*cart[centre], s=320, facecolors="none", edgecolors=PALETTE[1], linewidths=1.8)
    corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=float)
    corners = corners @ crystal.lattice
    _equal_3d(ax, np.vstack([cart, corners]))
    ax.set_title(f"(a) {len(crystal)} atoms of the unit cell")
    ax.legend(handles=handles, loc="upper left", fontsize=8)



def _surroundings_panel(ax, crystal: Crystal, g, params: GraphParams, centre: int, labels: list[str]) -> None:
    """(b) the surroundings of the centre atom: every atom image within cutoff + 1.5 Å, graph edges bold."""
    cart = crystal.cart_coords
    radius = params.cutoff + 1.5
    span = np.ceil(radius / np.min(np.linalg.norm(crystal.lattice, axis=1))).astype(int) + 1
    rng = np.arange(-span, span + 1)
    shifts = np.array(np.meshgrid(rng, rng, rng, indexing="ij")).reshape(3, -1).T
    pos = (crystal.frac_coords[None, :, :] + shifts[:, None, :]).reshape(-1, 3) @ crystal.lattice
    zs = np.tile(crystal.numbers, len(shifts))
    near = np.linalg.norm(pos - cart[centre], axis=1) <= radius
    ax.scatter(*pos[near].T, c=[element_color(z) for z in zs[near]], s=25, alpha=0.25, depthshade=False)
    src, dist = g.neighbors(centre)
    sel = g.edge_dst == centre
    nb_pos = (crystal.frac_coords[g.edge_src[sel]] + g.images[sel]) @ crystal.lattice
    for p in nb_pos:
        ax.plot(*np.array([cart[centre], p]).T, color="0.25", lw=1.6)
    ax.scatter(*nb_pos.T, c=[element_color(z) for z in crystal.numbers[src]], s=70, edgecolors="k",
               linewidths=0.5, depthshade=False)
    ax.scatter(*cart[centre], c=[element_color(crystal.numbers[centre])], s=200, edgecolors=PALETTE[1],
               linewidths=1.8, depthshade=False)
    _equal_3d(ax, pos[near])
    ax.set_title(f"(b) around {labels[centre]}: {len(src)} neighbours within {params.cutoff:g} Å "
                 f"(k = {params.max_neighbors})" if params.builder == "cgcnn" else
                 f"(b) around {labels[centre]}: {len(src)} neighbours within {params.cutoff:g} Å")



def _graph_panel(ax, g, centre: int, labels: list[str]) -> None:
    """(c) the whole crystal graph (edges to periodic images merged; width = how many)."""
    G = nx.Graph()
    G.add_nodes_from(range(g.n_atoms))
    mult = Counter(tuple(sorted(e)) for e in zip(g.edge_src.tolist(), g.edge_dst.tolist(), strict=True)
                   if e[0] != e[1])
    for (a, b), m in mult.items():
        G.add_edge(a, b, weight=m)
    layout = nx.kamada_kawai_layout(G) if G.number_of_edges() else nx.circular_layout(G)
    widths = [0.6 + 0.6 * G[a][b]["weight"] for a, b in G.edges]
    edge_colors = [PALETTE[1] if centre in (a, b) else "0.55" for a, b in G.edges]
    nx.draw_networkx_edges(G, layout, ax=ax, width=widths, edge_color=edge_colors, alpha=0.8)
    nx.draw_networkx_nodes(G, layout, ax=ax, node_color=[element_color(z) for z in g.numbers],
                           node_size=[420 if z == g.numbers.max() else 260 for z in g.numbers],
                           edgecolors=["k" if i != centre else PALETTE[1] for i in range(g.n_atoms)],
                           linewidths=[0.6 if i != centre else 2.0 for i in range(g.n_atoms)])
    nx.draw_networkx_labels(G, layout, ax=ax, labels=dict(enumerate(labels)), font_size=7)
    ax.set_title(f"(c) the crystal graph: {g.n_atoms} nodes, {g.n_edges} directed edges")
    ax.axis("off")
    corner_text(ax, "edge width: number of\nperiodic images joined")



def _star_panel(ax, crystal: Crystal, g, centre: int, labels: list[str]) -> None:
    """(d) the centre atom's edges alone, labelled with their lengths."""
    src, dist = g.neighbors(centre)
    S = nx.DiGraph()
    S.add_node("c")
    angles = np.linspace(0, 2 * np.pi, max(len(src), 1), endpoint=False) + np.pi / 2
    star = {"c": np.zeros(2)}
    for e, (d, ang) in enumerate(zip(dist.tolist(), angles, strict=True)):
        S.add_edge(e, "c", d=d)
        star[e] = np.array([np.cos(ang), np.sin(ang)])
    nx.draw_networkx_edges(S, star, ax=ax, edge_color="0.3", width=1.4, arrows=True, arrowsize=12,
                           node_size=[700 if n == "c" else 450 for n in S.nodes])
    nx.draw_networkx_nodes(S, star, ax=ax, nodelist=["c"], node_color=[element_color(g.numbers[centre])],
                           node_size=700, edgecolors=PALETTE[1], linewidths=2.0)
    nb_nodes = [n for n in S.nodes if n != "c"]
    nx.draw_networkx_nodes(S, star, ax=ax, nodelist=nb_nodes, node_size=450, edgecolors="k", linewidths=0.5,
                           node_color=[element_color(crystal.numbers[src[n]]) for n in nb_nodes])
    nx.draw_networkx_labels(S, star, ax=ax, font_size=7,
                            labels={"c": labels[centre], **{n: labels[src[n]] for n in nb_nodes}})
    nx.draw_networkx_edge_labels(S, star, ax=ax, font_size=7, label_pos=0.45,
                                 edge_labels={(n, "c"): f"{S[n]['c']['d']:.2f} Å" for n in nb_nodes})
    ax.set_xlim(-1.35, 1.35)
    ax.set_ylim(-1.35, 1.35)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(f"(d) the edges into {labels[centre]} (messages j → i)")


MARKERS = ("o", "s", "^", "D", "v", "P", "X")
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1)), (0, (1, 1)), (0, (3, 1, 1, 1, 1, 1)))


def _degree_panel(ax, curves: list[tuple[float, np.ndarray]], styles: dict[float, dict]) -> None:
    """Share of atoms per neighbour count, one line per cutoff, each visible even where two coincide:
    a marker and line style of its own and a small sideways shift per cutoff (few distinct counts), or
    steps in distinct styles (many). Cutoffs whose distributions are the same are named in the corner."""
    values = np.unique(np.concatenate([d for _, d in curves])) if curves else np.array([])
    dodge = len(values) <= 30
    width = 0.6 / max(len(curves), 1)
    for i, (cutoff, deg) in enumerate(curves):
        hi = max(int(deg.max()) if len(deg) else 1, 1)
        share = np.bincount(deg.astype(int), minlength=hi + 1) / max(len(deg), 1)
        x = np.arange(hi + 1)
        style = {**styles[cutoff], "label": f"{cutoff:g} Å"}
        if dodge:
            keep = share > 0
            shift = (i - (len(curves) - 1) / 2) * width
            ax.plot(x[keep] + shift, share[keep], ms=5, lw=1.3, **style)
        else:
            style.pop("marker")
            style.pop("mfc")
            ax.step(x, share, where="mid", lw=1.0, **style)
    same: list[list[float]] = []
    for cutoff, deg in curves:
        for group in same:
            if np.array_equal(np.sort(deg), np.sort(dict(curves)[group[0]])):
                group.append(cutoff)
                break
        else:
            same.append([cutoff])
    dup = [g for g in same if len(g) > 1]
    if dup:
        corner_text(ax, "\n".join(", ".join(f"{c:g}" for c in g) + " Å: the same" for g in dup))
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("neighbours per atom")


def degree_histograms(table: pd.DataFrame, degrees: dict[str, np.ndarray], profile: str | None = None
                      ) -> Figure:
    """Distribution of neighbours per atom: one panel per CGCNN k (a line per cutoff), one for MEGNet.

    Every cutoff's line stays visible where two coincide (k caps the count, so larger cutoffs often give
    the same graph): own marker, style and a small sideways shift, and the panel names the cutoffs that
    give the same distribution. ``profile``: the sample's (its smoke banner, :func:`lib.plots.stamp`).
    """
    use_style()
    cg = table[table.builder == "cgcnn"]
    ks = sorted(cg.k.dropna().astype(int).unique())
    has_megnet = bool((table.builder == "megnet").any())
    n = len(ks) + int(has_megnet)
    fig, axes = plt.subplots(1, n, figsize=(3.8 * n, 3.4), squeeze=False)
    axes = axes[0]
    cutoffs = sorted(table.cutoff.unique())
    styles = {c: {"color": PALETTE[i % len(PALETTE)], "ls": LINESTYLES[i % len(LINESTYLES)],
                  "marker": MARKERS[i % len(MARKERS)], "mfc": "white" if i % 2 else PALETTE[i % len(PALETTE)]}
              for i, c in enumerate(cutoffs)}  # one look per cutoff, the same in every panel
    for ax, k in zip(axes, ks, strict=False):  # the last panel may be MEGNet's
        rows = cg[cg.k == k].sort_values("cutoff")
        curves = [(r.cutoff, degrees[GraphParams("cgcnn", r.cutoff, int(k)).tag]) for r in rows.itertuples()]
        _degree_panel(ax, curves, styles)
        ax.axvline(k, color="0.3", ls=":", lw=1)
        ax.set_title(f"CGCNN, k = {k}")
    if has_megnet:
        rows = table[table.builder == "megnet"].sort_values("cutoff")
        curves = [(r.cutoff, degrees[GraphParams("megnet", r.cutoff).tag]) for r in rows.itertuples()]
        _degree_panel(axes[-1], curves, styles)
        axes[-1].set_title("MEGNet, all within the cutoff")
    axes[0].set_ylabel("share of atoms")
    handles = [Line2D([], [], label=f"{c:g} Å", lw=1.3, ms=5, **st) for c, st in styles.items()]
    n_st = int(table.n_structures.max())
    fig.suptitle(f"How many neighbours each atom gets ({n_st:,} structures)", y=1.02)
    fig.tight_layout()
    fig.legend(handles=handles, title="cutoff", loc="upper center", bbox_to_anchor=(0.5, 0.0),
               ncols=len(handles), fontsize=9, title_fontsize=9)  # below the panels: it hides no line
    stamp(fig, profile)
    return fig


def sweep_summary(table: pd.DataFrame, profile: str | None = None) -> Figure:
    """Three panels against the cutoff: % atoms with fewer than k neighbours, % structures with an
    isolated atom, and the neighbour-composition similarity of atoms within a crystal. ``profile``: the
    sample's (its smoke banner)."""
    use_style()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    cg = table[table.builder == "cgcnn"]
    mg = table[table.builder == "megnet"].sort_values("cutoff")
    markers = ["o", "s", "^", "D", "v"]
    for i, k in enumerate(sorted(cg.k.dropna().astype(int).unique())):
        sub = cg[cg.k == k].sort_values("cutoff")
        # nested marker sizes: where the k's coincide (0 % from 5 Å on) every marker still shows
        style = dict(marker=markers[i % 5], ms=max(10 - 2.5 * i, 3), color=PALETTE[i % len(PALETTE)],
                     label=f"CGCNN k = {k}", zorder=2 + i)
        axes[0].plot(sub.cutoff, sub.pct_atoms_fewer_than_k, **style)
        axes[2].plot(sub.cutoff, sub.env_similarity, **style)
    iso = cg.groupby("cutoff").pct_structures_isolated.first()
    axes[1].plot(iso.index, iso.values, marker="o", color=PALETTE[0], label="CGCNN (any k)")
    if len(mg):
        mstyle = dict(marker="*", ms=10, color="k", ls="--", label="MEGNet (all within)")
        axes[1].plot(mg.cutoff, mg.pct_structures_isolated, **mstyle)
        axes[2].plot(mg.cutoff, mg.env_similarity, **mstyle)
    axes[0].set_ylabel("% of atoms")
    axes[0].set_title("atoms with fewer than k neighbours")
    axes[1].set_ylabel("% of structures")
    axes[1].set_title("structures with an isolated atom")
    axes[2].set_ylabel("mean cosine similarity")
    axes[2].set_title("neighbour composition alike within a crystal")
    axes[2].set_ylim(0, 1.02)
    for ax in axes:
        ax.set_xlabel("cutoff (Å)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    stamp(fig, profile)
    return fig
