"""The plan of a sweep: which notebook runs, with which parameters, in which order (``plan``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lib import models, records
from lib.data.targets import TARGETS
from lib.paths import RESULTS_DIR, ROOT, XGNN_DIR
from lib.profiles import Profile, get_profile
from lib.xgnn.analysis import explanations_path

#: the stages that train no model of the table: stage id -> notebook (under notebooks/)
FIXED_STAGES: dict[str, str] = {
    "01": "01_fetch",
    "02": "02_graphs",
    "06": "06_benchmark",
    "07": "07_xgnn",
    "08": "08_cathodes",
}
XGNN_LABELLINGS = ("group", "period")
#: XGNN properties of every profile; the other properties are explained in every profile but smoke
XGNN_ALWAYS = ("band_gap", "formation_energy_per_atom")
NOTEBOOK_OUT = "results/notebooks"
STATUSES = ("ok", "failed", "blocked", "skipped", "missing", "planned")


def stage_notebooks() -> dict[str, str]:
    """Stage id -> notebook: the fixed stages and one per model stage of lib.models.MODEL_TABLE."""
    out = dict(FIXED_STAGES)
    for m in models.MODEL_TABLE.values():
        out.setdefault(m.stage, m.notebook)
    return dict(sorted(out.items()))


def phases() -> tuple[tuple[str, ...], ...]:
    """Stages in the order they run; the stages of one phase run side by side (every model at once)."""
    trained = tuple(sorted({m.stage for m in models.MODEL_TABLE.values()}))
    return (("01",), ("02",), trained, ("06",), ("07", "08"))


@dataclass(frozen=True)
class Run:
    """One papermill execution: a notebook, its parameters, its executed copy and the record it writes.

    Paths are relative to the project root (absolute when outside it), so the same Run is valid on
    any machine that has the checkout, wherever it is mounted.
    """

    name: str  # stem of the executed notebook: "03_cgcnn_band_gap_quick_s0"
    stage: str  # "01".."07"
    notebook: str  # input notebook, e.g. "notebooks/03_cgcnn.ipynb"
    params: tuple[tuple[str, Any], ...]  # papermill parameters, in order
    record: str | None = None  # with the executed copy, marks the run done; None: no record (01, 02, 06)
    needs: tuple[str, ...] = ()  # names of runs that must not have failed for this one to start
    model: str | None = None  # the lib.models.MODEL_TABLE row a training run trains

    @property
    def parameters(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def output(self) -> str:
        """The executed notebook, relative to the root."""
        return f"{NOTEBOOK_OUT}/{self.name}.ipynb"

    @property
    def log(self) -> str:
        """papermill's messages (the traceback of a failure), relative to the root."""
        return f"{NOTEBOOK_OUT}/logs/{self.name}.log"

    @property
    def phase(self) -> int:
        order = phases()
        return next((i for i, p in enumerate(order) if self.stage in p), len(order))


# ----------------------------------------------------------------------------- the plan


def _stage_id(s: str) -> str:
    """'3', '03', '03_cgcnn' or 'cgcnn' -> '03'."""
    s = str(s).strip()
    nbs = stage_notebooks()
    for sid, nb in nbs.items():
        if s in (sid, sid.lstrip("0"), nb, nb.removeprefix(f"{sid}_")):  # notebooks are <stage>_<topic>
            return sid
    for m in models.MODEL_TABLE.values():  # a model's name: its stage ("soap_svr" -> "05")
        if s == m.name:
            return m.stage
    raise ValueError(f"unknown stage {s!r}; known: {', '.join(f'{k} ({v})' for k, v in nbs.items())}")


def _rel(path: Path, root: Path) -> str:
    path = Path(path) if Path(path).is_absolute() else root / path
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


def all_properties() -> tuple[str, ...]:
    """The seven modelled properties, in lib.data's order."""
    return tuple(TARGETS)


def plan(
    profile: str | Profile = "quick",
    *,
    only: Iterable[str] | str | None = None,
    properties: Iterable[str] | None = None,
    seeds: Iterable[int] | None = None,
    notebooks: Mapping[str, str | Path] | None = None,
    root: str | Path | None = None,
) -> list[Run]:
    """Every run of ``profile``, in execution order.

    only : stages to keep ("03", "3", "cgcnn", or "03,04"); default all seven.
    properties : restrict the per-property stages (03, 04, 05, 07); default the seven of lib.data.
    seeds : override the profile's seeds (all stages; 07 otherwise uses the first GNN seed).
    notebooks : stage -> notebook path (relative: to ``root``), to run another notebook in a stage's
        place (tests do this).
    root : the project root the paths are relative to (default lib.paths.ROOT).
    """
    prof = get_profile(profile)
    p = prof.name
    root = Path(root) if root is not None else ROOT
    if isinstance(only, str):
        only = only.split(",")
    nbs = stage_notebooks()
    stages = sorted({_stage_id(s) for s in only if str(s).strip()}) if only else list(nbs)
    known = all_properties()
    if properties is None:
        props = known
    else:
        props = tuple(dict.fromkeys(properties))
        unknown = [x for x in props if x not in known]
        if unknown:
            word = "property" if len(unknown) == 1 else "properties"
            raise ValueError(f"unknown {word} {unknown}; known: {list(known)}")
    seeds = tuple(int(s) for s in seeds) if seeds is not None else None
    nb = {sid: f"notebooks/{stem}.ipynb" for sid, stem in nbs.items()}
    for sid, path in (notebooks or {}).items():
        nb[_stage_id(sid)] = _rel(Path(path), root)

    fetch, graphs = f"01_fetch_{p}", f"02_graphs_{p}"
    runs: list[Run] = []
    if "01" in stages:
        runs.append(Run(fetch, "01", nb["01"], (("profile", p),)))
    if "02" in stages:
        runs.append(Run(graphs, "02", nb["02"], (("profile", p),), needs=(fetch,)))

    # every model of the table side by side: seed by seed, so that an interrupted sweep has every property
    # at n=1 first; a model with notebook parameters (05: model=svr|mlp) names its run after itself
    trained = [m for m in models.MODEL_TABLE.values() if m.stage in stages]
    all_seeds = sorted({s for m in trained for s in (seeds if seeds is not None else m.seeds_of(prof))})
    for seed in all_seeds:
        for prop in props:
            base = (("property", prop), ("seed", seed), ("profile", p))
            for m in trained:
                if seed not in (seeds if seeds is not None else m.seeds_of(prof)):
                    continue
                needs = (graphs,) if m.graph_kind else (fetch,)
                runs.append(Run(f"{m.notebook_run}_{prop}_{p}_s{seed}", m.stage, nb[m.stage], base + m.params,
                                records.record_relpath(m.run_name(prop, p, seed)), needs=needs, model=m.name))

    if "06" in stages:
        runs.append(Run(f"06_benchmark_{p}", "06", nb["06"], (("profile", p),)))

    if "08" in stages:  # after every model (the best profile's reads its shipped formation-energy ensemble)
        runs.append(Run(f"08_cathodes_{p}", "08", nb["08"], (("profile", p),),
                        f"{RESULTS_DIR}/cathode_candidates_{p}.csv", needs=(fetch,)))

    if "07" in stages:
        xprops = [x for x in props if p != "smoke" or x in XGNN_ALWAYS]
        for seed in seeds if seeds is not None else prof.seeds_gnn[:1]:
            for prop in xprops:
                for lab in XGNN_LABELLINGS:
                    runs.append(Run(
                        f"07_xgnn_{prop}_{lab}_{p}_s{seed}", "07", nb["07"],
                        (("property", prop), ("labelling", lab), ("seed", seed), ("profile", p)),
                        _rel(explanations_path(prop, lab, p, seed, root / XGNN_DIR), root),
                        needs=(graphs,),
                    ))
    return sorted(runs, key=lambda r: r.phase)  # stable: the order above within a phase
