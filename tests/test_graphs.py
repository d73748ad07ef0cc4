"""lib.graphs and lib.elements: neighbour counts that are known exactly, batching, caching, invariances."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

import lib.paths
from lib.elements import ATOM_FEATURE_SPEC, N_ATOM_FEATURES, atom_feature_table, element_properties, feature_slices
from lib.graphs import (
    GaussianExpansion,
    GraphParams,
    GraphSet,
    build_graph,
    build_graphs,
    cgcnn_gaussian,
    cgcnn_params,
    collate,
    megnet_gaussian,
    megnet_params,
)
from lib.structures import Crystal

A_NACL = 5.64


def nacl(primitive: bool = False) -> Crystal:
    s = Structure.from_spacegroup("Fm-3m", Lattice.cubic(A_NACL), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    if primitive:
        s = s.get_primitive_structure()
    return Crystal.from_structure(s)


def fe_bcc_primitive(a: float = 2.87) -> Crystal:
    s = Structure(Lattice.cubic(a), ["Fe", "Fe"], [[0, 0, 0], [0.5, 0.5, 0.5]]).get_primitive_structure()
    assert len(s) == 1
    return Crystal.from_structure(s)


def random_crystal(seed: int = 0, n: int = 5) -> Crystal:
    """A low-symmetry triclinic cell with atoms at random positions (no ties by accident)."""
    rng = np.random.default_rng(seed)
    lat = Lattice.from_parameters(4.1, 4.7, 5.3, 81.0, 97.0, 103.0)
    return Crystal(lat.matrix, rng.random((n, 3)), rng.choice([3, 8, 25, 27], size=n))


def per_atom(g, numbers=None):
    """{centre: sorted list of (neighbour Z, rounded distance)}."""
    out = {}
    for i in range(g.n_atoms):
        src, d = g.neighbors(i)
        out[i] = sorted(zip(g.numbers[src].tolist(), np.round(d.astype(float), 4).tolist()))
    return out


# ----------------------------------------------------------------------------------------------
# rocksalt NaCl: 6 Cl at a/2, 12 Na at a/sqrt(2)


@pytest.mark.parametrize("primitive", [False, True])
def test_nacl_megnet_first_two_shells(primitive):
    c = nacl(primitive)
    g = build_graph(c, megnet_params(A_NACL / math.sqrt(2) + 0.01))
    half, diag = round(A_NACL / 2, 4), round(A_NACL / math.sqrt(2), 4)
    for i in range(g.n_atoms):
        src, d = g.neighbors(i)
        assert len(src) == 18
        if g.numbers[i] == 11:
            assert Counter(zip(g.numbers[src].tolist(), np.round(d.astype(float), 4).tolist())) == {(17, half): 6, (11, diag): 12}
    # a cutoff just below a/sqrt(2) keeps only the 6 counter-ions
    g2 = build_graph(c, megnet_params(A_NACL / math.sqrt(2) - 0.01))
    assert np.all(g2.degree() == 6)


def test_nacl_cgcnn_k6_k8_ties():
    c = nacl()
    half = A_NACL / 2
    g6 = build_graph(c, cgcnn_params(8.0, 6))
    assert np.all(g6.degree() == 6)
    assert np.allclose(g6.distance, half, atol=1e-5)
    assert np.all(g6.numbers[g6.edge_src] != g6.numbers[g6.edge_dst])  # Na-Cl only
    g8 = build_graph(c, cgcnn_params(8.0, 8, include_ties=True))
    assert np.all(g8.degree() == 18)  # 6 + the 12 tied at a/sqrt(2)
    g8n = build_graph(c, cgcnn_params(8.0, 8, include_ties=False))
    assert np.all(g8n.degree() == 8)
    for i in range(g8n.n_atoms):
        _, d = g8n.neighbors(i)
        assert np.allclose(d[:6], half, atol=1e-5) and np.allclose(d[6:], A_NACL / math.sqrt(2), atol=1e-5)


def test_k_nearest_order_and_cutoff_across_images():
    # one atom in an orthorhombic 2 x 3 x 4 Å cell: every neighbour is a periodic image of itself
    c = Crystal(np.diag([2.0, 3.0, 4.0]), [[0.1, 0.2, 0.3]], [26])
    g = build_graph(c, cgcnn_params(8.0, 3, include_ties=True))
    assert np.allclose(g.distance, [2, 2, 3, 3], atol=1e-6)  # 2 at 2 Å, then the tied pair at 3 Å
    assert np.all(g.edge_src == 0) and np.all(g.edge_dst == 0)
    g = build_graph(c, cgcnn_params(8.0, 3, include_ties=False))
    assert np.allclose(g.distance, [2, 2, 3], atol=1e-6)
    # the cutoff wins over k: within 3.5 Å there are only 4 neighbours
    g = build_graph(c, cgcnn_params(3.5, 12))
    assert np.allclose(g.distance, [2, 2, 3, 3], atol=1e-6)
    g = build_graph(c, megnet_params(3.7))
    assert np.allclose(np.sort(g.distance), [2, 2, 3, 3] + [math.sqrt(13)] * 4, atol=1e-5)  # +-a+-b
    # nearest first within each centre, on a low-symmetry crystal
    g = build_graph(random_crystal(1, 6), cgcnn_params(8.0, 12))
    for i in range(g.n_atoms):
        _, d = g.neighbors(i)
        assert len(d) == 12 and np.all(np.diff(d) >= 0)


def test_one_atom_cell_has_edges_to_its_own_images():
    a = 2.87
    g = build_graph(fe_bcc_primitive(a), cgcnn_params(8.0, 8))
    assert g.n_atoms == 1 and g.n_edges == 8
    assert np.all(g.edge_src == 0) and np.all(g.edge_dst == 0)
    assert np.allclose(g.distance, a * math.sqrt(3) / 2, atol=1e-5)
    # the next shell (6 at a) comes in with k = 14, not before
    assert build_graph(fe_bcc_primitive(a), cgcnn_params(8.0, 9)).n_edges == 14


def test_matches_pymatgen_neighbor_list():
    c = random_crystal(2, 7)
    r = 4.5
    g = build_graph(c, megnet_params(r))
    ctr, nbr, _, d = c.to_structure().get_neighbor_list(r)
    theirs = Counter(zip(ctr.tolist(), nbr.tolist(), np.round(d, 5).tolist()))
    ours = Counter(zip(g.edge_dst.tolist(), g.edge_src.tolist(), np.round(g.distance.astype(float), 5).tolist()))
    assert ours == theirs and g.n_edges == len(ctr) > 0
    assert np.all(np.diff(g.edge_dst) >= 0)  # grouped by the receiving centre atom
    for i in range(g.n_atoms):
        assert np.all(np.diff(g.neighbors(i)[1]) >= 0)  # nearest first


# ----------------------------------------------------------------------------------------------
# invariances


def _distance_multisets(g) -> Counter:
    return Counter(tuple(np.round(np.sort(g.neighbors(i)[1]).astype(float), 4).tolist()) for i in range(g.n_atoms))


@pytest.mark.parametrize("params", [cgcnn_params(8.0, 8), cgcnn_params(6.0, 12), megnet_params(4.0)])
def test_supercell_and_atom_order_invariance(params):
    s = Structure.from_spacegroup("Fm-3m", Lattice.cubic(3.61), ["Cu"], [[0, 0, 0]])  # fcc: 12 tied at k=8
    for crystal in (Crystal.from_structure(s), random_crystal(3, 5)):
        g = build_graph(crystal, params)
        base = _distance_multisets(g)
        sup = crystal.to_structure().make_supercell([2, 1, 2], in_place=False)
        gs = build_graph(Crystal.from_structure(sup), params)
        assert _distance_multisets(gs) == Counter({k: 4 * v for k, v in base.items()})
        perm = np.random.default_rng(0).permutation(len(crystal))
        gp = build_graph(Crystal(crystal.lattice, crystal.frac_coords[perm], crystal.numbers[perm]), params)
        assert _distance_multisets(gp) == base
    fcc = build_graph(Crystal.from_structure(s), cgcnn_params(8.0, 8))
    assert np.all(fcc.degree() == 12)  # the whole first shell, not an arbitrary 8 of it


# ----------------------------------------------------------------------------------------------
# Gaussian expansion


def test_gaussian_expansion_hand_values():
    g = GaussianExpansion(0.0, 1.0, n=3, width=0.5)  # centres 0, 0.5, 1
    out = g(torch.tensor([0.25, 1.0]))
    expect = [[math.exp(-0.25), math.exp(-0.25), math.exp(-2.25)], [math.exp(-4.0), math.exp(-1.0), 1.0]]
    assert out.shape == (2, 3)
    assert torch.allclose(out, torch.tensor(expect), atol=1e-6)

    cg = cgcnn_gaussian(8.0, 0.2)
    assert cg.n_features == 41 and cg.width == pytest.approx(0.2)
    assert torch.allclose(cg.centers[[0, 5, 40]], torch.tensor([0.0, 1.0, 8.0]))
    row = cg(torch.tensor([1.0]))[0]
    assert row[5].item() == pytest.approx(1.0)
    assert row[4].item() == pytest.approx(math.exp(-1.0), rel=1e-5)  # (0.2 / 0.2)^2 = 1
    assert row[3].item() == pytest.approx(math.exp(-4.0), rel=1e-4)

    mg = megnet_gaussian(4.0)
    assert mg.n_features == 100 and mg.centers[-1].item() == pytest.approx(5.0)
    assert mg(torch.tensor([0.0]))[0, 1].item() == pytest.approx(math.exp(-((5 / 99) ** 2) / 0.25), rel=1e-5)
    with pytest.raises(ValueError):
        GaussianExpansion(0.0, 1.0, n=3, step=0.5, width=0.5)


# ----------------------------------------------------------------------------------------------
# GraphSet, batches, cache


def small_set() -> list[Crystal]:
    return [nacl(), fe_bcc_primitive(), random_crystal(4, 3), nacl(primitive=True), random_crystal(5, 6)]


def test_batch_offsets_map_every_edge_into_its_crystal(tmp_path):
    crystals = small_set()
    p = cgcnn_params(8.0, 8)
    gs = build_graphs(crystals, p, ids=[f"x-{i}" for i in range(5)], cache=False, n_jobs=1, progress=False)
    singles = [build_graph(c, p) for c in crystals]
    order = np.array([4, 0, 2, 1])
    b = gs.batch(order)
    assert b.n_crystals == 4 and b.numbers.dtype == torch.int64 and b.edge_src.dtype == torch.int64
    assert torch.equal(b.crystal[b.edge_src], b.crystal[b.edge_dst])
    assert torch.bincount(b.crystal[b.edge_dst], minlength=4).tolist() == [singles[i].n_edges for i in order]
    assert torch.bincount(b.crystal, minlength=4).tolist() == [singles[i].n_atoms for i in order]
    ref = collate([singles[i] for i in order])
    for f in ("numbers", "edge_src", "edge_dst", "distance", "crystal"):
        assert torch.equal(getattr(b, f), getattr(ref, f)), f
    # the same graphs in parallel workers
    gs2 = build_graphs(crystals, p, cache=False, n_jobs=2, progress=False)
    assert np.array_equal(gs2.edge_src, gs.edge_src) and np.array_equal(gs2.distance, gs.distance)
    sub = gs.subset([3, 1])
    assert sub.material_ids.tolist() == ["x-3", "x-1"] and sub.source_index.tolist() == [3, 1]
    assert sub[0].n_edges == singles[3].n_edges


def test_cache_round_trip_and_parameter_change(tmp_path, monkeypatch):
    monkeypatch.setattr(lib.paths, "DATA", tmp_path)
    crystals = small_set()
    p8 = cgcnn_params(8.0, 8)
    a = build_graphs(crystals, p8, name="t", n_jobs=1, progress=False)
    files = sorted((tmp_path / "graphs").glob("*.npz"))
    assert len(files) == 1 and files[0].name.startswith("t-cgcnn-r8-k8-")
    b = build_graphs(crystals, p8, name="t", n_jobs=1, progress=False)
    assert b.report["loaded_from"] == str(files[0])
    for f in ("numbers", "atom_ptr", "edge_src", "edge_dst", "distance", "edge_ptr", "source_index"):
        assert np.array_equal(getattr(a, f), getattr(b, f)), f
        assert getattr(a, f).dtype == getattr(b, f).dtype, f
    assert b.material_ids.tolist() == a.material_ids.tolist() and b.params == p8
    # another parameter: a new cache, never the old one
    c = build_graphs(crystals, cgcnn_params(8.0, 6), name="t", n_jobs=1, progress=False)
    assert "loaded_from" not in c.report and len(list((tmp_path / "graphs").glob("*.npz"))) == 2
    assert c.n_edges.sum() < a.n_edges.sum()
    d = build_graphs(crystals, cgcnn_params(8.0, 8, include_ties=False), name="t", n_jobs=1, progress=False)
    assert "loaded_from" not in d.report
    # other data with the same ids: a new cache too
    moved = [crystals[0], fe_bcc_primitive(2.90), *crystals[2:]]
    e = build_graphs(moved, p8, name="t", n_jobs=1, progress=False)
    assert "loaded_from" not in e.report and not np.array_equal(e.distance, a.distance)
    assert len(list((tmp_path / "graphs").glob("*.npz"))) == 4
    # GraphSet.save / load directly
    path = a.save(tmp_path / "x.npz")
    assert np.array_equal(GraphSet.load(path).edge_dst, a.edge_dst)


def test_dataframe_input_uses_content_hash_and_ids(tmp_path):
    pd = pytest.importorskip("pandas")
    crystals = small_set()
    df = pd.DataFrame({"material_id": [f"mp-{i}" for i in range(5)], "structure": crystals})
    df.attrs["content_hash"] = "abc"
    gs = build_graphs(df, megnet_params(5.0), cache_dir=tmp_path, n_jobs=1, progress=False)
    assert gs.material_ids.tolist() == [f"mp-{i}" for i in range(5)]
    sub = df.iloc[[0, 2]].copy()  # keeps attrs["content_hash"] but not the ids: must not hit the cache
    gsub = build_graphs(sub, megnet_params(5.0), cache_dir=tmp_path, n_jobs=1, progress=False)
    assert "loaded_from" not in gsub.report and len(gsub) == 2


def test_isolated_atoms_drop_keep_error(tmp_path):
    lonely = Crystal(np.eye(3) * 6.0, [[0, 0, 0]], [55])  # nearest image 6 Å away
    crystals = [nacl(), lonely, fe_bcc_primitive()]
    ids = ["mp-nacl", "mp-lonely", "mp-fe"]
    p = megnet_params(4.0)
    dropped = build_graphs(crystals, p, ids=ids, cache=False, n_jobs=1, progress=False)
    assert dropped.material_ids.tolist() == ["mp-nacl", "mp-fe"] and dropped.source_index.tolist() == [0, 2]
    assert dropped.report["dropped_ids"] == ["mp-lonely"] and dropped.report["n_structures_in"] == 3
    kept = build_graphs(crystals, p, ids=ids, cache=False, n_jobs=1, progress=False, on_isolated="keep")
    assert len(kept) == 3 and kept.report["isolated_ids"] == ["mp-lonely"] and kept.report["isolated_atoms"] == 1
    assert kept[1].n_edges == 0
    with pytest.raises(ValueError, match="mp-lonely.*raise the cutoff"):
        build_graphs(crystals, p, ids=ids, cache=False, n_jobs=1, progress=False, on_isolated="error")
    # the remedy works: at 6.5 Å the caesium sees its 6 images
    ok = build_graphs(crystals, megnet_params(6.5), ids=ids, cache=False, n_jobs=1, progress=False)
    assert len(ok) == 3 and ok[1].n_edges == 6


def test_report_counts_atoms_with_fewer_than_k():
    # NaCl within 3 Å has 6 neighbours per atom: k = 8 leaves all 8 atoms short, with no padding
    gs = build_graphs([nacl(), fe_bcc_primitive()], cgcnn_params(3.0, 8), cache=False, n_jobs=1, progress=False)
    assert gs.report["atoms_fewer_than_k"] == 8 and gs.report["structures_fewer_than_k"] == 1
    assert gs.n_edges.tolist() == [48, 8]


def test_graph_params_round_trip():
    p = cgcnn_params()
    assert (p.builder, p.cutoff, p.max_neighbors, p.include_ties) == ("cgcnn", 8.0, 8, True)
    assert GraphParams.from_dict(p.as_dict()) == p and hash(p) == hash(cgcnn_params(8, 8))
    assert megnet_params() == GraphParams("megnet", 4.0, None)
    with pytest.raises(ValueError):
        GraphParams("megnet", 4.0, 12)
    with pytest.raises(ValueError):
        GraphParams("cgcnn", 8.0, None)
    with pytest.raises(ValueError):
        GraphParams("schnet", 5.0)


# ----------------------------------------------------------------------------------------------
# atom features


def test_atom_feature_table_layout_and_spot_checks():
    t = atom_feature_table()
    assert t.shape == (101, 92) and t.dtype == np.float32 and N_ATOM_FEATURES == 92
    assert [s.n for s in ATOM_FEATURE_SPEC] == [19, 7, 10, 10, 12, 10, 10, 4, 10]
    assert not t[0].any()
    sl = feature_slices()
    for name, s in sl.items():
        assert t[:, s].sum(axis=1).max() == 1, name  # one-hot: at most one slot per property
    for z in range(1, 101):
        props = element_properties(z)
        have = sum(v is not None and not (isinstance(v, float) and math.isnan(v)) for v in props.values())
        assert t[z].sum() == have, z
    # oxygen, exactly as in the reference atom_init.json: group 16, period 2, 6 valence electrons, p block
    assert np.flatnonzero(t[8]).tolist() == [16, 20, 34, 37, 51, 64, 74, 79, 86]
    assert t[8, sl["group"]].argmax() == 16 and t[8, sl["period"]].argmax() == 1
    assert t[26, sl["group"]].argmax() == 8 and t[26, sl["block"]].argmax() == 2  # Fe: group 8, d
    assert t[57, sl["group"]].argmax() == 0 and t[57, sl["block"]].argmax() == 3  # La: no group, f
    assert t[2].sum() == 8  # He: no electronegativity


def test_images_give_the_edge_vectors():
    c = random_crystal(6, 4)
    g = build_graph(c, cgcnn_params(8.0, 6), images=True)
    vec = (c.frac_coords[g.edge_src] + g.images - c.frac_coords[g.edge_dst]) @ c.lattice
    assert np.allclose(np.linalg.norm(vec, axis=1), g.distance, atol=1e-5)


def test_environment_similarity_nacl_by_hand():
    from lib.graphs import environment_similarity

    # 4 Na + 4 Cl. Within 3 Å each ion sees only the other kind: like pairs score 1, unlike 0 -> 24/56.
    # Within 4 Å Na sees (12 Na, 6 Cl) and Cl (6 Na, 12 Cl): unlike pairs score 144/180 = 0.8 -> 31/35.
    sims = [environment_similarity(build_graphs([nacl()], megnet_params(r), cache=False, n_jobs=1,
                                                progress=False))[0] for r in (3.0, 4.0)]
    assert sims == pytest.approx([3 / 7, 31 / 35], abs=1e-9)
