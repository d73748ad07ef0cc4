"""XGNN: periodic labels, the classifier's inputs, the generator's rules, and that its training works."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lib import periodic, xgnn
from lib.graphs import GraphBatch, GraphSet, cgcnn_params
from lib.xgnn import XGNN, GraphState, XGNNConfig, graph_problems, step

GROUP17 = 16  # label index of group 17


class CountClassifier(nn.Module):
    """Toy classifier: log p(class 1) rises with the number of atoms of one label (default group 17)."""

    def __init__(self, label: int = GROUP17, scale: float = 1.5, offset: float = 1.5) -> None:
        super().__init__()
        self.label, self.scale, self.offset = label, scale, offset

    def forward(self, batch: GraphBatch) -> torch.Tensor:
        hit = (batch.numbers == self.label).float()
        count = torch.zeros(batch.n_crystals).index_add_(0, batch.crystal, hit)
        logit = self.scale * (count - self.offset)
        return F.log_softmax(torch.stack([torch.zeros_like(logit), logit], 1), 1)


def _all_problems(state: GraphState, cfg: XGNNConfig) -> list[str]:
    out = []
    for lab, edges in state.graphs():
        out += graph_problems(lab, edges, cfg.max_atoms, cfg.max_degree)
    return out


# ------------------------------------------------------------------------------------- lib.periodic


def test_known_groups_and_periods():
    for sym, z, g, p in [("O", 8, 16, 2), ("Fe", 26, 8, 4), ("Li", 3, 1, 2), ("Cl", 17, 17, 3),
                         ("H", 1, 1, 1), ("Cs", 55, 1, 6), ("Ne", 10, 18, 2)]:
        assert (periodic.group(z), periodic.period(z)) == (g, p), sym
    # lanthanides and actinides: group 3, periods 6 and 7
    assert [periodic.group(z) for z in (57, 58, 71, 89, 92)] == [3, 3, 3, 3, 3]
    assert [periodic.period(z) for z in (57, 58, 71, 89, 92)] == [6, 6, 6, 7, 7]
    assert periodic.to_label_index([8, 26, 3, 17], "group").tolist() == [15, 7, 0, 16]
    assert periodic.to_label_index([8, 26, 3, 17], "period").tolist() == [1, 3, 1, 2]
    assert periodic.n_labels("group") == 18 and periodic.n_labels("period") == 7
    # every element 1..118 has a label in range
    assert set(periodic.label_numbers("group")[1:]) == set(range(1, 19))
    assert set(periodic.label_numbers("period")[1:]) == set(range(1, 8))
    with pytest.raises(ValueError, match="labelling"):
        periodic.n_labels("block")
    with pytest.raises(ValueError, match="outside"):
        periodic.to_label_index([0, 8], "group")


# ------------------------------------------------------------------------------- classifier inputs


def _toy_graphset() -> GraphSet:
    # crystal "a": Li O (2 atoms, 3 edges); crystal "b": Fe Cl Cl (3 atoms, 2 edges)
    numbers = [3, 8, 26, 17, 17]
    return GraphSet(["a", "b"], cgcnn_params(), numbers, [0, 2, 5], [1, 0, 0, 1, 2], [0, 1, 1, 0, 0],
                    [2.0, 2.0, 2.1, 2.2, 2.3], [0, 3, 5])


def test_labelled_graphs_map_numbers_to_labels():
    gs = _toy_graphset()
    before = gs.numbers.copy()
    lg = xgnn.LabelledGraphs(gs, "group")
    b = lg.batch([1, 0])
    assert b.numbers.tolist() == [7, 16, 16, 0, 15]  # Fe Cl Cl | Li O as group - 1
    assert b.crystal.tolist() == [0, 0, 0, 1, 1]
    ref = gs.batch([1, 0])
    assert torch.equal(b.edge_src, ref.edge_src) and torch.equal(b.edge_dst, ref.edge_dst)
    assert xgnn.LabelledGraphs(gs, "period").batch([0, 1]).numbers.tolist() == [1, 1, 3, 2, 2]
    assert np.array_equal(gs.numbers, before)  # the graph set itself is untouched
    assert len(lg) == 2 and lg.params == gs.params and list(lg.material_ids) == ["a", "b"]
    bad = GraphSet(["x"], cgcnn_params(), [0], [0, 1], [0], [0], [1.0], [0, 1])
    with pytest.raises(ValueError, match="x has atomic number 0"):
        xgnn.LabelledGraphs(bad, "group")


def test_classifier_reads_labels_and_ignores_distances():
    torch.manual_seed(0)
    model = xgnn.make_classifier("group", atom_fea_len=8, h_fea_len=8).eval()
    assert model.atom_features.shape == (18, 18) and model.edge_fea_len == 1
    b = xgnn.LabelledGraphs(_toy_graphset(), "group").batch([0, 1])
    out = model(b)
    assert out.shape == (2, 2) and torch.allclose(out.exp().sum(1), torch.ones(2))
    moved = GraphBatch(b.numbers, b.edge_src, b.edge_dst, b.distance * 3 + 1, b.crystal, b.n_crystals)
    assert torch.allclose(model(moved), out)


def test_discretise_at_training_median():
    values = np.array([0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 100.0])
    y, thr = xgnn.discretise(values, np.array([0, 1, 3, 4, 5]))
    assert thr == 1.0
    assert y.tolist() == [0, 0, 0, 0, 1, 1, 1]


# ----------------------------------------------------------------------------------- graph rules


def test_graph_problems_detects_every_rule():
    assert graph_problems([0, 1], [(0, 1)]) == []
    assert any("self-loop" in p for p in graph_problems([0, 1], [(0, 1), (1, 1)]))
    assert any("duplicate" in p for p in graph_problems([0, 1], [(0, 1), (1, 0)]))
    assert any("7 atoms" in p for p in graph_problems([0] * 7, [(0, k) for k in range(1, 4)]
                                                      + [(4, 5), (5, 6), (3, 4)]))
    star = [(0, k) for k in range(1, 6)]
    assert any("5 > 4 neighbours" in p for p in graph_problems([0] * 6, star))
    assert any("disconnected" in p for p in graph_problems([0, 1, 2], [(0, 1)]))


def test_step_applies_valid_actions_and_refuses_invalid_ones():
    m, nl = 6, 18
    # graph 0: a 6-atom star around atom 0 with 4 arms + a tail; graph 1: two atoms joined
    lab = torch.full((2, m), -1)
    lab[0] = torch.tensor([0, 1, 2, 3, 4, 5])
    lab[1, :2] = torch.tensor([16, 7])
    adj = torch.zeros(2, m, m, dtype=torch.bool)
    for i, j in [(0, 1), (0, 2), (0, 3), (0, 4), (4, 5)]:
        adj[0, i, j] = adj[0, j, i] = True
    adj[1, 0, 1] = adj[1, 1, 0] = True
    st = GraphState(lab, adj)
    cases = [  # (graph, start, end, valid)
        (0, 0, m + 3, False),  # 7th atom
        (0, 0, 5, False),  # atom 0 already has 4 neighbours
        (0, 1, 1, False),  # self-loop
        (0, 5, 4, False),  # duplicate edge
        (0, 1, 2, True),  # new edge between existing atoms
        (1, 0, 1, False),  # duplicate
        (1, 1, m + 16, True),  # a new group-17 atom bonded to atom 1
    ]
    for g, s, e, ok in cases:
        new, valid = step(st.select(torch.tensor([g])), torch.tensor([s]), torch.tensor([e]), max_degree=4)
        assert bool(valid[0]) is ok, (g, s, e)
        if not ok:
            assert torch.equal(new.labels, st.labels[[g]]) and torch.equal(new.adj, st.adj[[g]])
    new, valid = step(st.select(torch.tensor([1])), torch.tensor([1]), torch.tensor([m + 16]))
    assert new.labels[0].tolist() == [16, 7, 16, -1, -1, -1]
    assert new.graphs() == [([16, 7, 16], [(0, 1), (1, 2)])]
    assert nl == 18


def test_state_batch_has_each_edge_both_ways():
    st = GraphState.single_atoms(torch.tensor([3, 5]), 6)
    st, _ = step(st, torch.tensor([0, 0]), torch.tensor([6 + 1, 6 + 2]))
    st, _ = step(st, torch.tensor([1, 0]), torch.tensor([6 + 4, 6 + 16]))
    b = st.to_batch()
    assert b.n_crystals == 2 and b.numbers.tolist() == [3, 1, 4, 5, 2, 16]
    assert b.crystal.tolist() == [0, 0, 0, 1, 1, 1]
    pairs = sorted(zip(b.edge_src.tolist(), b.edge_dst.tolist(), strict=True))
    assert pairs == sorted([(0, 1), (1, 0), (1, 2), (2, 1), (3, 4), (4, 3), (3, 5), (5, 3)])


def test_batched_classifier_equals_one_graph_at_a_time():
    torch.manual_seed(0)
    model = xgnn.make_classifier("group", atom_fea_len=16, h_fea_len=16).eval()
    gen = XGNN(model, 18, 1, XGNNConfig(max_steps=6), seed=3)
    st, p = gen.sample(40)
    one = torch.cat([gen.probability(st.select(torch.tensor([k]))) for k in range(st.size)])
    assert torch.allclose(p, one, atol=1e-5)


@pytest.mark.parametrize("mask_invalid", [False, True])
def test_generator_never_emits_an_invalid_graph(mask_invalid):
    cfg = XGNNConfig(max_steps=14, n_rollouts=3, batch_episodes=16, mask_invalid=mask_invalid)
    gen = XGNN(CountClassifier(), 18, 0, cfg, seed=1)
    # untrained policy, long episodes: plenty of chances to break the rules
    st, _ = gen.sample(3000)
    assert _all_problems(st, cfg) == []
    assert int(st.n_atoms.max()) == 6 and int(st.degree().max()) == 4  # the limits are reached, not passed
    st, _ = gen.sample(500, rollback=True)
    assert _all_problems(st, cfg) == []
    # rollouts and the training loop's rolled-back states obey the rules too
    ro = gen.rollout(gen.initial(500), 20)
    assert _all_problems(ro, cfg) == []
    gen.train(32, progress=False)
    st, _ = gen.sample(1000)
    assert _all_problems(st, cfg) == []
    res = gen.explain(10, keep_threshold=0.0)
    for e in res["explanations"]:
        assert graph_problems(e["labels"], e["edges"]) == []


def test_training_on_a_toy_classifier_learns_its_rule():
    cfg = XGNNConfig(max_steps=8, n_rollouts=4, batch_episodes=32)
    gen = XGNN(CountClassifier(), 18, 1, cfg, seed=0)

    def share17(g: XGNN) -> float:
        st, _ = g.sample(2000, rollback=False)
        return float((st.labels == GROUP17).sum() / (st.labels >= 0).sum())

    before = share17(gen)
    hist = gen.train(32 * 16, progress=False)
    after = share17(gen)
    r = hist["mean_reward"]
    assert before < 0.12  # about 1/18 for an untrained policy
    assert after > before + 0.4, (before, after)
    assert np.mean(r[-3:]) > np.mean(r[:3]) + 0.4, r
    res = gen.explain(30)
    assert res["kept"] == 30 and res["attempts"] >= 30
    assert all(e["probability"] > 0.8 for e in res["explanations"])
    assert all(sum(x == GROUP17 for x in e["labels"]) >= 3 for e in res["explanations"])  # p > 0.8 needs 3


def test_toy_class0_generator_avoids_group17():
    gen = XGNN(CountClassifier(), 18, 0, XGNNConfig(max_steps=8, n_rollouts=4), seed=0)
    gen.train(32 * 8, progress=False)
    res = gen.explain(30)
    assert res["kept"] == 30
    assert all(sum(x == GROUP17 for x in e["labels"]) <= 1 for e in res["explanations"])


def test_allowed_labels_restrict_new_atoms():
    gen = XGNN(CountClassifier(), 18, 1, XGNNConfig(max_steps=10), allowed_labels=[0, 7], seed=0)
    st, _ = gen.sample(500)
    assert set(st.labels[st.labels >= 0].tolist()) <= {0, 7}


# ------------------------------------------------------------------------------------- counting


def test_canonical_form_is_exact_for_small_graphs():
    a = xgnn.canonical_form([1, 2, 1], [(0, 1), (1, 2)])
    b = xgnn.canonical_form([2, 1, 1], [(1, 0), (0, 2)])
    assert a == b
    assert a != xgnn.canonical_form([1, 1, 2], [(0, 1), (1, 2)])
    # triangular prism vs K3,3: both 3-regular on 6 atoms of one label (WL hashing cannot tell them apart)
    prism = [(0, 1), (1, 2), (2, 0), (3, 4), (4, 5), (5, 3), (0, 3), (1, 4), (2, 5)]
    k33 = [(i, j) for i in range(3) for j in range(3, 6)]
    assert xgnn.canonical_form([0] * 6, prism) != xgnn.canonical_form([0] * 6, k33)


def test_counts_and_enrichment():
    expl = [{"labels": [17, 1, 17], "edges": [[0, 1], [1, 2]]}, {"labels": [8], "edges": []}]
    lab, pairs = xgnn.explanation_counts(expl, 18)
    assert lab[16] == 2 and lab[0] == 1 and lab[7] == 1 and lab.sum() == 4
    assert pairs[16, 0] == 2 and pairs.sum() == 2 and np.triu(pairs, 1).sum() == 0
    lg = xgnn.LabelledGraphs(_toy_graphset(), "group")
    lab, pairs = xgnn.crystal_counts(lg)
    assert lab[[0, 15, 7, 16]].tolist() == [1, 1, 1, 2]
    assert pairs[15, 0] == 3 and pairs[16, 7] == 2 and pairs.sum() == 5
    e = xgnn.enrichment(np.array([3, 1, 0]), np.array([1, 3, 0]), pseudo=0.5)
    assert e[0] == pytest.approx(np.log2(3.5 / 1.5)) and e[1] == pytest.approx(-e[0]) and np.isnan(e[2])


def test_mean_aggregation_ignores_how_many_times_a_neighbour_is_seen():
    # the same neighbours listed twice: the mean classifier's output is unchanged, the sum's is not
    b = xgnn.LabelledGraphs(_toy_graphset(), "group").batch([0, 1])
    twice = GraphBatch(b.numbers, b.edge_src.repeat(2), b.edge_dst.repeat(2), b.distance.repeat(2), b.crystal,
                       b.n_crystals)
    torch.manual_seed(0)
    mean = xgnn.make_classifier("group", atom_fea_len=8, h_fea_len=8).eval()
    assert mean.init_kwargs["aggregate"] == "mean"
    assert torch.allclose(mean(b), mean(twice), atol=1e-6)
    torch.manual_seed(0)
    summ = xgnn.make_classifier("group", atom_fea_len=8, h_fea_len=8, aggregate="sum").eval()
    assert not torch.allclose(summ(b), summ(twice), atol=1e-4)


def _toy_doc(gen1: XGNN, gen0: XGNN) -> dict:
    doc = {"property": "band_gap", "labelling": "group", "profile": "smoke", "seed": 0, "threshold": 0.5,
           "unit": "eV", "label_names": periodic.label_names("group"), "config": XGNNConfig().as_dict(),
           "classifier": {"test_accuracy": 0.9}, "classes": {}}
    for c, g in ((0, gen0), (1, gen1)):
        res = g.explain(12)
        for e in res["explanations"]:
            e["labels"] = [x + 1 for x in e["labels"]]
        doc["classes"][str(c)] = {"name": xgnn.CLASS_NAMES[c], **res, "history": g.history}
    return doc


@pytest.fixture(scope="module")
def toy_explanations():
    """An explanations document of two toy generators and the toy classifier run it explains."""
    gens = [XGNN(CountClassifier(), 18, c, XGNNConfig(max_steps=6, n_rollouts=2), seed=c) for c in (0, 1)]
    for g in gens:
        g.train(64, progress=False)
    doc = _toy_doc(gens[1], gens[0])
    clf = xgnn.ClassifierRun(model=CountClassifier(), property="band_gap", labelling="group", threshold=0.5,
                             graphs=xgnn.LabelledGraphs(_toy_graphset(), "group"),
                             values=np.array([0.0, 1.0]),
                             y=np.array([0, 1]), split={"train": np.array([0, 1]), "val": np.array([0]),
                                                        "test": np.array([1])},
                             labels_seen=np.arange(18), record={"run": "toy"})
    return doc, clf


def test_figures_and_enrichment_from_explanations(tmp_path, toy_explanations):
    import matplotlib

    matplotlib.use("Agg")
    from lib.plots import xgnn as plots

    doc, clf = toy_explanations
    table = xgnn.enrichment_table(doc, clf)
    assert len(table) == 18 + 18 * 19 // 2
    g17 = table[(table["kind"] == "label") & (table["a"] == "17")].iloc[0]
    assert g17["log2_expl"] > 1  # the toy's rule: group 17 makes the high class
    # crystal b (Fe Cl Cl) is high, crystal a (Li O) low: in the data Cl is enriched, O depleted
    assert g17["n_high_data"] == 2 and g17["n_low_data"] == 0 and g17["log2_data"] > 0
    o = table[(table["kind"] == "label") & (table["a"] == "16")].iloc[0]
    assert o["log2_data"] < 0
    agree = xgnn.enrichment_agreement(table, min_count=1)
    assert agree["label"]["n"] >= 1
    for fn, kw in ((plots.xgnn_explanations, {}), (plots.xgnn_graphs, {}), (plots.xgnn_training, {}),
                   (plots.xgnn_enrichment, {"agreement": agree})):
        arg = table if fn is plots.xgnn_enrichment else doc
        path = tmp_path / f"{fn.__name__}.png"
        fig = fn(arg, path=path, **kw)
        assert path.stat().st_size > 10_000
        texts = [t.get_text() for t in fig.findobj(matplotlib.text.Text)]
        assert any("smoke profile" in t and "not a result" in t for t in texts), fn.__name__  # the banner
        assert not any("no graph reached" in t for t in texts), fn.__name__  # both classes have graphs
        matplotlib.pyplot.close(fig)
    # the titles use the property's label, not its column
    assert "Band gap by periodic group" in plots.xgnn_explanations(doc)._suptitle.get_text()
    assert plots.xgnn_enrichment(table)._suptitle.get_text().startswith("Band gap by group")
    # file names: the thesis's figure number, the profile and the seed
    assert xgnn.figure_name("band_gap", "period", "quick", 0) == "fig16_xgnn_band_gap_period_quick_s0.png"
    assert xgnn.figure_name("efermi", "group", "smoke") == "xgnn_efermi_group_smoke.png"
    names = {xgnn.figure_name("band_gap", "group", p, 0) for p in ("smoke", "quick")}
    assert len(names) == 2


def test_an_empty_class_is_said_in_words_not_drawn(tmp_path, toy_explanations):
    """A class whose generator kept no graph: its panels say so; no bars, heatmap or colour bar for it."""
    import copy

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.image import AxesImage
    from matplotlib.patches import Rectangle

    from lib.plots import xgnn as plots

    doc, clf = toy_explanations
    doc = copy.deepcopy(doc)
    doc["profile"] = "quick"
    low = doc["classes"]["0"]
    low.update(explanations=[], kept=0, unique=0, attempts=1234)
    want = "no graph reached p > 0.8\nin 1,234 tries"
    assert plots.empty_note(low, doc) == want

    def texts(ax):
        return " ".join(t.get_text() for t in ax.texts)

    def bars(ax):
        return [p for p in ax.patches if isinstance(p, Rectangle) and p.get_height() != 0]

    fig = plots.xgnn_explanations(doc, path=tmp_path / "expl.png")
    ax_lab, ax_pairs, ax_lab_hi, ax_pairs_hi = fig.axes[:4]
    for ax in (ax_lab, ax_pairs):  # class low
        assert not ax.images and not bars(ax) and not ax.axison
    assert want in texts(ax_lab) and "no explanation" in texts(ax_pairs)
    assert bars(ax_lab_hi) and ax_pairs_hi.images  # class high is drawn
    assert len(fig.axes) == 5  # four panels and one colour bar: class high's
    assert not any("smoke profile" in t.get_text() for t in fig.texts)  # quick: no banner

    fig = plots.xgnn_graphs(doc, path=tmp_path / "graphs.png")
    row_low = fig.axes[:4]
    assert "no graph reached p > 0.8 in 1,234 tries" in texts(row_low[0])
    assert not any(ax.collections for ax in row_low)  # no graph drawn for class low
    assert any(ax.collections for ax in fig.axes[4:])

    fig = plots.xgnn_training(doc, path=tmp_path / "training.png")
    assert "class low: no graph reached p > 0.8 in 1,234 tries" in fig.axes[1].get_title(loc="left")

    table = xgnn.enrichment_table(doc, clf)
    assert table.attrs["explanations"]["low"]["attempts"] == 1234
    fig = plots.xgnn_enrichment(table, agreement=xgnn.enrichment_agreement(table), path=tmp_path / "enr.png")
    ax_bars, ax_scatter, ax_expl, ax_data = fig.axes[:4]
    assert "crystals only: no explanation of class low" in ax_bars.get_title()
    assert [t.get_text() for t in ax_bars.get_legend().get_texts()] == ["crystals (data)"]
    for ax in (ax_scatter, ax_expl):
        assert not ax.images and not ax.collections and not ax.axison
        assert "class low: no graph reached p > 0.8 in 1,234 tries" in texts(ax)
    assert any(isinstance(im, AxesImage) for im in ax_data.images)  # the crystals' side stays
