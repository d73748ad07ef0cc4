"""The screen's finalists: a voltage curve and a migration barrier for the top of the ranking (issue 42,
item 3).

The screen (:mod:`lib.cathodes.funnel`) ranks candidates by the specific energy of their *average* voltage
and full capacity. For its finalists, the top ``top`` passing rows of ``ScreenRun.final``, this module adds
what the average hides:

- a **voltage curve** (:func:`lib.cathodes.curves.voltage_curve`) of the relaxed discharged and charged
  structures: its steps, the lowest and highest step voltage, the capacity **accessible below the cutoff**
  (4.5 V by default, where carbonate electrolytes oxidise), its share of the full capacity, and the specific
  energy of those steps alone (Σ V·capacity over the steps at or below the cutoff, Wh/kg);
- a **migration barrier** (:func:`lib.cathodes.mobility.neb_barrier`) of the ion in the discharged structure:
  the first ``hops`` symmetry-distinct hops (shortest first; the hops of
  :func:`lib.cathodes.mobility.find_hops`, up to the length at which the ion's sites percolate), the lowest
  hop barrier (a hop's barrier is max(forward, backward): from the lower of its two sites to the saddle),
  which hop it is, and a **percolation** note: the lowest barrier B such that the hops computed with
  barriers ≤ B connect an ion site to its own periodic image (pymatgen-analysis-diffusion's
  ``MigrationGraph``), i.e. the barrier of long-range transport in at least one direction, or that the hops
  tried do not show one.

Nothing is silently dropped: every finalist keeps its row, with ``curve_status`` / ``curve_reason`` and
``barrier_status`` / ``barrier_reason`` (``ok``, ``not converged``, ``failed`` or ``skipped``), and
``attrs["finalists"]`` counts the failures by reason. :func:`rank_finalists` re-ranks them on the capacity
below the cutoff and the barrier and says what it used (``ranked_on`` column and ``attrs``).

**Cost, cache, resume.** Every curve and band is cached by the modules that make them (``data/curves/<model>``
and ``data/neb/<model>``, one JSON file per curve or band, a curve also after every chunk of structures), so
a killed run resumes where it stopped and a rerun computes nothing. ``python -m lib.cathodes.finalists
archive`` merges those folders into the committed ``records/curves/<model>.jsonl.gz`` and
``records/neb/<model>.jsonl.gz`` (:mod:`lib.cathodes.archive`); :func:`finalists` first restores the archived
entries a cache folder lacks, so a clean clone (CI) reads what an earlier run computed. A progress bar counts
the finalists.

**Settings** (:class:`FinalistSettings`, :data:`PROFILE_SETTINGS`): the defaults are the careful ones
(relaxed curves at quarters with 3 orderings a content, the three shortest hops with the full NEB settings:
minutes to an hour a finalist on a CPU); the ``smoke`` profile's are a test of the pipeline in CI's time
(static curves of the two ends and one ordering at x = ½, the shortest hop in a band of 3 images and 15 steps:
its barriers are usually ``not converged``, marked as such; about 40 s of one core a finalist).
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from lib.cathodes import archive as arch
from lib.cathodes import curves as C
from lib.cathodes import mobility as M
from lib.structures import as_structure

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from tqdm.auto import tqdm

DEFAULT = object()  # the default cache folders: data/curves/<model>, data/neb/<model>
CUTOFF = C.CUTOFF  # 4.5 V

CURVE_COLUMNS = (
    "curve_status",
    "curve_reason",
    "curve_steps",
    "curve_v_min",
    "curve_v_max",
    "curve_avg_voltage",
    "capacity_total",
    "capacity_below_cutoff",
    "capacity_share_below_cutoff",
    "specific_energy_below_cutoff",
    "curve_skipped",
    "curve_seconds",
    "curve",
)
BARRIER_COLUMNS = (
    "barrier_status",
    "barrier_reason",
    "barrier",
    "barrier_hop",
    "barrier_hop_length",
    "barrier_hops_tried",
    "barrier_hops_found",
    "barrier_max_tried",
    "percolation_barrier",
    "percolation",
    "barrier_seconds",
    "barriers",
)


@dataclass(frozen=True)
class FinalistSettings:
    """How the finalists are computed (module docstring). ``hops``: the first N distinct hops (None: all that
    :func:`lib.cathodes.mobility.find_hops` gives); ``neb``: the band's settings."""

    top: int = 20
    curve: bool = True
    barrier: bool = True
    static_curve: bool = False
    fractions: tuple[float, ...] = C.QUARTERS
    n_orderings: int = 3
    max_cells: int = 4
    max_atoms: int = 64
    hops: int | None = 3
    neb: M.NEBSettings = field(default_factory=M.NEBSettings)
    cutoff: float = CUTOFF

    def as_dict(self) -> dict:
        d = asdict(self)
        d["fractions"] = list(self.fractions)
        return d


#: the smoke profile's: static curves of the two ends and one ordering at x = 1/2, the shortest hop in a small
#: cell with 3 images and few steps (a test of the pipeline: about a minute a finalist on one busy core)
SMOKE = FinalistSettings(
    top=3,
    static_curve=True,
    fractions=(0.5,),
    n_orderings=1,
    max_cells=2,
    max_atoms=48,
    hops=1,
    neb=M.NEBSettings(n_images=3, fmax=0.1, max_steps=15, relax_steps=15, min_length=5.0, max_atoms=64),
)
#: settings per profile of lib.profiles (the screen's sizes): smoke is quick, the others careful
PROFILE_SETTINGS: dict[str, FinalistSettings] = {
    "smoke": SMOKE,
    "quick": FinalistSettings(top=10, static_curve=True, hops=1),
    "thesis": FinalistSettings(top=20),
    "best": FinalistSettings(top=20),
    "long": FinalistSettings(top=20),
}


def settings_for(profile) -> FinalistSettings:
    """The settings of a profile (a name or a ``lib.profiles.Profile``); unknown names get the careful
    ones."""
    name = getattr(profile, "name", profile)
    return PROFILE_SETTINGS.get(str(name), FinalistSettings())


# ----------------------------------------------------------------------------------------------
# one finalist
# ----------------------------------------------------------------------------------------------


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _nan_curve(status: str, reason: str) -> dict:
    return {
        "curve_status": status,
        "curve_reason": reason,
        "curve_steps": 0,
        "curve_v_min": math.nan,
        "curve_v_max": math.nan,
        "curve_avg_voltage": math.nan,
        "capacity_total": math.nan,
        "capacity_below_cutoff": math.nan,
        "capacity_share_below_cutoff": math.nan,
        "specific_energy_below_cutoff": math.nan,
        "curve_skipped": "",
        "curve_seconds": 0.0,
        "curve": None,
    }


def curve_columns(curve: C.Curve, cutoff: float) -> dict:
    """The finalist's curve columns (:data:`CURVE_COLUMNS`) of a :class:`lib.cathodes.curves.Curve`."""
    if not curve.ok:
        return {**_nan_curve("failed", curve.error or "no voltage step"), "curve_seconds": curve.seconds}
    st = curve.steps
    v = st["voltage"].to_numpy(float)
    cap = st["capacity_grav"].to_numpy(float)
    below = v <= cutoff
    total = float(curve.capacity_grav)
    acc = float(cap[below].sum())
    return {
        "curve_status": "ok",
        "curve_reason": "",
        "curve_steps": int(len(st)),
        "curve_v_min": float(v.min()),
        "curve_v_max": float(v.max()),
        "curve_avg_voltage": float(curve.average_voltage),
        "capacity_total": total,
        "capacity_below_cutoff": acc,
        "capacity_share_below_cutoff": acc / total if total > 0 else math.nan,
        "specific_energy_below_cutoff": float((v[below] * cap[below]).sum()),  # mAh/g · V = Wh/kg
        "curve_skipped": "; ".join(curve.skipped),
        "curve_seconds": float(curve.seconds),
        "curve": st[["x_charge", "x_discharge", "voltage", "capacity_grav"]].to_dict("records"),
    }


def percolation(
    structure, ion: str, results: Sequence[M.NEBResult], hops: Sequence[M.Hop]
) -> tuple[float, str]:
    """(the percolation barrier, a note): the lowest B such that the computed hops with barrier ≤ B (each
    hop's barrier applied to every hop symmetry-equivalent to it) connect an ion site to its periodic image,
    by pymatgen-analysis-diffusion's ``MigrationGraph``; NaN and why when the hops tried show no such path."""
    done = [
        (h, r)
        for h, r in zip(hops, results, strict=True)
        if r.status != "failed" and math.isfinite(_hop_barrier(r))
    ]
    if not done:
        return math.nan, "no barrier computed"
    try:
        from pymatgen.analysis.diffusion.neb.full_path_mapper import MigrationGraph
        from pymatgen.analysis.diffusion.neb.pathfinder import MigrationHop
        from pymatgen.core import PeriodicSite
    except ImportError:
        return math.nan, "not checked: pymatgen-analysis-diffusion is not installed"
    s = as_structure(structure)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = MigrationGraph.with_distance(s, ion, max(h.length for h, _ in done) + 0.01)
            costs = {}
            for label, d in graph.unique_hops.items():
                gh = d["hop"]
                cost = math.inf
                for h, r in done:
                    if abs(h.length - gh.length) > 0.01:
                        continue
                    end = PeriodicSite(s[h.end].species, s[h.end].frac_coords + np.array(h.image), s.lattice)
                    mh = MigrationHop(s[h.start], end, gh.symm_structure, symprec=0.1)
                    if mh == gh:
                        cost = min(cost, _hop_barrier(r))
                costs[label] = cost
            for label, cost in costs.items():
                graph.add_data_to_similar_edges(label, {"cost": cost})
            for b in sorted({c for c in costs.values() if math.isfinite(c)}):
                if next(iter(graph.get_path(max_val=b + 1e-9)), None) is not None:
                    return b, (
                        f"percolates through hops ≤ {b:.3f} eV ({sum(c <= b for c in costs.values())} of "
                        f"{len(costs)} distinct hops up to {max(h.length for h, _ in done):.2f} Å)"
                    )
    except Exception as exc:  # noqa: BLE001 - the note says it could not be told; the barrier stands
        return math.nan, f"not determined ({_why(exc)})"
    return math.nan, (
        f"the {len(done)} hop(s) computed do not connect a site to its periodic image: "
        "no percolating path shown"
    )


def _hop_barrier(r: M.NEBResult) -> float:
    """A hop's barrier: from the lower of its two end states to the saddle (max of forward and backward)."""
    if r.status == "failed":
        return math.nan
    vals = [b for b in (r.barrier_forward, r.barrier_backward) if b is not None and math.isfinite(b)]
    return max(vals) if vals else math.nan


def _nan_barrier(status: str, reason: str) -> dict:
    return {
        "barrier_status": status,
        "barrier_reason": reason,
        "barrier": math.nan,
        "barrier_hop": "",
        "barrier_hop_length": math.nan,
        "barrier_hops_tried": 0,
        "barrier_hops_found": 0,
        "barrier_max_tried": math.nan,
        "percolation_barrier": math.nan,
        "percolation": "",
        "barrier_seconds": 0.0,
        "barriers": None,
    }


def barrier_columns(
    structure,
    ion: str,
    results: Sequence[M.NEBResult],
    hops: Sequence[M.Hop],
    n_found: int,
    seconds: float = 0.0,
) -> dict:
    """The finalist's barrier columns (:data:`BARRIER_COLUMNS`) of the bands of ``hops``: the lowest hop
    barrier among the converged bands (else among the unconverged ones, status ``not converged``)."""
    rows = [
        {
            "hop": k,
            "length": round(h.length, 3),
            "status": r.status,
            "barrier": _hop_barrier(r),
            "reason": r.reason,
            "cached": r.cached,
        }
        for k, (h, r) in enumerate(zip(hops, results, strict=True))
    ]
    out = _nan_barrier("failed", "")
    out.update(
        barrier_hops_tried=len(hops), barrier_hops_found=n_found, barrier_seconds=seconds, barriers=rows
    )
    conv = [x for x in rows if x["status"] == "converged" and math.isfinite(x["barrier"])]
    rough = [x for x in rows if x["status"] == "not converged" and math.isfinite(x["barrier"])]
    pool = conv or rough
    if not pool:
        out["barrier_reason"] = (
            "; ".join(f"hop {x['hop']} ({x['length']} Å): {x['status']}: {x['reason']}" for x in rows)
            or "no hop"
        )
        return out
    best = min(pool, key=lambda x: x["barrier"])
    out.update(
        barrier=best["barrier"],
        barrier_hop=f"hop {best['hop']} of {n_found}, {best['length']:.2f} Å",
        barrier_hop_length=best["length"],
        barrier_max_tried=max(x["barrier"] for x in pool),
        barrier_status="ok" if conv else "not converged",
    )
    notes = [
        f"hop {x['hop']} ({x['length']} Å): {x['status']}" + (f": {x['reason']}" if x["reason"] else "")
        for x in rows
        if x["status"] != "converged"
    ]
    out["barrier_reason"] = "; ".join(notes)
    pb, note = percolation(structure, ion, results, hops)
    out.update(percolation_barrier=pb, percolation=note)
    return out


# ----------------------------------------------------------------------------------------------
# the finalists
# ----------------------------------------------------------------------------------------------


def _potential(potential):
    if isinstance(potential, str):
        from lib.cathodes.potentials import get_potential  # here: the networks only when used

        return get_potential(potential)
    return potential


def pick(final: pd.DataFrame, top: int) -> pd.DataFrame:
    """The top ``top`` passing rows of the screen's final table in rank order (all rows when it has no
    ``passes`` column)."""
    t = final
    if "passes" in t.columns:
        t = t[t["passes"].fillna(False).astype(bool)]
    if "rank" in t.columns:
        t = t.sort_values("rank", kind="stable")
    return t.head(max(int(top), 0))


def _folders(potential_name: str, curve_cache, neb_cache) -> tuple[Path | None, Path | None]:
    cf = (
        (C.CACHE / potential_name) if curve_cache is DEFAULT else (Path(curve_cache) if curve_cache else None)
    )
    nf = (M.CACHE / potential_name) if neb_cache is DEFAULT else (Path(neb_cache) if neb_cache else None)
    return cf, nf


def finalists(
    final: pd.DataFrame,
    ion: str,
    potential="sevennet",
    top: int = 20,
    *,
    curve: bool = True,
    barrier: bool = True,
    static_curve: bool = False,
    neb_settings: M.NEBSettings | None = None,
    progress: bool = True,
    cutoff: float = CUTOFF,
    settings: FinalistSettings | None = None,
    curve_cache=DEFAULT,
    neb_cache=DEFAULT,
    archive_dir: str | Path | None = None,
) -> pd.DataFrame:
    """A voltage curve and a migration barrier for each of the screen's finalists (module docstring).

    ``final``: the screen's ranked table (``ScreenRun.final``: ``rank``, ``passes``, ``formula``,
    ``candidate_id``, relaxed ``discharged`` and ``charged``); the top ``top`` passing rows are computed, in
    rank order. ``potential``: a name of ``lib.cathodes.potentials.POTENTIALS`` or a potential object
    (``name``, ``energies``, ``ion_energy``; ``efs`` to relax curves; ``ase_calculator()`` for the bands).
    ``settings``: a :class:`FinalistSettings` (e.g. :func:`settings_for` a profile); when given it decides
    everything, and ``top``, ``curve``, ``barrier``, ``static_curve``, ``neb_settings`` and ``cutoff`` are
    ignored; without it those arguments make the settings (the other fields at their careful defaults).
    ``curve_cache`` / ``neb_cache``: folders (default ``data/curves/<model>``, ``data/neb/<model>``; None: no
    cache); ``archive_dir``: a folder holding ``curves/`` and ``neb/`` archives (default ``records``).

    Returns the finalists' rows of ``final`` (``discharged`` and ``charged`` kept) with
    :data:`CURVE_COLUMNS` and :data:`BARRIER_COLUMNS`; ``attrs["finalists"]`` holds the settings, the
    counts of failures by reason and the seconds.
    """
    if settings is None:
        settings = FinalistSettings(
            top=top,
            curve=curve,
            barrier=barrier,
            static_curve=static_curve,
            neb=neb_settings or M.NEBSettings(),
            cutoff=cutoff,
        )
    pot = _potential(potential)
    cf, nf = _folders(pot.name, curve_cache, neb_cache)
    restored = _restore(pot.name, {"curves": cf, "neb": nf}, archive_dir)
    picked = pick(final, settings.top)
    t0 = time.perf_counter()
    rows = []
    calc: list = []  # the ASE calculator (or why there is none), made once at the first barrier
    bar = tqdm(list(picked.iterrows()), desc=f"finalists ({pot.name})", unit="finalist", disable=not progress)
    for _, row in bar:
        bar.set_postfix_str(str(row.get("formula", "") or row.get("candidate_id", "")))
        rows.append(_one_finalist(pot, row, ion, settings, cf, nf, calc))
    extra = pd.DataFrame(rows, index=picked.index, columns=[*CURVE_COLUMNS, *BARRIER_COLUMNS])
    t = pd.concat([picked.drop(columns=[c for c in extra.columns if c in picked.columns]), extra], axis=1)
    t = t.reset_index(drop=True)
    t.attrs["finalists"] = {
        "potential": pot.name,
        "ion": ion,
        "n": int(len(t)),
        "settings": settings.as_dict(),
        "curve_failed": dict(Counter(t.loc[t["curve_status"] == "failed", "curve_reason"])),
        "barrier_failed": dict(Counter(t.loc[t["barrier_status"] == "failed", "barrier_reason"])),
        "curve_ok": int((t["curve_status"] == "ok").sum()),
        "barrier_ok": int((t["barrier_status"] == "ok").sum()),
        "barrier_not_converged": int((t["barrier_status"] == "not converged").sum()),
        "restored_from_archive": restored,
        "seconds": time.perf_counter() - t0,
    }
    return t


def _restore(name: str, folders: dict, archive_dir: str | Path | None) -> dict[str, int]:
    """Write the archived records each cache folder lacks into it (:func:`lib.cathodes.archive.restore`)."""
    out = {}
    for kind, folder in folders.items():
        if folder is not None:
            ad = Path(archive_dir) / kind if archive_dir is not None else None
            out[kind] = arch.restore(folder, kind, name, ad)
    return out


def _one_finalist(pot, row, ion: str, settings: FinalistSettings, cf, nf, calc: list) -> dict:
    """One finalist's curve and barrier columns (skipped ones say so); ``calc`` holds the calculator once made."""
    out = (_one_curve(pot, row, ion, settings, cf) if settings.curve
           else _nan_curve("skipped", "curves not asked for"))
    if not settings.barrier:
        return {**out, **_nan_barrier("skipped", "barriers not asked for")}
    if not calc:
        try:
            calc.append(pot.ase_calculator())
        except Exception as exc:  # noqa: BLE001 - no calculator: every barrier says why
            calc.append(exc)
    if isinstance(calc[0], Exception):
        return {**out, **_nan_barrier("failed", f"no ASE calculator: {_why(calc[0])}")}
    return {**out, **_one_barrier(calc[0], pot.name, row, ion, settings, nf)}


def _one_curve(pot, row, ion: str, s: FinalistSettings, folder: Path | None) -> dict:
    t0 = time.perf_counter()
    try:
        d, c = row.get("discharged"), row.get("charged")
        if d is None or (isinstance(d, float) and math.isnan(d)):
            return _nan_curve("failed", "no relaxed discharged structure")
        c = None if c is None or (isinstance(c, float) and math.isnan(c)) else c
        curve = C.voltage_curve(
            pot,
            d,
            ion,
            c,
            fractions=s.fractions,
            relax=not s.static_curve,
            n_orderings=s.n_orderings,
            max_cells=s.max_cells,
            max_atoms=s.max_atoms,
            cutoff=s.cutoff,
            cache=folder if folder is not None else None,
            progress=False,
        )
    except Exception as exc:  # noqa: BLE001 - one finalist's failure is its own row, never the run's
        return {**_nan_curve("failed", _why(exc)), "curve_seconds": time.perf_counter() - t0}
    out = curve_columns(curve, s.cutoff)
    out["curve_seconds"] = time.perf_counter() - t0
    return out


def _one_barrier(calc, potential_name: str, row, ion: str, s: FinalistSettings, folder: Path | None) -> dict:
    t0 = time.perf_counter()
    try:
        d = row.get("discharged")
        if d is None or (isinstance(d, float) and math.isnan(d)):
            return _nan_barrier("failed", "no relaxed discharged structure")
        st = as_structure(d)
        found = M.find_hops(st, ion)
        if not found:
            return _nan_barrier("failed", f"no hop of {ion} found")
        hops = found if s.hops is None else found[: s.hops]
        results = [
            M.neb_barrier(
                st,
                h,
                calc,
                settings=s.neb,
                potential=potential_name,
                cache=folder if folder is not None else None,
                id=str(row.get("candidate_id", "") or ""),
            )
            for h in hops
        ]
    except Exception as exc:  # noqa: BLE001 - one finalist's failure is its own row, never the run's
        return {**_nan_barrier("failed", _why(exc)), "barrier_seconds": time.perf_counter() - t0}
    return barrier_columns(st, ion, results, hops, len(found), time.perf_counter() - t0)


# ----------------------------------------------------------------------------------------------
# the re-ranking
# ----------------------------------------------------------------------------------------------

USES = ("capacity_below_cutoff", "barrier")


def rank_finalists(
    t: pd.DataFrame, use: Sequence[str] = USES, max_barrier: float = 0.5, converged_only: bool = False
) -> pd.DataFrame:
    """The finalists re-ranked (``final_rank``; the screen's rank stays in ``rank``).

    ``use`` ⊆ {"capacity_below_cutoff", "barrier"}: with ``capacity_below_cutoff`` the score is the specific
    energy of the steps below the cutoff (``specific_energy_below_cutoff``, Wh/kg), else the screen's
    ``specific_energy`` (average voltage × full capacity). With ``barrier`` only finalists whose barrier is
    ≤ ``max_barrier`` eV rank first; the others follow, each with its reason in ``rank_note`` (barrier too
    high, no barrier, no curve), ordered by score then by the screen's rank. ``converged_only``: a barrier of
    an unconverged band counts as no barrier (by default it counts, and ``rank_note`` says it is
    unconverged). ``ranked_on`` (column and ``attrs["ranked_on"]``) says in words what the order used."""
    unknown = set(use) - set(USES)
    if unknown:
        raise ValueError(f"unknown criteria {sorted(unknown)}: use any of {USES}")
    t = t.copy()
    use_cap, use_bar = "capacity_below_cutoff" in use, "barrier" in use
    cutoff = t.attrs.get("finalists", {}).get("settings", {}).get("cutoff", CUTOFF)
    if use_cap:
        score = t["specific_energy_below_cutoff"].astype(float)
        what = f"specific energy below {cutoff:g} V (Wh/kg, the curve's steps at or below the cutoff)"
    else:
        score = (
            t["specific_energy"].astype(float)
            if "specific_energy" in t.columns
            else pd.Series(np.nan, t.index)
        )
        what = "the screen's specific energy (average voltage × full capacity)"
    notes, group = [], []
    for i in t.index:
        why = []
        if use_cap and t.at[i, "curve_status"] != "ok":
            why.append(f"no curve ({t.at[i, 'curve_status']}: {t.at[i, 'curve_reason']})")
        if use_bar:
            st, b = t.at[i, "barrier_status"], float(t.at[i, "barrier"])
            usable = st == "ok" or (st == "not converged" and not converged_only)
            if not usable or not math.isfinite(b):
                why.append(f"no barrier ({st}: {t.at[i, 'barrier_reason']})")
            elif b > max_barrier:
                why.append(f"barrier {b:.3f} eV > {max_barrier:g} eV")
        note = "; ".join(why)
        if use_bar and t.at[i, "barrier_status"] == "not converged" and not converged_only:
            note = "; ".join(x for x in (note, "barrier from an unconverged band") if x)
        notes.append(note)
        group.append(1 if why else 0)
    t["rank_note"] = notes
    t["_group"] = group
    t["_score"] = score.fillna(-np.inf)
    screen_rank = t["rank"] if "rank" in t.columns else pd.Series(np.arange(1, len(t) + 1), t.index)
    t["_screen"] = screen_rank.to_numpy()
    t = t.sort_values(["_group", "_score", "_screen"], ascending=[True, False, True], kind="stable")
    t = t.drop(columns=["_group", "_score", "_screen"]).reset_index(drop=True)
    t["final_rank"] = np.arange(1, len(t) + 1)
    ranked_on = what + (
        f"; barrier ≤ {max_barrier:g} eV first "
        f"({'converged bands only' if converged_only else 'unconverged bands counted, marked'})"
        if use_bar
        else "; barrier not used"
    )
    t["ranked_on"] = ranked_on
    t.attrs["ranked_on"] = ranked_on
    t.attrs["rank_use"] = tuple(use)
    t.attrs["max_barrier"] = max_barrier if use_bar else None
    return t


def failures(t: pd.DataFrame) -> pd.DataFrame:
    """Every finalist that lacks a curve or a barrier, with the reason (one row per missing result)."""
    rows = []
    for _, r in t.iterrows():
        for what in ("curve", "barrier"):
            if r[f"{what}_status"] not in ("ok",):
                rows.append(
                    {
                        "formula": r.get("formula", ""),
                        "candidate_id": r.get("candidate_id", ""),
                        "what": what,
                        "status": r[f"{what}_status"],
                        "reason": r[f"{what}_reason"],
                    }
                )
    return pd.DataFrame(rows, columns=["formula", "candidate_id", "what", "status", "reason"])


# ----------------------------------------------------------------------------------------------
# the archive
# ----------------------------------------------------------------------------------------------


def archive(
    potential_name: str,
    curve_cache: str | Path | None = None,
    neb_cache: str | Path | None = None,
    archive_dir: str | Path | None = None,
) -> dict[str, tuple[Path, int]]:
    """Merge a model's curve and band caches (default ``data/curves/<model>``, ``data/neb/<model>``) into
    ``records/curves/<model>.jsonl.gz`` and ``records/neb/<model>.jsonl.gz`` (``archive_dir``: a folder
    holding ``curves/`` and ``neb/``). Only finished curves (``complete``) and computed bands (not
    ``failed``) are archived. Returns ``{kind: (file, records)}``."""
    cf = Path(curve_cache) if curve_cache is not None else C.CACHE / potential_name
    nf = Path(neb_cache) if neb_cache is not None else M.CACHE / potential_name
    ad = (lambda kind: Path(archive_dir) / kind) if archive_dir is not None else (lambda kind: None)
    return {
        "curves": arch.archive_folder(
            cf, "curves", potential_name, ad("curves"), keep=lambda d: bool(d.get("complete"))
        ),
        "neb": arch.archive_folder(
            nf, "neb", potential_name, ad("neb"), keep=lambda d: d.get("status") != "failed"
        ),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lib.cathodes.finalists archive [model ...]``: the cached curves and NEB bands into
    records/."""
    ap = argparse.ArgumentParser(prog="python -m lib.cathodes.finalists", description=main.__doc__)
    ap.add_argument("action", choices=("archive",))
    ap.add_argument("models", nargs="*", help="model names, e.g. sevennet-0 (default: every cache folder)")
    a = ap.parse_args(argv)
    names = a.models or sorted(
        {p.name for base in (C.CACHE, M.CACHE) if base.is_dir() for p in base.iterdir() if p.is_dir()}
    )
    for name in names:
        for kind, (path, n) in archive(name).items():
            print(f"{name}: {n} {kind} records in {path}; commit it")
    return 0


__all__ = [
    "BARRIER_COLUMNS",
    "CURVE_COLUMNS",
    "FinalistSettings",
    "PROFILE_SETTINGS",
    "SMOKE",
    "archive",
    "barrier_columns",
    "curve_columns",
    "failures",
    "finalists",
    "percolation",
    "pick",
    "rank_finalists",
    "settings_for",
]

if __name__ == "__main__":
    raise SystemExit(main())
