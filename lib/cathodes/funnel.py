"""The screen as a funnel: a cheap model over every candidate, a universal potential on the most promising.

1. **GNN stage** (:func:`lib.cathodes.screen.screen`): the formation-energy ensemble scores every candidate
   on its unrelaxed structures against the mirror's DFT hull (seconds for a thousand candidates).
2. **Selection** (:func:`select_promising`): the ``top`` candidates that could still pass given the GNN's
   uncertainty: a voltage window widened by 2 σ_V, ordered by an optimistic E_hull (E_hull − σ of the
   discharged state's energy). The GNN's errors are large (0.1 eV/atom put LiFePO4 above the hull), so it
   only orders the queue; it decides nothing on its own.
3. **uMLIP stage** (:func:`refine`): both states of each selected candidate relaxed with the universal
   potential (:mod:`lib.cathodes.relax`, batched, cached); the energy above a hull of the mirror's phases
   relaxed with the same model (:class:`lib.cathodes.hull.PotentialHull`); voltage, capacities and
   specific energy through pymatgen from the relaxed energies and cells, the ion's metal from the same
   model. σ_V is the potential's own error on MP's electrodes of that ion (the 68.3 % quantile of
   |V − V_MP| on the benchmark pairs, :func:`sigma_from_benchmark`), and ``dv_gnn`` says how far the GNN's
   voltage was from it.
4. **Ranking**: a candidate passes when both relaxations converged, E_hull(discharged) ≤ ``max_e_hull`` and
   the voltage lies in ``v_window``; passing ones are ranked by specific energy (``rank_umlip``). A relaxed
   candidate *below* the known hull is kept and flagged (``below_hull``): with relaxed energies of one model
   on both sides it is a possible discovery, not the model error it was for an unrelaxed GNN guess.

:func:`funnel_counts` says how many candidates reached each stage and why the others dropped (the funnel
figure, :func:`lib.cathodes.plots.funnel`). :func:`known_cathodes_relaxed` puts the known cathodes through
the uMLIP stage exactly as the screen builds candidates.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.transformations.standard_transformations import RemoveSpeciesTransformation

from lib.cathodes import stability
from lib.cathodes.candidates import find_prototypes, generate_candidates
from lib.cathodes.electrodes import ElectrodeError, pair_properties
from lib.cathodes.hull import Hull, PotentialHull
from lib.cathodes.relax import relax
from lib.cathodes.screen import pareto_mask, screen
from lib.cathodes.voltage_model import predict_pairs
from lib.structures import as_structure

UMLIP_COLUMNS = ("umlip_status", "umlip_e_discharged", "umlip_e_charged", "umlip_e_hull_discharged",
                 "umlip_e_hull_charged", "umlip_voltage", "umlip_voltage_std", "umlip_capacity_grav",
                 "umlip_specific_energy", "umlip_energy_density", "umlip_volume_change", "umlip_relax_volume_change",
                 "o2_mu_onset", "o2_t_onset", "o2_products", "stability_reason", "dv_gnn",
                 "below_hull", "umlip_why_not", "umlip_passes", "umlip_discharged", "umlip_charged")
#: the voltage model's columns (lib.cathodes.voltage_model on the relaxed pair) and its ranking
VM_COLUMNS = ("vm_voltage", "vm_voltage_std", "vm_specific_energy", "rank_vm")


def sigma_from_benchmark(pairs: pd.DataFrame, pred: str = "umlip_relaxed_voltage", ref: str = "avg_voltage",
                         q: float = 0.683) -> dict[str, float]:
    """σ_V of a model per ion: the ``q`` quantile of |pred − ref| on the benchmark pairs of that ion (all ions
    pooled for an ion with fewer than 10 pairs, key ``"all"``)."""
    err = (pairs[pred] - pairs[ref]).abs()
    ok = err.notna()
    out = {"all": float(err[ok].quantile(q))}
    for ion, e in err[ok].groupby(pairs.loc[ok, "ion"]):
        out[ion] = float(e.quantile(q)) if len(e) >= 10 else out["all"]
    return out


def select_promising(scored: pd.DataFrame, top: int, v_window: tuple[float, float] = (2.5, 4.8),
                     z: float = 1.0) -> pd.Index:
    """The index of the ``top`` GNN-scored candidates that could pass (module docstring, step 2)."""
    if scored.empty or top <= 0:
        return scored.index[:0]
    v = scored["voltage"].to_numpy(float)
    sv = np.nan_to_num(scored["voltage_std"].to_numpy(float))
    eh = scored["e_hull_discharged"].to_numpy(float)
    se = np.nan_to_num(scored["ef_discharged_std"].to_numpy(float))
    ok = np.isfinite(v) & np.isfinite(eh) & (v + 2 * sv >= v_window[0]) & (v - 2 * sv <= v_window[1])
    optimistic = pd.Series(np.where(ok, eh - z * se, np.inf), index=scored.index)
    optimistic = optimistic[ok]
    return optimistic.sort_values(kind="stable").index[:top]


@dataclass(frozen=True)
class Criteria:
    """What a candidate must meet after the potential's stage (``None``: not a criterion, reported only).

    E_hull of the discharged state (``max_e_hull``) and of the charged one (``max_e_hull_charged``; charged
    cathodes are metastable by nature: delithiated layered oxides and λ-MnO2 sit ~0.05-0.15 eV/atom above
    their hulls, hence a looser limit), the voltage window, the volume change on removing the ion (absolute,
    %; pymatgen's ``max_delta_volume`` is the same number) and the O2 release onset of a charged oxide (K, O2
    at 1 atm; :func:`lib.cathodes.stability.oxygen_release_onset`). Checked in this order; the first failed
    one is the candidate's ``why_not``."""

    max_e_hull: float = 0.1
    max_e_hull_charged: float | None = 0.2
    v_window: tuple[float, float] = (2.5, 4.8)
    max_volume_change: float | None = None
    min_o2_onset: float | None = None

    def judge(self, r: dict) -> str:
        """``""`` when the row (the uMLIP numbers of :func:`_relaxed_pair`) passes, else why not."""
        status, eh, v = r.get("umlip_status", ""), r.get("umlip_e_hull_discharged", np.nan), \
            r.get("umlip_voltage", np.nan)
        if status != "converged":
            return f"relaxation {status}"
        if not (np.isfinite(eh) and np.isfinite(v)):
            return "not scored"
        if eh > self.max_e_hull:
            return f"E_hull > {self.max_e_hull:g} eV/atom"
        ehc = r.get("umlip_e_hull_charged", np.nan)
        if self.max_e_hull_charged is not None and not ehc <= self.max_e_hull_charged:
            return f"charged E_hull > {self.max_e_hull_charged:g} eV/atom"
        if not self.v_window[0] <= v <= self.v_window[1]:
            return f"V outside {self.v_window[0]:g}-{self.v_window[1]:g} V"
        dv = abs(r.get("umlip_volume_change", np.nan))
        if self.max_volume_change is not None and not dv <= self.max_volume_change:
            return f"volume change > {self.max_volume_change:g} %"
        t = r.get("o2_t_onset", np.nan)
        if self.min_o2_onset is not None and np.isfinite(t) and t < self.min_o2_onset:
            return f"O2 release below {self.min_o2_onset:g} K"
        return ""


def _relaxed_pair(rd, rc, hull, ion: str, mu: float, exclude_ids: Sequence[str] = ()) -> dict:
    """The uMLIP numbers of one relaxed discharged/charged pair (NaN where a relaxation failed): E_hull of both
    states, voltage and capacities, the volume change on removing the ion (signed, %: negative when the cell
    shrinks, :func:`lib.cathodes.stability.volume_change`), and for an oxide the charged state's O2 release
    onset (:func:`lib.cathodes.stability.oxygen_release_onset`); ``stability_reason`` says why one is missing."""
    status = rd.status if not rd.ok else rc.status
    if not rd.ok or not rc.ok:
        bad = rd if not rd.ok else rc
        return {"umlip_status": f"{'discharged' if bad is rd else 'charged'}: {bad.status} ({bad.reason})",
                "umlip_e_discharged": rd.energy_per_atom, "umlip_e_charged": rc.energy_per_atom}
    r = {"umlip_status": status, "umlip_e_discharged": rd.energy_per_atom, "umlip_e_charged": rc.energy_per_atom,
         "umlip_relax_volume_change": rd.volume_change}
    why = []
    try:
        r["umlip_e_hull_discharged"] = hull.e_above_hull(rd.structure, rd.energy_per_atom, exclude_ids)
        r["umlip_e_hull_charged"] = hull.e_above_hull(rc.structure, rc.energy_per_atom, exclude_ids)
    except ValueError as exc:  # e.g. no usable elemental phase in the sources
        r["umlip_status"] = f"no hull: {exc}"
    try:
        p = pair_properties(rc.structure, rd.structure, rc.energy_per_atom, rd.energy_per_atom, ion, ion_energy=mu)
        r.update({f"umlip_{k}": p[k] for k in ("voltage", "capacity_grav", "specific_energy", "energy_density")})
    except (ElectrodeError, ValueError) as exc:
        r["umlip_status"] = f"not an electrode: {exc}"
    try:
        r["umlip_volume_change"] = stability.volume_change(rc.structure, rd.structure, ion, signed=True)
    except ValueError as exc:
        why.append(f"no volume change: {exc}")
    if "O" in {e.symbol for e in as_structure(rc.structure).composition.elements}:
        try:
            o2 = stability.oxygen_release_onset(rc.structure, rc.energy_per_atom, hull, exclude_ids)
            r.update(o2_mu_onset=o2.mu_o, o2_products=" + ".join(o2.products),
                     o2_t_onset=np.nan if o2.t_onset is None else o2.t_onset)
            if o2.t_onset is None:
                why.append("O2 onset above 2000 K")
        except ValueError as exc:
            why.append(f"no O2 onset: {exc}")
    else:
        why.append("not an oxide: no O2 release")
    r["stability_reason"] = "; ".join(why)
    return r


def refine(scored: pd.DataFrame, model, hull, ion: str = "Li", top: int = 100,
           max_e_hull: float = 0.1, v_window: tuple[float, float] = (2.5, 4.8),
           sigma_v: dict[str, float] | None = None, progress: bool = True, voltage_model=None,
           criteria: Criteria | None = None, **relax_kwargs) -> pd.DataFrame:
    """The uMLIP stage and the final ranking (module docstring, steps 2-4) on a GNN-scored screen.

    Adds :data:`UMLIP_COLUMNS` (NaN / empty for candidates not selected), ``selected``, ``stage`` (where the
    candidate left the funnel, or ``passes``) and ``rank_umlip`` (1 = best passing); ``attrs["umlip"]``
    holds the settings and timings. With ``voltage_model`` (:class:`lib.cathodes.correction.VoltageModel`)
    also :data:`VM_COLUMNS`: its voltage and σ_V on the relaxed pair, the specific energy from it and the
    passing candidates' rank by that (``rank_vm``), next to the universal potential's. ``hull``: a
    :class:`lib.cathodes.stability.SystemHull` of the same model (every phase of each system) or a
    :class:`lib.cathodes.hull.PotentialHull`; ``criteria`` (default: ``max_e_hull``, ``v_window`` and
    :class:`Criteria`'s other defaults) decides who passes."""
    crit = criteria or Criteria(max_e_hull=max_e_hull, v_window=tuple(v_window))
    max_e_hull, v_window = crit.max_e_hull, crit.v_window
    t0 = time.perf_counter()
    out = scored.copy()
    sel = select_promising(out, top, v_window)
    out["selected"] = out.index.isin(sel)
    sub = out.loc[sel]
    n = len(sub)
    structures = list(sub["discharged"]) + list(sub["charged"])
    ids = [f"{c}|discharged" for c in sub["candidate_id"]] + [f"{c}|charged" for c in sub["candidate_id"]]
    rs = relax(model, structures, ids=ids, progress=progress, **relax_kwargs) if n else []
    t_relax = time.perf_counter() - t0
    hull.prepare([sorted({e.symbol for e in r.structure.to_structure().composition})
                  for r in rs[:n] if r.ok])
    mu = model.ion_energy(ion) if n else np.nan
    sig = (sigma_v or {}).get(ion, (sigma_v or {}).get("all", np.nan))
    rows = {}
    for k, idx in enumerate(sub.index):
        r = _relaxed_pair(rs[k], rs[n + k], hull, ion, mu)
        r["umlip_discharged"], r["umlip_charged"] = rs[k].structure, rs[n + k].structure
        r["umlip_voltage_std"] = sig
        r["dv_gnn"] = r.get("umlip_voltage", np.nan) - out.at[idx, "voltage"]
        r["below_hull"] = bool(min(r.get("umlip_e_hull_discharged", np.inf),
                                   r.get("umlip_e_hull_charged", np.inf)) < 0)
        r["umlip_why_not"] = crit.judge(r)
        r["umlip_passes"] = r["umlip_why_not"] == ""
        rows[idx] = r
    extra = pd.DataFrame.from_dict(rows, orient="index").reindex(index=out.index, columns=list(UMLIP_COLUMNS))
    out = out.drop(columns=[c for c in UMLIP_COLUMNS if c in out.columns]).join(extra)
    out["umlip_passes"] = out["umlip_passes"].fillna(False).astype(bool)
    out["stage"] = np.where(~out["selected"], "GNN stage: not among the most promising",
                            np.where(out["umlip_passes"], "passes", "uMLIP: " + out["umlip_why_not"].fillna("")))
    se = out["umlip_specific_energy"].where(out["umlip_passes"])
    out["rank_umlip"] = se.rank(ascending=False, method="first")
    if voltage_model is not None:
        out = with_voltage_model(out, voltage_model, ion)
    out.attrs.update(scored.attrs, umlip={
        "model": getattr(model, "name", str(model)), "top": top, "selected": n, "max_e_hull": max_e_hull,
        "v_window": list(v_window), "ion_energy": mu, "sigma_v": sig, "seconds_relax": t_relax,
        "seconds": time.perf_counter() - t0, "hull_phases": len(hull._energy),
        "hull_skipped": len(getattr(hull, "skipped", ())), "hull": type(hull).__name__, "criteria": asdict(crit),
    })
    return out


def with_voltage_model(t: pd.DataFrame, model, ion: str) -> pd.DataFrame:
    """:data:`VM_COLUMNS` on the rows with a relaxed uMLIP pair: the voltage model's base is its own potential's
    static voltage on the relaxed structures (for the relaxing potential itself, its relaxed voltage)."""

    t = t.drop(columns=[c for c in VM_COLUMNS if c in t.columns])
    for c in VM_COLUMNS:
        t[c] = np.nan
    ok = t["umlip_voltage"].notna() & t["umlip_discharged"].notna() & t["umlip_charged"].notna()
    if ok.any():
        pairs = pd.DataFrame({"ion": ion, "charged": list(t.loc[ok, "umlip_charged"]),
                              "discharged": list(t.loc[ok, "umlip_discharged"])})
        vm = predict_pairs(pairs, model)
        t.loc[ok, "vm_voltage"] = vm["voltage_model"].to_numpy()
        t.loc[ok, "vm_voltage_std"] = vm["voltage_model_sigma"].to_numpy()
        t["vm_specific_energy"] = t["umlip_specific_energy"] * t["vm_voltage"] / t["umlip_voltage"]
    passes = t["umlip_passes"] if "umlip_passes" in t else pd.Series(True, index=t.index)
    t["rank_vm"] = t["vm_specific_energy"].where(passes.astype(bool)).rank(ascending=False, method="first")
    return t


#: the screen's columns as the uMLIP stage fills them (final_view)
_FINAL = {"umlip_voltage": "voltage", "umlip_voltage_std": "voltage_std", "umlip_capacity_grav": "capacity_grav",
          "umlip_specific_energy": "specific_energy", "umlip_energy_density": "energy_density",
          "umlip_e_hull_discharged": "e_hull_discharged", "umlip_e_hull_charged": "e_hull_charged",
          "umlip_passes": "passes", "umlip_why_not": "why_not", "umlip_discharged": "discharged",
          "umlip_volume_change": "volume_change",
          "umlip_charged": "charged"}


def final_view(refined: pd.DataFrame, rank_on: str = "potential") -> pd.DataFrame:
    """The relaxed candidates with the uMLIP numbers under the screen's column names (``voltage``,
    ``e_hull_discharged``, ``passes``, relaxed ``discharged``, ...), ranked (``rank``: passing ones by
    specific energy first), so the screen's figures draw the final ranking; ``gnn_voltage`` keeps the GNN's.
    The Pareto front (specific energy against E_hull) is taken over the converged ones. ``rank_on="delta"``:
    ``voltage`` and ``specific_energy`` are the voltage model's (``vm_*``, where it gave one; the potential's
    stay in ``potential_voltage`` / ``potential_specific_energy``), as :func:`lib.cathodes.defaults.voltage_choice`
    says the benchmark supports; ``attrs["rank_on"]`` says which."""
    if rank_on not in ("potential", "delta"):
        raise ValueError(f"rank_on must be 'potential' or 'delta', not {rank_on!r}")
    t = refined[refined["selected"]] if len(refined) else refined
    t = t.drop(columns=[v for v in _FINAL.values() if v in t.columns and v != "voltage"])
    t = t.rename(columns={"voltage": "gnn_voltage"}).rename(columns=_FINAL)
    if rank_on == "delta" and "vm_specific_energy" in t.columns:
        t["potential_voltage"], t["potential_specific_energy"] = t["voltage"], t["specific_energy"]
        t["potential_voltage_std"] = t["voltage_std"]
        t["voltage"] = t["vm_voltage"].fillna(t["voltage"])
        if "vm_voltage_std" in t.columns:
            t["voltage_std"] = t["vm_voltage_std"].fillna(t["voltage_std"])
        t["specific_energy"] = t["vm_specific_energy"].fillna(t["specific_energy"])
    t.attrs["rank_on"] = rank_on
    if t.empty:
        return t.assign(rank=pd.Series(dtype=int), pareto=pd.Series(dtype=bool))
    ok = t["umlip_status"].eq("converged")
    t["pareto"] = pareto_mask(t["specific_energy"].where(ok).to_numpy(float),
                          t["e_hull_discharged"].where(ok).to_numpy(float))
    se = t["specific_energy"].fillna(-np.inf)
    order = np.lexsort((t["candidate_id"].to_numpy(), -se.to_numpy(), ~t["passes"].to_numpy(bool)))
    t = t.iloc[order].reset_index(drop=True)
    t["rank"] = np.arange(1, len(t) + 1)
    return t


#: the funnel's stages after the relaxations, in :meth:`Criteria.judge`'s order, with the why_not prefixes that
#: leave at each (a criterion that is None fails no one: its stage shows 0 dropped)
_CRITERIA_STAGES = (("discharged state on or near its hull", ("not scored", "E_hull >"), "max_e_hull", "E_hull ≤ {:g} eV/atom"),
                    ("charged state near its hull", ("charged E_hull",), "max_e_hull_charged", "E_hull ≤ {:g} eV/atom"),
                    ("voltage in the window", ("V outside",), "v_window", "{0[0]:g}-{0[1]:g} V"),
                    ("volume change within the limit", ("volume change",), "max_volume_change", "|ΔV| ≤ {:g} %"),
                    ("no O2 release below the limit", ("O2 release",), "min_o2_onset", "≥ {:g} K"))


def funnel_counts(candidates: pd.DataFrame, dropped: pd.DataFrame, refined: pd.DataFrame) -> pd.DataFrame:
    """How many candidates reached each stage of the funnel and why the others left (one row per stage:
    ``stage``, ``n``, ``dropped`` and ``why``: the reasons with counts)."""
    def why(s: pd.Series) -> str:
        return "; ".join(f"{k} {v}" for k, v in s.value_counts().items())

    n_tried = int(candidates.attrs.get("n_tried", len(candidates) + len(dropped)))
    rows = [("substitutions tried", n_tried, 0, "")]
    gen = dropped["category"] if len(dropped) else pd.Series(dtype=str)
    rows.append(("candidates (balanced, new, unique)", len(candidates), len(dropped), why(gen)))
    scored = refined[refined["voltage"].notna()] if len(refined) else refined
    rows.append(("scored by the GNN ensemble", len(scored), len(candidates) - len(scored),
                 why(refined.loc[refined["voltage"].isna(), "score_error"]) if len(refined) else ""))
    sel = refined[refined["selected"]] if len(refined) else refined
    rows.append(("relaxed with the universal potential", len(sel), len(scored) - len(sel),
                 "not among the most promising" if len(scored) > len(sel) else ""))
    conv = sel[sel["umlip_status"].eq("converged")] if len(sel) else sel
    rows.append(("both states converged", len(conv), len(sel) - len(conv),
                 why(sel.loc[~sel["umlip_status"].eq("converged"), "umlip_status"].str.split(":").str[0])
                 if len(sel) else ""))
    # the criteria in Criteria.judge's order: each stage keeps those whose why_not is none of its and the
    # earlier stages' reasons ("not scored" leaves at the first)
    left = conv
    crit = refined.attrs.get("umlip", {}).get("criteria") if len(refined) else None
    for stage, starts, key, fmt in _CRITERIA_STAGES:
        if crit is not None:  # the limit in the label, or that none was set
            stage = f"{stage} ({fmt.format(crit[key]) if crit.get(key) is not None else 'no limit set'})"
        reason = left["umlip_why_not"].fillna("") if len(left) else pd.Series(dtype=str)
        out = reason.str.startswith(starts) if len(left) else reason.astype(bool)
        rows.append((stage, int((~out).sum()), int(out.sum()), why(reason[out])))
        left = left[~out.to_numpy(bool)] if len(left) else left
    rows[-1] = (f"{rows[-1][0]}: pass", *rows[-1][1:])
    return pd.DataFrame(rows, columns=["stage", "n", "dropped", "why"])


def known_cathodes_relaxed(known: pd.DataFrame, table: pd.DataFrame, model, hull,
                           max_e_hull: float = 0.1, v_window: tuple[float, float] = (2.5, 4.8),
                           progress: bool = True, voltage_model=None, criteria: Criteria | None = None,
                           **relax_kwargs) -> pd.DataFrame:
    """The known cathodes (:func:`lib.cathodes.screen.known_cathodes`) through the uMLIP stage exactly as the
    screen builds candidates: the real discharged structure and the same with every ion removed, both
    relaxed; E_hull against the model's hull *without* the material itself (as if it were new; ``..._with``:
    with it). Adds :data:`UMLIP_COLUMNS` (voltage of the screen's construction), ``v_umlip_pair`` (both real
    mirror structures relaxed, where MP's charged state is in the mirror), ``umlip_e_hull_with`` and
    ``dv_mp`` (uMLIP − MP); with ``voltage_model`` also :data:`VM_COLUMNS` and ``dv_mp_vm``; ``criteria`` as
    :func:`refine`'s."""
    crit = criteria or Criteria(max_e_hull=max_e_hull, v_window=tuple(v_window))
    t = table.drop_duplicates("material_id").set_index("material_id")
    ds = [t.loc[i, "structure"].to_structure() for i in known["discharged_id"]]
    cs = [RemoveSpeciesTransformation([ion]).apply_transformation(d) for d, ion in zip(ds, known["ion"], strict=True)]
    real_c = [(i, t.loc[i, "structure"]) for i in known["charged_id"] if i in t.index]
    structures = ds + cs + [c for _, c in real_c]
    ids = [*known["discharged_id"], *(f"{i} minus ions" for i in known["discharged_id"]), *(i for i, _ in real_c)]
    rs = relax(model, structures, ids=ids, progress=progress, **relax_kwargs)
    n = len(known)
    rd, rcs, rreal = rs[:n], rs[n : 2 * n], dict(zip([i for i, _ in real_c], rs[2 * n :], strict=True))
    hull.prepare([sorted(d.symbol_set) for d in ds])
    rows = []
    for k, (_, row) in enumerate(known.iterrows()):
        mu = model.ion_energy(row["ion"])
        own = [row["discharged_id"]]  # as if new: the material, and with a SystemHull every polymorph of it
        if hasattr(hull, "ids_of") and rd[k].ok:
            own = sorted({*own, *hull.ids_of(rd[k].structure.to_structure().composition.reduced_formula)})
        r = _relaxed_pair(rd[k], rcs[k], hull, row["ion"], mu, exclude_ids=own)
        r["umlip_excluded_as_new"] = len(own)
        try:
            r["umlip_e_hull_with"] = (hull.e_above_hull(rd[k].structure, rd[k].energy_per_atom)
                                      if rd[k].ok else np.nan)
        except ValueError:  # no hull for this system: said in umlip_status
            r["umlip_e_hull_with"] = np.nan
        c = rreal.get(row["charged_id"])
        if c is not None and c.ok and rd[k].ok:
            r["v_umlip_pair"] = pair_properties(c.structure, rd[k].structure, c.energy_per_atom,
                                                rd[k].energy_per_atom, row["ion"], ion_energy=mu)["voltage"]
        r["umlip_why_not"] = crit.judge(r)
        r["umlip_passes"] = r["umlip_why_not"] == ""
        rows.append(r)
    extra = pd.DataFrame(rows, index=known.index)
    out = known.join(extra)
    out["dv_mp"] = out["umlip_voltage"] - out["v_mp"]
    if voltage_model is not None:  # on the relaxed pair of the screen's construction
        ends = out.assign(umlip_discharged=[r.structure for r in rd], umlip_charged=[r.structure for r in rcs])
        for ion, g in ends.groupby("ion"):
            out.loc[g.index, list(VM_COLUMNS)] = with_voltage_model(g, voltage_model, ion)[list(VM_COLUMNS)]
        out["dv_mp_vm"] = out["vm_voltage"] - out["v_mp"]
    return out


#: the columns of the final ranking the chapter shows
TOP_COLUMNS = ("rank", "formula", "prototype", "substitution", "known_as", "voltage", "voltage_std",
               "potential_voltage", "vm_voltage", "vm_voltage_std", "rank_vm", "gnn_voltage", "capacity_grav",
               "specific_energy", "e_hull_discharged", "e_hull_charged", "volume_change", "o2_t_onset",
               "o2_mu_onset", "below_hull", "passes", "why_not")
#: the columns of the known cathodes the chapter shows
KNOWN_COLUMNS = ("formula", "discharged_id", "charged_formula", "same_reaction", "v_mp", "v_mp_2024", "v_dft",
                 "v_ml_screen", "e_hull_ml", "umlip_voltage", "vm_voltage", "vm_voltage_std", "v_umlip_pair",
                 "umlip_e_hull_discharged", "umlip_excluded_as_new", "umlip_e_hull_with", "umlip_passes",
                 "umlip_why_not")
#: the columns of the real materials the generator re-creates
REAL_COLUMNS = ("candidate_id", "formula", "known_as", "voltage", "selected", "umlip_voltage",
                "umlip_e_hull_discharged", "umlip_specific_energy", "stage", "rank_among_passing")


@dataclass
class ScreenRun:
    """One run of the screen (08, section 4): the candidates, both stages, the funnel's counts, the ranking."""

    candidates: pd.DataFrame
    dropped: pd.DataFrame
    scored: pd.DataFrame  # the GNN stage (lib.cathodes.screen.screen)
    refined: pd.DataFrame  # the potential's stage (refine)
    counts: pd.DataFrame  # funnel_counts
    final: pd.DataFrame  # final_view
    dft_hull: Hull
    potential_hull: object  # lib.cathodes.stability.SystemHull or lib.cathodes.hull.PotentialHull
    n_prototypes: int
    seconds: dict

    def summary(self) -> str:
        u, c = self.refined.attrs["umlip"], self.candidates
        return (f"{self.n_prototypes} prototypes; {c.attrs.get('n_tried')} substitutions tried, {len(c)} candidates "
                f"({int((c['known_as'] != '').sum())} of them real materials of the mirror), {len(self.dropped)} "
                f"dropped ({self.seconds['generate']:.0f} s); GNN stage {self.seconds['gnn']:.0f} s; "
                f"{u['selected']} relaxed with {u['model']} ({u['seconds_relax']:.0f} s), "
                + (f"hull of every phase of their systems ({u['hull_phases']} phases, static energies)"
                   if u.get("hull") == "SystemHull" else
                   f"hull of {u['hull_phases']} mirror phases ({u['hull_skipped']} larger ones left out)")
                + f", {u['seconds']:.0f} s")

    def top(self, n: int = 15) -> pd.DataFrame:
        return self.final[[c for c in TOP_COLUMNS if c in self.final.columns]].head(n)


def run_screen(table: pd.DataFrame, pairs: pd.DataFrame, predict, model, size, ion: str = "Li", top: int | None = None,
               max_e_hull: float = 0.1, sigma_v: dict[str, float] | None = None, voltage_model=None,
               rank_on: str = "potential", hull="system", criteria: Criteria | None = None,
               sources: pd.DataFrame | None = None, **relax_kwargs) -> ScreenRun:
    """The whole screen of a profile's size (:data:`lib.cathodes.candidates.SCREEN_SIZES`): prototypes, candidates
    (kept when the mirror holds them, ``known_as``), the GNN stage on the DFT hull, the ``top`` most promising
    relaxed with ``model``, judged against its own hull, the ranking, the funnel's counts.

    ``hull="system"`` (default): :class:`lib.cathodes.stability.SystemHull`, every phase of each candidate's
    chemical system among the mirror, electrode and extra structures (``sources``, default
    :func:`lib.cathodes.stability.structure_sources`) with ``model``'s static energies, computed once per
    system and archived (``records/hulls``); ``"near"``: the older :class:`lib.cathodes.hull.PotentialHull`
    of the phases near the DFT hull (the profile's window and size cap), which can only make a candidate look
    more stable; or a hull object of ``model``'s scale itself. ``criteria``: :class:`Criteria` (default:
    ``max_e_hull`` and its defaults)."""
    if isinstance(hull, str) and hull not in ("system", "near"):
        raise ValueError(f"hull must be 'system', 'near' or a hull object, not {hull!r}")
    t0 = time.perf_counter()
    protos = find_prototypes(table, pairs, n_extra=size.n_extra)
    cands, dropped = generate_candidates(table, protos, ion=ion, exclude="none", progress=False, **size.kwargs())
    t1 = time.perf_counter()
    dft_hull = Hull(table)
    scored = screen(cands, predict, dft_hull, ion=ion, max_e_hull=max_e_hull, progress=False)
    t2 = time.perf_counter()
    if not isinstance(hull, str):
        pot_hull = hull
    elif hull == "system":
        pot_hull = stability.SystemHull(model, sources if sources is not None else stability.structure_sources())
    else:
        pot_hull = PotentialHull(dft_hull, model, relaxed=size.hull_relaxed, window=size.hull_window,
                                 max_atoms=size.hull_max_atoms)
    crit = criteria or Criteria(max_e_hull=max_e_hull)
    refined = refine(scored, model, pot_hull, ion=ion, top=size.top if top is None else int(top),
                     sigma_v=sigma_v, progress=False, voltage_model=voltage_model, criteria=crit,
                     **relax_kwargs)
    return ScreenRun(cands, dropped, scored, refined, funnel_counts(cands, dropped, refined),
                     final_view(refined, rank_on if voltage_model is not None else "potential"),
                     dft_hull, pot_hull, len(protos),
                     {"generate": t1 - t0, "gnn": t2 - t1, "potential": time.perf_counter() - t2})


def rediscovery(run: ScreenRun) -> tuple[pd.DataFrame, dict]:
    """The real materials (of the mirror) the generator re-created, passing ones first, and how they fared:
    ``{"real", "relaxed", "passing", "all_passing", "new_passing"}``."""
    ref = run.refined
    real = ref[ref["known_as"] != ""].copy()
    real["rank_among_passing"] = real["rank_umlip"]
    real = real.sort_values(["umlip_passes", "rank_among_passing"], ascending=[False, True])
    new_pass = run.final[run.final["passes"] & (run.final["known_as"] == "")] if len(run.final) else run.final
    return real[list(REAL_COLUMNS)], {"real": len(real), "relaxed": int(real["selected"].sum()),
                                      "passing": int(real["umlip_passes"].sum()),
                                      "all_passing": int(ref["umlip_passes"].sum()), "new_passing": len(new_pass)}


def known_summary(known: pd.DataFrame) -> pd.DataFrame:
    """Against MP, on the known cathodes whose MP pair is the screen's reaction: MAE, max and pairs within 0.3 V
    of the GNN on the unrelaxed structures, the potential relaxed and the voltage model on the relaxed pair."""
    same = known[known["same_reaction"]]
    rows = []
    for label, col in (("GNN, unrelaxed", "v_ml_screen"), ("uMLIP, relaxed", "umlip_voltage"),
                       ("voltage model on the relaxed pair", "vm_voltage")):
        if col not in same:
            continue
        e = (same[col] - same["v_mp"]).abs()
        rows.append({"route": label, "n": int(e.notna().sum()), "mae": e.mean(), "max": e.max(),
                     "within_0.3": int((e <= 0.3).sum()), "pass": int(same["umlip_passes"].sum())})
    return pd.DataFrame(rows)


def write_results(profile: str, results: Path, dft: pd.DataFrame, ml: pd.DataFrame, outliers: pd.DataFrame,
                  routes: pd.DataFrame, run: ScreenRun, known: pd.DataFrame) -> dict[str, int]:
    """The chapter's tables under ``results``: ``electrodes_<profile>.csv`` (the mirror's pairs: DFT, GNN ± σ,
    outlier causes), ``electrode_routes_<profile>.csv`` (every route on the chapter's subset of all pairs,
    long), ``cathode_candidates_<profile>.csv`` (every candidate, both stages, where it left) and
    ``known_cathodes_<profile>.csv``; returns the rows written per file."""
    results.mkdir(parents=True, exist_ok=True)
    out = ml.join(outliers[["cause", "detail"]]).rename(columns={"cause": "outlier_cause", "detail": "outlier_detail"})
    structures = ["charged", "discharged", "umlip_discharged", "umlip_charged"]
    files = {f"electrodes_{profile}.csv": out, f"electrode_routes_{profile}.csv": routes,
             f"cathode_candidates_{profile}.csv": run.refined, f"known_cathodes_{profile}.csv": known}
    for name, t in files.items():
        t.drop(columns=[c for c in structures if c in t.columns]).assign(profile=profile).to_csv(
            results / name, index=False)
    return {k: len(v) for k, v in files.items()}


__all__ = ["Criteria", "select_promising", "refine", "final_view", "funnel_counts", "known_cathodes_relaxed", "sigma_from_benchmark",
           "with_voltage_model", "UMLIP_COLUMNS", "VM_COLUMNS", "ScreenRun", "run_screen", "rediscovery", "known_summary",
           "write_results", "TOP_COLUMNS", "KNOWN_COLUMNS", "REAL_COLUMNS"]
