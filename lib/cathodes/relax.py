"""Relaxing many crystal structures at once with a universal potential, cached on disk.

**The method is ASE's**, unchanged: each structure gets its own ``FIRE`` optimizer on a ``FrechetCellFilter``
(positions and cell relax together; converged when every force and the stress, in the filter's units, is
below ``fmax``, 0.05 eV/Å by default). What is batched is the model: at every step the energies, forces and
stresses of **all** structures still relaxing are computed in one call of the potential
(:meth:`lib.cathodes.potentials.UniversalPotential.efs`), and each optimizer then takes its own step from
its own results. A structure that finishes frees its place for the next one waiting (continuous batching,
``batch_size`` at a time), so the model always sees full batches. On 2 CPU cores this is several times
faster than relaxing one structure after another with the potential's own optimizer (``make bench
BENCH=electrodes`` measures both on the same structures).

**Nothing is silently used.** Every structure ends with a ``status``:

- ``converged``: below ``fmax`` within ``max_steps`` steps;
- ``not converged``: the step cap was reached (its last energy is kept but flagged);
- ``exploded``: atoms closer than ``min_distance`` (0.5 Å, the limit of :mod:`lib.validate`), the volume
  changed by more than ``max_volume_change`` (|V/V₀ − 1| > 0.5 by default), or a non-finite
  energy or force;
- ``failed``: the model or the optimizer raised (the error message is the ``reason``);
- ``pending``: not relaxed yet, when only the cache is read (``relax(..., cached_only=True)``: a benchmark that
  reports what a background queue has finished so far).

Callers use ``r.ok`` (converged) and carry ``status`` / ``reason`` into their tables.

**The cache.** Each finished relaxation is one JSON file, written atomically (:func:`lib.paths.atomic_path`)
as soon as the structure finishes, under ``data/relax/<model>/`` (or ``$COMPENDIUM_RELAX_CACHE/<model>/``), named by a hash of the model, the settings
and the input structure (lattice and fractional coordinates to 1e-6, atomic numbers). A relaxation done is
never redone: a killed run resumes where it stopped, and a second benchmark run reads everything back.
``data/`` is not tracked by git, so the relaxations also travel in ``records/relax/<model>.jsonl.gz`` (one
line per relaxation, committed; :func:`archive`, ``python -m lib.cathodes.relax archive``), which the default
cache reads through: a relaxation finished in an earlier session or on another machine is not redone.

**Threads.** The cell filter's matrix exponentials are 3x3 LAPACK calls; with OpenBLAS's threads they took
12 ms each on a busy 2-core machine (5x the whole model step), so relaxations run with BLAS at one thread
(``threadpoolctl``); the model's own threads are torch's.

**On a cluster.** With ``scheduler`` (a Dask scheduler address or ``dask.distributed.Client``) the pending
structures are split into chunks, each relaxed by a task on a worker (which loads the potential once per
process by name); the cache must then be on a file system the workers share, as the sweep's results are.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
from ase import Atoms, units
from ase.calculators.singlepoint import SinglePointCalculator
from ase.filters import FrechetCellFilter
from ase.optimize import FIRE
from ase.stress import full_3x3_to_voigt_6_stress
from pymatgen.core import Lattice, Structure
from threadpoolctl import threadpool_limits

from lib.cathodes import archive as _archive
from lib.paths import ARCHIVE, DATA, atomic_path
from lib.structures import Crystal, as_structure

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from tqdm.auto import tqdm



class ForceModel(Protocol):
    """What a relaxation needs of a model: energies, forces and stresses of many structures in one call (every
    lib.cathodes.potentials.UniversalPotential has it)."""

    name: str
    can_relax: bool

    def efs(self, structures: Sequence[Structure]) -> list[dict]:
        """Per structure ``{"e": eV/atom, "f": (n, 3) eV/Å, "s": (3, 3) GPa}``."""
        ...

CACHE = Path(os.environ.get("COMPENDIUM_RELAX_CACHE", DATA / "relax"))  # one folder per model below it
DEFAULT = object()  # the default cache folder of a model: CACHE / model.name
ARCHIVED = ARCHIVE / "relax"  # committed: <model>.jsonl.gz, read through by the default cache


@dataclass(frozen=True)
class Settings:
    """How a relaxation is run; part of every cache key."""

    fmax: float = 0.05  # eV/Å (forces, and stress × volume in the filter's units)
    max_steps: int = 300
    min_distance: float = 0.5  # Å
    max_volume_change: float = 0.5  # |V/V0 - 1| above this: exploded

    def key(self) -> dict:
        return {**asdict(self), "optimizer": "FIRE", "filter": "FrechetCellFilter"}


@dataclass
class Relaxation:
    """One structure's relaxation (module docstring)."""

    id: str
    status: str  # converged | not converged | exploded | failed | pending
    reason: str = ""
    energy_per_atom: float = math.nan  # eV/atom at the final structure
    initial_energy_per_atom: float = math.nan  # eV/atom at the input structure (the static energy)
    steps: int = 0
    fmax: float = math.nan  # the largest force (filter units, eV/Å) at the end
    volume_change: float = math.nan  # V_final / V_initial - 1
    structure: Crystal | None = None  # final structure
    seconds: float = 0.0  # wall time while it was in the batch (shared with the others)
    key: str = ""
    cached: bool = field(default=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.status == "converged"

    def to_json(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k not in ("structure", "cached")}
        d = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}
        if self.structure is not None:
            c = self.structure
            d["structure"] = {"lattice": c.lattice.tolist(), "frac": c.frac_coords.tolist(),
                              "numbers": c.numbers.tolist()}
        return d

    @classmethod
    def from_json(cls, d: dict) -> Relaxation:
        d = dict(d)
        s = d.pop("structure", None)
        for k in ("energy_per_atom", "initial_energy_per_atom", "fmax", "volume_change"):
            d[k] = math.nan if d.get(k) is None else float(d[k])
        crystal = None
        if s is not None:
            crystal = Crystal(np.array(s["lattice"], float), np.array(s["frac"], float),
                              np.array(s["numbers"], np.int64))
        return cls(**d, structure=crystal, cached=True)


def structure_key(structure: Structure, model_name: str, settings: Settings | str) -> str:
    """The cache key of relaxing ``structure`` with a model and settings (module docstring); ``settings``
    :data:`STATIC`: of its static energy."""
    frac = np.round(np.mod(structure.frac_coords, 1.0), 6) % 1.0
    payload = {
        "model": model_name,
        "settings": settings if isinstance(settings, str) else settings.key(),
        "lattice": np.round(structure.lattice.matrix, 6).tolist(),
        "frac": frac.tolist(),
        "numbers": [int(z) for z in structure.atomic_numbers],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


def _read(folder: Path | None, key: str, archived: dict | None = None) -> Relaxation | None:
    d = _read_json(folder, key, archived)
    try:
        return Relaxation.from_json(d) if d is not None else None
    except (ValueError, KeyError, TypeError):  # a damaged record: relax again (and overwrite it)
        return None


def archive_file(model_name: str, archive_dir: str | Path | None = None) -> Path:
    """The committed archive of a model's relaxations: ``records/relax/<model>.jsonl.gz`` (:mod:`lib.cathodes.archive`)."""
    return _archive.archive_file("relax", model_name, archive_dir if archive_dir is not None else ARCHIVED)


def archived(model_name: str, archive_dir: str | Path | None = None) -> dict[str, dict]:
    """The archived relaxations of a model, by cache key (empty when there is none)."""
    return _archive.archived("relax", model_name, archive_dir if archive_dir is not None else ARCHIVED,
                             field="key")


def archive(model_name: str, cache: str | Path | None = None, archive_dir: str | Path | None = None) -> Path:
    """Merge a model's cached relaxations (``cache``, default ``data/relax/<model>``) into its archive,
    sorted by key and gzipped without a time stamp (same relaxations, same bytes); returns the file."""
    folder = Path(cache) if cache is not None else CACHE / model_name
    return _archive.archive_folder(folder, "relax", model_name,
                                   archive_dir if archive_dir is not None else ARCHIVED, field="key")[0]


STATIC = "static"  # the settings of a static energy's cache key: no relaxation


def static_energies(model, structures: Sequence, compute, cache=DEFAULT, progress: bool = False,
                    cached_only: bool = False) -> np.ndarray:
    """Static energies per atom (eV/atom) of ``structures`` with ``model``, through the same cache and archive
    as its relaxations (one small JSON record per structure, ``kind: static``): only the ones not done before are
    computed, by ``compute(structures) -> array``, in chunks written as they finish (a killed run resumes).
    ``cached_only``: nothing is computed; a structure not in the cache is NaN."""
    folder = (CACHE / model.name) if cache is DEFAULT else (Path(cache) if cache is not None else None)
    arch = archived(model.name) if cache is DEFAULT else None
    ss = [as_structure(s) for s in structures]
    keys = [structure_key(s, model.name, STATIC) for s in ss]
    out = np.full(len(ss), np.nan)
    todo = []
    for i, key in enumerate(keys):
        d = _read_json(folder, key, arch)
        if d is not None and d.get("kind") == STATIC:
            out[i] = d["energy_per_atom"]
        elif not cached_only:
            todo.append(i)
    step = 64
    for j in tqdm(range(0, len(todo), step), desc=f"{model.name} energies", disable=not progress or not todo):
        part = todo[j : j + step]
        es = np.asarray(compute([ss[i] for i in part]), float)
        for i, e in zip(part, es, strict=True):
            out[i] = e
            if folder is not None and np.isfinite(e):
                with atomic_path(folder / f"{keys[i]}.json") as tmp:
                    tmp.write_text(json.dumps({"key": keys[i], "kind": STATIC, "energy_per_atom": float(e)}))
    return out


def _read_json(folder: Path | None, key: str, archived: dict | None = None) -> dict | None:
    if folder is None:
        return None
    try:
        return json.loads((folder / f"{key}.json").read_text())
    except FileNotFoundError:
        return archived.get(key) if archived else None
    except ValueError:  # a damaged file: computed again (and overwritten)
        return None


def _write(folder: Path | None, r: Relaxation) -> None:
    if folder is None:
        return
    with atomic_path(folder / f"{r.key}.json") as tmp:
        tmp.write_text(json.dumps(r.to_json()))


# ----------------------------------------------------------------------------------------------
# one structure in the batch
# ----------------------------------------------------------------------------------------------


class _Job:
    """A structure being relaxed: its atoms, ASE filter and optimizer, and what is known of it so far."""

    def __init__(self, index: int, rid: str, key: str, structure: Structure):
        self.index, self.id, self.key = index, rid, key
        self.atoms = Atoms(numbers=structure.atomic_numbers, cell=structure.lattice.matrix,
                           scaled_positions=structure.frac_coords, pbc=True)
        self.filter = FrechetCellFilter(self.atoms)
        self.opt = FIRE(self.filter, logfile=None)
        self.v0 = float(self.atoms.get_volume())
        self.e0 = math.nan
        self.steps = 0
        self.t0 = time.perf_counter()

    def structure(self) -> Structure:
        return Structure(Lattice(np.array(self.atoms.cell)), self.atoms.numbers, self.atoms.get_scaled_positions(),
                         coords_are_cartesian=False)

    def done(self, status: str, reason: str, e: float = math.nan, fmax: float = math.nan) -> Relaxation:
        return Relaxation(
            id=self.id, status=status, reason=reason, energy_per_atom=e, initial_energy_per_atom=self.e0,
            steps=self.steps, fmax=fmax, volume_change=float(self.atoms.get_volume()) / self.v0 - 1,
            structure=self._crystal() if status in ("converged", "not converged") else None,
            seconds=time.perf_counter() - self.t0, key=self.key,
        )

    def _crystal(self) -> Crystal | None:
        try:
            return Crystal.from_structure(self.structure())
        except ValueError:  # the final structure breaks a rule of lib.validate: no structure to use
            return None

    def update(self, pred: dict, settings: Settings) -> Relaxation | None:
        """Take the model's results at the current positions; a finished Relaxation, or None to step on."""
        n = len(self.atoms)
        e, f, s = pred["e"], pred["f"], pred["s"]
        if not (math.isfinite(e) and np.isfinite(f).all() and np.isfinite(s).all()):
            return self.done("exploded", "non-finite energy, force or stress")
        if self.steps == 0:
            self.e0 = e
        self.atoms.calc = SinglePointCalculator(
            self.atoms, energy=e * n, forces=f, stress=full_3x3_to_voigt_6_stress(s * units.GPa)
        )
        dv = float(self.atoms.get_volume()) / self.v0 - 1
        if abs(dv) > settings.max_volume_change:
            return self.done("exploded", f"volume changed by {dv:+.0%}", e)
        if n > 1:
            d = self.atoms.get_all_distances(mic=True)[np.triu_indices(n, 1)]
            if d.size and d.min() < settings.min_distance:
                return self.done("exploded", f"atoms {d.min():.2f} Å apart (< {settings.min_distance} Å)", e)
        g = self.opt.optimizable.get_gradient()
        fmax = float(self.opt.optimizable.gradient_norm(g))
        if self.opt.optimizable.converged(g, settings.fmax):
            return self.done("converged", "", e, fmax)
        if self.steps >= settings.max_steps:
            return self.done("not converged", f"fmax {fmax:.3f} eV/Å after {self.steps} steps", e, fmax)
        self.opt.step()
        self.steps += 1
        return None


# ----------------------------------------------------------------------------------------------
# many structures
# ----------------------------------------------------------------------------------------------


def _relax_local(model: ForceModel, jobs: list[tuple[int, str, str, Structure]], settings: Settings,
                 folder: Path | None, batch_size: int, bar) -> dict[int, Relaxation]:
    """Continuous batching of ``jobs`` (index, id, key, structure); each result cached as it finishes."""
    waiting = list(reversed(jobs))
    active: list[_Job] = []
    out: dict[int, Relaxation] = {}

    def finish(job: _Job, r: Relaxation) -> None:
        out[job.index] = r
        _write(folder, r)
        bar.update(1)

    while waiting or active:
        while waiting and len(active) < batch_size:
            active.append(_Job(*waiting.pop()))
        try:
            preds = model.efs([j.structure() for j in active])
        except Exception:  # noqa: BLE001 - one bad structure must not stop the batch: call them one by one
            preds = [_one(model, j) for j in active]
        still = []
        for j, p in zip(active, preds, strict=True):
            if "error" in p:
                finish(j, j.done("failed", f"{type(p['error']).__name__}: {p['error']}"))
                continue
            try:
                r = j.update(p, settings)
            except Exception as err:  # noqa: BLE001 - the optimizer failed on this one
                r = j.done("failed", f"{type(err).__name__}: {err}")
            if r is None:
                still.append(j)
            else:
                finish(j, r)
        active = still
        bar.set_postfix(active=len(active), waiting=len(waiting), refresh=False)
    return out


def _one(model: ForceModel, job: _Job) -> dict:
    try:
        return model.efs([job.structure()])[0]
    except Exception as err:  # noqa: BLE001 - reported as this structure's failure
        return {"error": err}


def _relax_chunk(model: ForceModel, items: list[tuple[int, str, str, dict]], settings: dict,
                 folder: str | None, batch_size: int) -> list[dict]:
    """A Dask task: relax a chunk with ``model`` (pickled without its network, which the worker loads)."""
    jobs = [(i, rid, key, Structure.from_dict(s)) for i, rid, key, s in items]
    with tqdm(total=len(jobs), disable=True) as bar, threadpool_limits(1, user_api="blas"):
        res = _relax_local(model, jobs, Settings(**settings), Path(folder) if folder else None, batch_size, bar)
    return [{"index": i, **r.to_json()} for i, r in res.items()]


def relax(
    model: ForceModel,
    structures: Sequence,
    ids: Sequence[str] | None = None,
    settings: Settings | None = None,
    cache=DEFAULT,
    batch_size: int = 48,
    progress: bool = True,
    scheduler=None,
    chunk: int = 64,
    cached_only: bool = False,
) -> list[Relaxation]:
    """Relax ``structures`` (Crystals or Structures) with ``model``; one :class:`Relaxation` each, in order.

    ``cache``: a folder, ``None`` (no cache) or the default ``data/relax/<model.name>``. Cached relaxations
    are read, not redone. ``scheduler``: relax on a Dask cluster (module docstring), ``chunk`` structures a
    task; the model is sent to the workers without its loaded network. ``cached_only``: relax nothing; a structure
    not in the cache is ``pending``.
    """
    if not getattr(model, "can_relax", False):
        raise ValueError(f"{getattr(model, 'name', model)!r} cannot relax structures")
    settings = settings or Settings()
    folder = (CACHE / model.name) if cache is DEFAULT else (Path(cache) if cache is not None else None)
    arch = archived(model.name) if cache is DEFAULT else None
    ss = [as_structure(s) for s in structures]
    ids = [str(i) for i in (ids if ids is not None else range(len(ss)))]
    if len(ids) != len(ss):
        raise ValueError(f"{len(ids)} ids for {len(ss)} structures")
    keys = [structure_key(s, model.name, settings) for s in ss]
    out: list[Relaxation | None] = [None] * len(ss)
    todo = []
    for i, (rid, key, s) in enumerate(zip(ids, keys, ss, strict=True)):
        r = _read(folder, key, arch)
        if r is not None:
            r.id = rid
            out[i] = r
        elif cached_only:
            out[i] = Relaxation(id=rid, status="pending", reason="not relaxed yet", key=key)
        else:
            todo.append((i, rid, key, s))
    with tqdm(total=len(ss), initial=len(ss) - len(todo), desc=f"relaxing ({model.name})", disable=not progress,
              unit="structure") as bar, threadpool_limits(1, user_api="blas"):
        if todo and scheduler is None:
            done = _relax_local(model, todo, settings, folder, batch_size, bar)
        elif todo:
            done = _relax_dask(model, todo, settings, folder, batch_size, scheduler, chunk, bar)
        else:
            done = {}
    for i, r in done.items():
        out[i] = r
    return out  # type: ignore[return-value]


def _relax_dask(model, todo, settings, folder, batch_size, scheduler, chunk, bar):
    from dask.distributed import Client, as_completed  # here: dask only for a cluster

    client = scheduler if isinstance(scheduler, Client) else Client(scheduler, timeout=30)
    try:
        items = [(i, rid, key, s.as_dict()) for i, rid, key, s in todo]
        futs = [client.submit(_relax_chunk, model, items[k : k + chunk], asdict(settings),
                              str(folder) if folder else None, batch_size, pure=False)
                for k in range(0, len(items), chunk)]
        done = {}
        for fut in as_completed(futs):
            for d in fut.result():
                i = d.pop("index")
                done[i] = Relaxation.from_json(d)
                done[i].cached = False
                bar.update(1)
        return done
    finally:
        if not isinstance(scheduler, Client):
            client.close()


def relax_one_by_one(model, structures: Sequence, settings: Settings | None = None) -> list[dict]:
    """The baseline the benchmark compares with: ASE's FIRE on a FrechetCellFilter with the potential's own ASE
    calculator (``model.ase_calculator()``: CHGNet's ``CHGNetCalculator``, what its ``StructOptimizer`` runs;
    SevenNet's ``SevenNetCalculator``), one structure after another, same fmax and step cap, no cache; the final
    energy through ``model.efs`` (on the scale the batched relaxation reports)."""
    settings = settings or Settings()
    calc = model.ase_calculator()
    out = []
    for s in structures:
        t0 = time.perf_counter()
        st = as_structure(s)
        with threadpool_limits(1, user_api="blas"):
            atoms = Atoms(numbers=st.atomic_numbers, cell=st.lattice.matrix, scaled_positions=st.frac_coords,
                          pbc=True)
            atoms.calc = calc
            opt = FIRE(FrechetCellFilter(atoms), logfile=None)
            opt.run(fmax=settings.fmax, steps=settings.max_steps)
            final = Structure(Lattice(np.array(atoms.cell)), atoms.numbers, atoms.get_scaled_positions())
            e = model.efs([final])[0]["e"]
        out.append({"energy_per_atom": float(e), "steps": int(opt.nsteps), "seconds": time.perf_counter() - t0})
    return out


def table(results: Sequence[Relaxation]):
    """The relaxations as a DataFrame (no structures)."""
    return pd.DataFrame([{k: v for k, v in asdict(r).items() if k != "structure"} for r in results])


def main(argv: list[str] | None = None) -> int:
    """``python -m lib.cathodes.relax archive [model ...]``: the cached relaxations into records/relax/."""
    ap = argparse.ArgumentParser(prog="python -m lib.cathodes.relax", description=main.__doc__)
    ap.add_argument("action", choices=("archive",))
    ap.add_argument("models", nargs="*", help="model names (default: every folder under the cache)")
    a = ap.parse_args(argv)
    names = a.models or (sorted(p.name for p in CACHE.iterdir() if p.is_dir()) if CACHE.is_dir() else [])
    for name in names:
        path = archive(name)
        print(f"{name}: {len(archived(name))} relaxations and static energies in {path.relative_to(ARCHIVE.parent)}; "
              "commit it")
    return 0


__all__ = ["Relaxation", "Settings", "relax", "relax_one_by_one", "structure_key", "static_energies", "STATIC",
           "table", "CACHE", "archive", "archived"]

if __name__ == "__main__":
    raise SystemExit(main())
