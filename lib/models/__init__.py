"""The models, as one table: every decision about a model that the rest of the project needs, in one row.

    from lib import models
    models.get("cgcnn").run_name("band_gap", "quick", 0)        # 'cgcnn_band_gap_quick_s0'
    models.get("soap_svr").n_rows("quick")                       # structures per property it trains on
    [m.name for m in models.MODEL_TABLE.values()]                # the benchmark's order

The sweep (which notebook runs which model, with which parameters and seeds), the stale-record check and
the notebooks (which rows a run trains on: :meth:`ModelInfo.training_rows`), the benchmark (order, display
names, colours), ``lib.train.fit`` and ``lib.svr.fit_svr`` (the run's name) and ``lib.predict`` (what a
checkpoint is) all read this table. A new model is its module (a registered ``nn.Module`` or a fitter),
its notebook, one :func:`register_model` call (or a row below) and its test; README, "Extending". A row
carries the model's named training recipes (:class:`Recipe`; ``lib.recipes.recipe`` picks a profile's).

The torch side (the registry of classes that checkpoints rebuild, parameter counts) is
``lib.models.registry``; the networks are ``lib.models.cgcnn``, ``lib.models.megnet`` and
``lib.models.soap_mlp``. This module imports neither torch nor the networks (nor the training loop: a recipe
names its settings as ``lib.train_config.TrainConfig`` fields).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from lib.data.holdout import without_holdout
from lib.data.table import target_frame
from lib.profiles import Profile, get_profile
from lib.train_config import TrainConfig

#: the dataset a record name leaves implicit; records of other datasets carry a tag after the model name
DEFAULT_DATASET = "cgcnn"
#: dataset -> its tag in record names ("megnet" -> megnet_mp2018_band_gap_quick_s0)
DATASET_TAGS = {"megnet": "mp2018"}


#: what a model reads: the graphs of lib.graphs (02_graphs builds them), or SOAP rows (lib.soap)
GRAPH_INPUTS = ("cgcnn", "megnet")
INPUTS = (*GRAPH_INPUTS, "soap")


def run_name(model: str, property: str, profile: str, seed: int) -> str:
    """``<model>_<property>_<profile>_s<seed>``, the stem of a run's files (record, checkpoint, notebook)."""
    return f"{model}_{property}_{profile}_s{seed}"


@dataclass(frozen=True)
class Recipe:
    """Model constructor arguments, graph parameters and TrainConfig fields, over the code's defaults."""

    name: str
    description: str
    model: dict[str, Any] = field(default_factory=dict)
    graph: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)

    def train_config(self, **overrides: Any) -> TrainConfig:
        """A TrainConfig with this recipe's fields; ``overrides`` (None values ignored) on top."""
        given = {k: v for k, v in overrides.items() if v is not None}
        return TrainConfig().replace(**{**self.train, **given})

    def model_kwargs(self, **given: Any) -> dict:
        """The recipe's constructor arguments with the ``given`` ones (None: the recipe's) on top."""
        return {**self.model, **{k: v for k, v in given.items() if v is not None}}

    def graph_kwargs(self, **given: Any) -> dict:
        """The recipe's graph parameters with the ``given`` ones (None: the recipe's) on top."""
        return {**self.graph, **{k: v for k, v in given.items() if v is not None}}

    def as_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "model": self.model, "graph": self.graph,
                "train": self.train}


@dataclass(frozen=True)
class ModelInfo:
    """One model as the project runs it."""

    name: str  # record and CLI name: results/runs/<name>_<property>_<profile>_s<seed>.json
    display: str  # in tables and figures
    notebook: str  # notebooks/<notebook>.ipynb trains it (papermill parameters: property, seed, profile)
    stage: str  # sweep stage id; models that share a notebook share it (05: SOAP-SVR and SOAP-MLP)
    module: str  # where it is defined
    model_class: str | None  # the registered nn.Module (lib.models.registry); None: not a torch model
    inputs: str  # what it reads (INPUTS): "cgcnn" or "megnet" graphs (02_graphs builds them), or "soap" rows
    rows: str = "n_max"  # the Profile field that caps the structures per property it trains on
    seeds: str = "seeds_gnn"  # the Profile field that lists its seeds
    fractions: tuple[float, ...] = (0.8, 0.1, 0.1)  # its random split (lib.data.split)
    params: tuple[tuple[str, object], ...] = ()  # notebook parameters besides property, seed, profile
    color: str = "#3a3a3a"  # in figures
    recipes: tuple[Recipe, ...] = field(default=(), hash=False)  # its named recipes (lib.recipes.recipe)

    def __post_init__(self) -> None:
        if self.inputs not in INPUTS:
            raise ValueError(f"model {self.name!r} reads {self.inputs!r}; known inputs: {', '.join(INPUTS)}")

    def record_name(self, dataset: str = DEFAULT_DATASET) -> str:
        """The model part of a run name: the name, tagged with the dataset unless it is the default."""
        if dataset == DEFAULT_DATASET:
            return self.name
        return f"{self.name}_{DATASET_TAGS.get(dataset, dataset)}"

    def run_name(self, property: str, profile: str | Profile, seed: int, dataset: str = DEFAULT_DATASET
                 ) -> str:
        """``<model>_<property>_<profile>_s<seed>``, the stem of the run's record, checkpoint and notebook."""
        return run_name(self.record_name(dataset), property, get_profile(profile).name, seed)

    def n_rows(self, profile: str | Profile) -> int | None:
        """Structures per property it trains on in ``profile`` (None: all)."""
        return getattr(get_profile(profile), self.rows)

    def seeds_of(self, profile: str | Profile) -> tuple[int, ...]:
        return tuple(getattr(get_profile(profile), self.seeds))

    def training_rows(self, df: pd.DataFrame, property: str, profile: str | Profile, seed: int
                      ) -> pd.DataFrame:
        """The rows a run of this model trains on (split and evaluated): the notebooks and the stale-record
        check both call this, so they cannot disagree. A profile's held-out set is left out first."""
        prof = get_profile(profile)
        return target_frame(without_holdout(df, prof.holdout), property, n_max=self.n_rows(prof), seed=seed)

    @property
    def graph_kind(self) -> str | None:
        """"cgcnn" or "megnet" for graph models (lib.graphs builders), None otherwise."""
        return self.inputs if self.inputs in GRAPH_INPUTS else None

    @property
    def notebook_run(self) -> str:
        """The stem of its notebook's runs: the notebook, followed by the values of the model's own notebook
        parameters where the notebook trains several models ("05_soap_svr")."""
        return "_".join([self.notebook, *(str(v) for _, v in self.params)])

    def recipe(self, name: str) -> Recipe:
        """Its recipe of that name (a profile names one: ``Profile.recipe``)."""
        found = next((r for r in self.recipes if r.name == name), None)
        if found is None:
            raise KeyError(f"no recipe {name!r} for {self.name!r}; its recipes: "
                           f"{[r.name for r in self.recipes] or 'none'}")
        return found


MODEL_TABLE: dict[str, ModelInfo] = {}


def register_model(info: ModelInfo) -> ModelInfo:
    """Add (or replace) a row of the table; the sweep, benchmark and predict see it at once."""
    MODEL_TABLE[info.name] = info
    return info


# What the recipe study found (results/study/recipe_formation_energy_per_atom.md; README: predictors you can
# trust); MEGNet's best takes the schedule and averaging that helped CGCNN (it has no study of its own).
BEST_CGCNN_TRAIN = {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 1e-4, "scheduler": "cosine",
                    "batch_size": 128, "loss": "l1", "ema": 0.999}

_THESIS_CGCNN = "the thesis's Table 3: SGD lr 0.01, momentum 0.9, batch 256, MSE, k = 8 within 8 Å"
_BEST_CGCNN = ("AdamW lr 1e-3, weight decay 1e-4, cosine schedule, batch 128, L1 loss, weight average "
               "(EMA 0.999), k = 8 within 8 Å (the recipe study: each of these helped; k = 12 bought 0.0005 "
               "eV/atom on its test set at 1.5x the time per epoch, so the shipped models keep k = 8)")
_THESIS_MEGNET = "the MEGNet paper's: Adam lr 1e-3, constant, batch 128, MSE, every neighbour within 4 Å"
_BEST_MEGNET = ("AdamW lr 1e-3, weight decay 1e-4, cosine schedule, batch 128, L1 loss, EMA 0.999, 4 Å "
                "(CGCNN's study applied to MEGNet)")
_K8 = {"cutoff": 8.0, "max_neighbors": 8}
CGCNN_RECIPES = (Recipe("thesis", _THESIS_CGCNN, graph=_K8),
                 Recipe("best", _BEST_CGCNN, graph=dict(_K8), train=BEST_CGCNN_TRAIN))
MEGNET_RECIPES = (Recipe("thesis", _THESIS_MEGNET, graph={"cutoff": 4.0},
                         train={"optimizer": "adam", "lr": 1e-3, "scheduler": "none", "batch_size": 128}),
                  Recipe("best", _BEST_MEGNET, graph={"cutoff": 4.0}, train=BEST_CGCNN_TRAIN))

for _info in (
    ModelInfo("cgcnn", "CGCNN", "03_cgcnn", "03", "lib.models.cgcnn", "CGCNN", "cgcnn", color="#2f6690",
              recipes=CGCNN_RECIPES),
    ModelInfo("megnet", "MEGNet", "04_megnet", "04", "lib.models.megnet", "MEGNet", "megnet", color="#d1495b",
              recipes=MEGNET_RECIPES),
    ModelInfo("soap_svr", "SOAP-SVR", "05_soap", "05", "lib.svr", None, "soap", rows="n_soap_max",
              seeds="seeds_soap", fractions=(0.8, 0.2), params=(("model", "svr"),), color="#edae49"),
    ModelInfo("soap_mlp", "SOAP-MLP", "05_soap", "05", "lib.models.soap_mlp", "SoapMLP", "soap",
              rows="n_soap_max", seeds="seeds_soap", params=(("model", "mlp"),), color="#66a182"),
):
    register_model(_info)


def get(name: str) -> ModelInfo:
    """The row of that model (a record name such as "megnet_mp2018" finds "megnet")."""
    if name in MODEL_TABLE:
        return MODEL_TABLE[name]
    for info in MODEL_TABLE.values():
        if any(name == info.record_name(d) for d in DATASET_TAGS):
            return info
    raise KeyError(f"unknown model {name!r}; known: {', '.join(MODEL_TABLE)}")


def for_class(class_name: str) -> ModelInfo | None:
    """The row whose registered class is ``class_name`` (None: a class outside the table)."""
    return next((m for m in MODEL_TABLE.values() if m.model_class == class_name), None)


def display_name(name: str) -> str:
    """"CGCNN" for "cgcnn"; a name outside the table as it is."""
    try:
        return get(name).display
    except KeyError:
        return name


__all__ = ["run_name", "Recipe", "BEST_CGCNN_TRAIN", "GRAPH_INPUTS", "INPUTS", "ModelInfo", "MODEL_TABLE",
           "register_model", "get", "for_class", "display_name", "DATASET_TAGS", "DEFAULT_DATASET"]
