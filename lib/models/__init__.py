"""The models, as one table: every decision about a model that the rest of the project needs, in one row.

    from lib import models
    models.get("cgcnn").run_name("band_gap", "quick", 0)        # 'cgcnn_band_gap_quick_s0'
    models.get("soap_svr").n_rows("quick")                       # structures per property it trains on
    [m.name for m in models.MODEL_TABLE.values()]                # the benchmark's order

The sweep (which notebook runs which model, with which parameters and seeds), the stale-record check and
the notebooks (which rows a run trains on: :meth:`ModelInfo.training_rows`), the benchmark (order, display
names, colours), ``lib.train.fit`` and ``lib.svr.fit_svr`` (the run's name) and ``lib.predict`` (what a
checkpoint is) all read this table. A new model is its module (a registered ``nn.Module`` or a fitter),
its notebook, one :func:`register_model` call (or a row below) and its test; README, "Extending".

The torch side (the registry of classes that checkpoints rebuild, parameter counts) is
``lib.models.registry``; the networks are ``lib.models.cgcnn``, ``lib.models.megnet`` and
``lib.models.soap_mlp``. This module imports neither torch nor the networks.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from lib.data.holdout import without_holdout
from lib.data.table import target_frame
from lib.profiles import Profile, get_profile

#: the dataset a record name leaves implicit; records of other datasets carry a tag after the model name
DEFAULT_DATASET = "cgcnn"
#: dataset -> its tag in record names ("megnet" -> megnet_mp2018_band_gap_quick_s0)
DATASET_TAGS = {"megnet": "mp2018"}


def run_name(model: str, property: str, profile: str, seed: int) -> str:
    """``<model>_<property>_<profile>_s<seed>``, the stem of a run's files (record, checkpoint, notebook)."""
    return f"{model}_{property}_{profile}_s{seed}"


@dataclass(frozen=True)
class ModelInfo:
    """One model as the project runs it."""

    name: str  # record and CLI name: results/runs/<name>_<property>_<profile>_s<seed>.json
    display: str  # in tables and figures
    notebook: str  # notebooks/<notebook>.ipynb trains it (papermill parameters: property, seed, profile)
    stage: str  # sweep stage id; models that share a notebook share it (05: SOAP-SVR and SOAP-MLP)
    module: str  # where it is defined
    model_class: str | None  # the registered nn.Module (lib.models.registry); None: not a torch model
    inputs: str  # what it reads: "cgcnn graphs", "megnet graphs" (02_graphs builds them) or "soap"
    rows: str = "n_max"  # the Profile field that caps the structures per property it trains on
    seeds: str = "seeds_gnn"  # the Profile field that lists its seeds
    fractions: tuple[float, ...] = (0.8, 0.1, 0.1)  # its random split (lib.data.split)
    params: tuple[tuple[str, object], ...] = ()  # notebook parameters besides property, seed, profile
    color: str = "#3a3a3a"  # in figures

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
        return self.inputs.split()[0] if self.inputs.endswith("graphs") else None


MODEL_TABLE: dict[str, ModelInfo] = {}


def register_model(info: ModelInfo) -> ModelInfo:
    """Add (or replace) a row of the table; the sweep, benchmark and predict see it at once."""
    MODEL_TABLE[info.name] = info
    return info


for _info in (
    ModelInfo("cgcnn", "CGCNN", "03_cgcnn", "03", "lib.models.cgcnn", "CGCNN", "cgcnn graphs",
              color="#2f6690"),
    ModelInfo("megnet", "MEGNet", "04_megnet", "04", "lib.models.megnet", "MEGNet", "megnet graphs",
              color="#d1495b"),
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


__all__ = ["run_name", "ModelInfo", "MODEL_TABLE", "register_model", "get", "for_class", "display_name",
           "DATASET_TAGS",
           "DEFAULT_DATASET"]
