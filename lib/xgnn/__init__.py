"""XGNN (Yuan, Tang, Hu & Ji, KDD 2020): model-level explanations of a CGCNN classifier, by generating graphs.

Three parts, top to bottom.

**The classifier.** A property is discretised at the median of its training split: a value ≤ the
median is class 0 ("low"), above it class 1 ("high"). A CGCNN with the classification head
(:func:`make_classifier`) reads atoms that carry only a periodic label, their group (18 labels) or
their period (7), as one-hot rows of an identity table (:mod:`lib.periodic` maps atomic numbers to
labels; :class:`LabelledGraphs` applies the map when a batch is built, the graph cache is untouched).

*Edges carry no geometry.* XGNN's generated graphs have atoms and bonds but no positions, so the
classifier must be one that can read them: it is built with ``use_distance=False`` and every edge gets
the same constant feature (1,). The real crystals keep their CGCNN graphs (k = 8 nearest neighbours
within 8 Å, ties kept, several images of one neighbour possible), read as connectivity only.

*Messages are averaged, not summed* (``CGCNN(aggregate="mean")``). A crystal's atom has 8 or more
neighbours, a generated graph's at most 4. With the reference's sum, the convolution's batch norm
(fitted on crystals) sends every small graph to nearly the same output: measured on 3,000 crystals
(classifiers of 8 epochs), 2,000 graphs of an untrained generator all got p(high band gap) in
0.68-0.74 and p(high formation energy) in 0.47-0.53, so no graph could reach 0.8 and nothing could
be explained. With the mean, an atom reads the labels around it whatever their number; the same
graphs then span p = 0.00-0.92 (band gap) and
0.03-1.00 (formation energy), at test accuracies of 0.74 vs 0.79 (band gap, by group, 8 epochs) and
0.90 vs 0.88 (formation energy). The classifier thus learns which labels sit next to which; a
generated graph is still smaller and sparser than any crystal (an explanation says what drives the
classifier, not what a crystal looks like: see the enrichment comparison below).

**The generator** (:class:`XGNNPolicy`, :class:`XGNN`). The graph grows one edge per step. A GCN (a
linear map of the one-hot labels, then three graph convolutions with symmetric normalisation and self
loops) embeds the current graph together with one isolated candidate node per label. An MLP scores the
existing atoms and the start atom is sampled from their softmax; a second MLP scores every node given
the start atom's embedding ``[x_j, x_start]``, and the end node is sampled among the existing atoms
(not the start) and the candidates (a candidate adds a new atom of its label). Candidates are the
labels that occur in the classifier's training crystals: a label the classifier never saw (group 18)
has an untrained embedding that a generator could exploit.

Reward of the action that makes G_{t+1} (the paper's Eqs. 3-6, two classes):

    R_t = p(c | G_{t+1}) - 1/2  +  λ1 · mean_i [p(c | Ĝ_i) - 1/2]        (valid G_{t+1})
    R_t = -λ2                                                        (invalid G_{t+1})

where Ĝ_1..Ĝ_m are ``n_rollouts`` = m Monte-Carlo rollouts of the current policy from G_{t+1} to the end
of the episode (``max_steps`` actions in all), λ1 = ``rollout_weight`` = 1 and λ2 = ``rules_weight`` =
2 (the paper's code: hyp1 = 1, hyp2 = 2, 10 rollouts; its rules reward is −1, times λ2). The classifier
is never asked about an invalid graph. The policy gradient step (REINFORCE) minimises
``-R_t · (log p_start + log p_end)`` after every action (the paper writes its Eq. 7 with cross-entropy
terms; this is the REINFORCE gradient: an action with a positive reward becomes more likely, one with a
negative reward less). An action is **rolled back** when
R_t < 0: invalid actions always, and valid ones that lower the target probability below what the
rollouts promise.

Two additions of ours, for robustness, chosen on the quick profile's classifiers with 7 generator seeds
per case. With the paper's algorithm alone (Adam, lr 0.01), 2 of 7 generators for the formation energy by
group (class low) and 1 of 7 for the band gap by period (class high) never sampled a graph above 0.8
after 500 episodes: some never find a good action (every reward negative, every action rolled back),
others find one and then collapse after a large update. (1) A **baseline**: the policy gradient uses
R_t minus the mean R_t of the step over the batch's episodes (``baseline``; the expected gradient is
unchanged, its variance lower), so that among all-negative rewards the less bad actions still gain.
(2) The generator **keeps its best weights** (``keep_best``): after every batch of episodes it samples
64 graphs, scores the share that would be kept (p > 0.8), and training ends with the best-scoring
weights, as ``lib.train`` keeps the best epoch. With both, every one of 7 seeds kept 42-97% of its
graphs in the three hardest cases, at 500 and at 2,000 episodes. The rollback, the rules penalty and the
reward itself are the paper's; the rollback decision uses R_t, not the baselined value.

Validity (the thesis's rules): at most 6 atoms, at most 4 neighbours per atom, no self-loop, no
duplicate edge. Graphs are undirected; the classifier sees each edge as two directed edges.

Everything is batched: ``batch_episodes`` episodes run side by side, their m rollouts each run as one
batch of B·m dense graphs, and every classifier call collates all graphs of that call into one
``GraphBatch`` (:meth:`GraphState.to_batch`), so a step costs a handful of tensor operations whatever B.

**Explanations** (:meth:`XGNN.explain`). The trained policy grows graphs for ``max_steps`` actions from
a start atom of a random allowed label; invalid actions are undone, the other actions are the policy's
own (``rollback_generation=False``: with training's reward rollback, a start atom far from the class could
never grow, since each single step still leaves p < 1/2). A graph is kept when the classifier gives its
class a probability above 0.8, until ``Profile.xgnn_per_class`` are kept (or ``max_attempts`` graphs,
default 200 per requested one, were tried); the file records how many were tried. :func:`explain_classifier`
does both classes and writes ``results/xgnn/<property>_<labelling>_<profile>_s<seed>.json``.

**Beside the data** (:func:`enrichment_table`). For each label and label pair: its frequency in the high
class over the low class (log2, with a pseudo-count of 1/2) in the explanations and in the real crystals
(atoms, and the CGCNN graph's directed edges), side by side.
"""
from lib.xgnn.analysis import (
    CLASS_NAMES,
    THESIS_FIGURES,
    crystal_counts,
    enrichment,
    enrichment_agreement,
    enrichment_table,
    explain_classifier,
    explanation_counts,
    explanations_path,
    figure_name,
    load_explanations,
    training_episodes,
)
from lib.xgnn.classifier import (
    CLASSIFIER_TRAINING,
    ClassifierRun,
    LabelledGraphs,
    classifier_model_name,
    discretise,
    make_classifier,
    train_classifier,
)
from lib.xgnn.generator import XGNN, GraphState, XGNNConfig, XGNNPolicy, canonical_form, graph_problems, step

__all__ = [
    "CLASS_NAMES", "THESIS_FIGURES", "CLASSIFIER_TRAINING", "LabelledGraphs", "discretise", "make_classifier",
    "ClassifierRun",
    "train_classifier", "XGNNConfig", "GraphState", "step", "XGNNPolicy", "XGNN", "training_episodes",
    "explain_classifier", "explanations_path", "load_explanations", "graph_problems", "canonical_form",
    "explanation_counts", "crystal_counts", "enrichment", "enrichment_table", "enrichment_agreement",
    "figure_name", "classifier_model_name",
]
