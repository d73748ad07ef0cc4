"""Scoring a cathode screen: energies above the mirror's convex hull (pymatgen ``PhaseDiagram``), voltages,
capacities and specific energies of each candidate from predicted formation energies (± σ), the filters and
the Pareto front; and the same pipeline on known cathodes (how far to trust the ranking).

Candidates come from :mod:`lib.cathodes`; the figures are :mod:`lib.plots_cathodes`.
"""

from __future__ import annotations

import itertools
import time
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition, Element
from pymatgen.transformations.standard_transformations import (
    RemoveSpeciesTransformation,
)

from lib.cathodes.benchmark import composition_key, composition_keys
from lib.cathodes.electrodes import (
    ElectrodeError,
    check_pair,
    pair_properties,
)
from lib.structures import Crystal

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from tqdm.auto import tqdm
from lib.cathodes.candidates import ENERGY, oxidation_guess

# ----------------------------------------------------------------------------------------------
# the convex hull of the mirror's phases
# ----------------------------------------------------------------------------------------------


class Hull:
    """Energies above the convex hull of a table's phases (pymatgen ``PhaseDiagram`` on E_f, elements at 0).

    One phase diagram per chemical system, built on first use from every table entry whose elements lie
    in it; ``exclude_ids`` leaves entries out (e.g. a known material checked as if it were new).
    """
    def __init__(self, table: pd.DataFrame, energy: str = ENERGY):
        t = table[table[energy].notna()]
        self._by_elements: dict[frozenset, list[tuple[str, tuple, float]]] = {}
        for mid, c, ef in zip(t["material_id"], t["structure"], t[energy], strict=True):
            z, n = np.unique(c.numbers, return_counts=True)
            key = frozenset(z.tolist())
            self._by_elements.setdefault(key, []).append((str(mid), (z, n), float(ef) * int(n.sum())))
        self._pd: dict = {}

    def phase_diagram(self, elements: Sequence[str], exclude_ids: Sequence[str] = ()):
        """pymatgen's PhaseDiagram of the chemical system ``elements`` (symbols), cached."""
        els = sorted({Element(e).Z for e in elements})
        key = (frozenset(els), frozenset(exclude_ids))
        if key not in self._pd:
            entries = [
                PDEntry(Composition({Element.from_Z(z): 1}), 0.0, name=Element.from_Z(z).symbol) for z in els
            ]
            for r in range(1, len(els) + 1):
                for sub in itertools.combinations(els, r):
                    for mid, (z, n), e in self._by_elements.get(frozenset(sub), []):
                        if mid not in exclude_ids:
                            comp = Composition(
                                {Element.from_Z(int(a)): int(b) for a, b in zip(z, n, strict=True)}
                            )
                            entries.append(PDEntry(comp, e, name=mid))
            self._pd[key] = PhaseDiagram(entries)
        return self._pd[key]

    def e_above_hull(self, structure, ef_per_atom: float, exclude_ids: Sequence[str] = ()) -> float:
        """eV/atom above (negative: below) the hull of a structure (Crystal/Structure) with E_f (eV/atom)."""
        comp = (structure.to_structure() if isinstance(structure, Crystal) else structure).composition
        if not np.isfinite(ef_per_atom):
            return float("nan")
        pd_ = self.phase_diagram([e.symbol for e in comp], exclude_ids)
        return float(pd_.get_e_above_hull(PDEntry(comp, ef_per_atom * comp.num_atoms), allow_negative=True))


# ----------------------------------------------------------------------------------------------
# scores
# ----------------------------------------------------------------------------------------------


def _pareto(se: np.ndarray, eh: np.ndarray) -> np.ndarray:
    """True where no other point has higher-or-equal specific energy and lower-or-equal E_hull (one of
    them strictly): the Pareto front of (max specific energy, min E_hull)."""
    ok = np.isfinite(se) & np.isfinite(eh)
    out = np.zeros(len(se), bool)
    for i in np.flatnonzero(ok):
        dom = ok & (se >= se[i]) & (eh <= eh[i]) & ((se > se[i]) | (eh < eh[i]))
        out[i] = not dom.any()
    return out


def screen(
    candidates: pd.DataFrame,
    predict,
    hull: Hull,
    ion: str = "Li",
    max_e_hull: float = 0.1,
    v_window: tuple[float, float] = (2.5, 4.8),
    min_e_hull: float = -0.1,
    progress: bool = True,
) -> pd.DataFrame:
    """Score and rank candidates (module docstring). Adds per state ``ef_*`` and ``ef_*_std`` (eV/atom),
    ``e_hull_*`` (eV/atom), then ``voltage`` (V), ``voltage_std``, ``capacity_grav`` (mAh/g),
    ``capacity_vol`` (mAh/cm³), ``specific_energy`` (Wh/kg), ``energy_density`` (Wh/L), ``passes``,
    ``why_not``, ``pareto`` and ``rank`` (1 = best); ``attrs["seconds"]`` times the predictions and scores.

    A candidate passes with E_hull(discharged) ≤ ``max_e_hull``, ``v_window[0]`` ≤ V ≤ ``v_window[1]``, and
    neither state more than ``-min_e_hull`` below the mirror's hull: an unrelaxed structure predicted far
    below every known phase of its system is a model error far more often than a discovery. The Pareto
    front is taken over the candidates that are not so flagged."""
    t0 = time.perf_counter()
    out = candidates.copy().reset_index(drop=True)
    if out.empty:
        out.attrs.update(seconds=0.0, max_e_hull=max_e_hull, v_window=v_window)
        return out
    crystals = list(out["discharged"]) + list(out["charged"])
    mean, std = predict(crystals)
    mean = np.asarray(mean, float)
    std = np.asarray(std, float) if std is not None else np.full(len(mean), np.nan)
    n = len(out)
    out["ef_discharged"], out["ef_charged"] = mean[:n], mean[n:]
    out["ef_discharged_std"], out["ef_charged_std"] = std[:n], std[n:]
    rows = []
    it = out[["discharged", "charged", "ef_discharged", "ef_charged", "ef_discharged_std", "ef_charged_std"]]
    for d, c, ed, ec, sd, sc in tqdm(
        it.itertuples(index=False), total=n, desc="scores", disable=not progress
    ):
        r = {"e_hull_discharged": hull.e_above_hull(d, ed), "e_hull_charged": hull.e_above_hull(c, ec)}
        try:
            p = pair_properties(c, d, ec, ed, ion)
            r.update(
                {
                    k: p[k]
                    for k in (
                        "voltage",
                        "capacity_grav",
                        "capacity_vol",
                        "specific_energy",
                        "energy_density",
                        "dx",
                    )
                }
            )
            r["voltage_std"] = float(check_pair(c, d, ion).voltage(0, 0, sc, sd)[1])
            r["score_error"] = p["note"]
        except (ElectrodeError, ValueError) as exc:
            r["score_error"] = str(exc)
        rows.append(r)
    out = out.join(pd.DataFrame(rows))
    v, eh = out["voltage"].to_numpy(float), out["e_hull_discharged"].to_numpy(float)
    low = np.fmin(eh, out["e_hull_charged"].to_numpy(float)) < min_e_hull
    why = np.select(
        [~np.isfinite(v) | ~np.isfinite(eh), low, eh > max_e_hull, (v < v_window[0]) | (v > v_window[1])],
        [
            "not scored",
            f"E_hull < {min_e_hull:g} eV/atom: model error suspected",
            f"E_hull > {max_e_hull:g} eV/atom",
            f"V outside {v_window[0]:g}-{v_window[1]:g} V",
        ],
        "",
    )
    out["why_not"], out["passes"] = why, why == ""
    se_all = out["specific_energy"].to_numpy(float)
    out["pareto"] = _pareto(np.where(low, np.nan, se_all), np.where(low, np.nan, eh))
    se = out["specific_energy"].fillna(-np.inf)
    order = np.lexsort((out["candidate_id"].to_numpy(), -se.to_numpy(), ~out["passes"].to_numpy()))
    out = out.iloc[order].reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    out.attrs.update(
        candidates.attrs,
        seconds=time.perf_counter() - t0,
        max_e_hull=max_e_hull,
        v_window=v_window,
        min_e_hull=min_e_hull,
    )
    return out


# ----------------------------------------------------------------------------------------------
# the known cathodes
# ----------------------------------------------------------------------------------------------

KNOWN_CATHODES = (
    "LiCoO2",
    "LiNiO2",
    "LiMnO2",
    "LiMn2O4",
    "LiFePO4",
    "LiMnPO4",
    "LiCoPO4",
    "LiNiPO4",
    "LiVO2",
    "LiCrO2",
    "LiTiS2",
    "Li2FeSiO4",
    "Li2MnSiO4",
    "LiFeSO4F",
    "Li2VPO4F",
    "Li3V2(PO4)3",
    "Li2MnO3",
    "LiFeBO3",
    "LiMnBO3",
    "LiCo2O4",
    "LiNi2O4",
)


def _ground_states(table: pd.DataFrame, formulas: Sequence[str]) -> set[str]:
    """Ids of the lowest-E_f table entry of each of ``formulas`` the table holds."""
    keys = {composition_key(Composition(f)) for f in formulas}
    t = table[table[ENERGY].notna()].drop_duplicates("material_id")
    t = t.assign(key=composition_keys(t["structure"].tolist()))
    t = t[t["key"].isin(keys)]
    return set(t.sort_values([ENERGY, "material_id"]).drop_duplicates("key")["material_id"])


def known_cathode_ids(
    table: pd.DataFrame, pairs: pd.DataFrame, formulas: Sequence[str] = KNOWN_CATHODES
) -> set[str]:
    """Every id :func:`known_cathodes` uses (the ground-state discharged ids and their pairs' charged ids), to
    hold out of a model's training so the check is honest."""
    ground = _ground_states(table, formulas)
    return ground | set(pairs.loc[pairs["low_mpid"].isin(ground), "high_mpid"])


def known_cathodes(
    table: pd.DataFrame,
    pairs: pd.DataFrame,
    predict,
    hull: Hull | None = None,
    formulas: Sequence[str] = KNOWN_CATHODES,
    candidates: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The screen's pipeline on known cathodes the table holds, beside DFT and MP: one row per MP electrode
    pair whose discharged end is a known cathode (``formulas``) in the table, in its lowest-energy polymorph
    there (olivine LiFePO4 mp-19017, not the 6 other LiFePO4 polymorphs).

    Columns: ``formula``, ``discharged_id``, ``charged_id`` and ``charged_formula`` (MP's pair),
    ``charged_in_mirror``, ``v_mp`` (MP's avg_voltage), ``v_dft`` (the mirror's energies; both ends needed),
    ``v_ml_pair`` (the model on both real structures; both needed), ``v_ml_screen`` (the model on the
    screen's construction: all ions removed from the real discharged structure, unrelaxed) with its σ,
    ``dx_mp`` / ``dx_screen`` (ions per framework formula unit) and ``same_reaction`` (equal: MP's charged
    state is the fully de-ionated one the screen builds), ``screen_balanced`` (the screen would keep it:
    the de-ionated composition has an oxidation-state assignment),
    ``ef_dft`` / ``ef_ml`` of the discharged state, ``e_hull_dft`` / ``e_hull_ml`` (against the mirror's
    hull without the material itself), and with ``candidates`` (a :func:`screen` result)
    ``better_candidates``: the fraction of passing candidates with a higher ML specific energy.
    """
    hull = hull or Hull(table)
    t = table.drop_duplicates("material_id").set_index("material_id")
    ground = _ground_states(table, formulas)
    rows = []
    for _, p in pairs[pairs["low_mpid"].isin(ground)].iterrows():
        d = t.loc[p["low_mpid"], "structure"]
        ion = p["ion"]
        ds = d.to_structure()
        cs = RemoveSpeciesTransformation([ion]).apply_transformation(ds)
        have_c = p["high_mpid"] in t.index and pd.notna(t.loc[p["high_mpid"], ENERGY])
        crystals = [d, Crystal.from_structure(cs)] + ([t.loc[p["high_mpid"], "structure"]] if have_c else [])
        mean, std = predict(crystals)
        std = std if std is not None else np.full(len(crystals), np.nan)
        ef_d = float(t.loc[p["low_mpid"], ENERGY])
        row = {
            "formula": d.formula,
            "ion": ion,
            "discharged_id": p["low_mpid"],
            "charged_id": p["high_mpid"],
            "charged_formula": p["high_formula"],
            "charged_in_mirror": have_c,
            "v_mp": p["avg_voltage"],
            "ef_dft": ef_d,
            "ef_ml": mean[0],
            "ef_ml_std": std[0],
            "e_hull_dft": hull.e_above_hull(d, ef_d, exclude_ids=[p["low_mpid"]]),
            "e_hull_ml": hull.e_above_hull(d, mean[0], exclude_ids=[p["low_mpid"]]),
        }
        scr = pair_properties(cs, ds, mean[1], mean[0], ion)
        geo = check_pair(cs, ds, ion)
        row.update(
            v_ml_screen=scr["voltage"],
            v_ml_screen_std=float(geo.voltage(0, 0, std[1], std[0])[1]),
            dx_screen=geo.dx,
            specific_energy_ml_screen=scr["specific_energy"],
            capacity_grav_screen=scr["capacity_grav"],
            screen_balanced=oxidation_guess(cs) is not None,
        )
        if have_c:
            c = t.loc[p["high_mpid"], "structure"]
            gp = check_pair(c, d, ion)
            row.update(
                dx_mp=gp.dx,
                v_dft=pair_properties(c, d, t.loc[p["high_mpid"], ENERGY], ef_d, ion)["voltage"],
                v_ml_pair=pair_properties(c, d, mean[2], mean[0], ion)["voltage"],
            )
        else:
            cf = Composition(p["high_formula"])
            try:
                row["dx_mp"] = check_pair(cf, ds.composition, ion).dx
            except ElectrodeError:
                row["dx_mp"] = np.nan
        if candidates is not None and len(candidates) and "specific_energy" in candidates:
            ok = candidates[candidates["passes"]]
            row["better_candidates"] = (
                float((ok["specific_energy"] > row["specific_energy_ml_screen"]).mean())
                if len(ok)
                else np.nan
            )
        row["same_reaction"] = bool(np.isclose(row["dx_mp"], row["dx_screen"]))
        rows.append(row)
    cols = [
        "formula",
        "ion",
        "discharged_id",
        "charged_id",
        "charged_formula",
        "charged_in_mirror",
        "dx_mp",
        "dx_screen",
        "same_reaction",
        "screen_balanced",
        "v_mp",
        "v_dft",
        "v_ml_pair",
        "v_ml_screen",
        "v_ml_screen_std",
        "specific_energy_ml_screen",
        "capacity_grav_screen",
        "ef_dft",
        "ef_ml",
        "ef_ml_std",
        "e_hull_dft",
        "e_hull_ml",
        "better_candidates",
    ]
    out = pd.DataFrame(rows)
    return out.reindex(columns=[c for c in cols if c in out.columns or c != "better_candidates"])


__all__ = ["Hull", "screen", "known_cathodes", "known_cathode_ids", "KNOWN_CATHODES"]
