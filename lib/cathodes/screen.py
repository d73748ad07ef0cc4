"""Scoring a cathode screen: energies above the mirror's convex hull (pymatgen ``PhaseDiagram``), voltages,
capacities and specific energies of each candidate from predicted formation energies (± σ), the filters and
the Pareto front; and the same pipeline on known cathodes (how far to trust the ranking).

Candidates come from :mod:`lib.cathodes`; the figures are :mod:`lib.plots_cathodes`.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from pymatgen.core import Composition
from pymatgen.transformations.standard_transformations import (
    RemoveSpeciesTransformation,
)

from lib.cathodes.defaults import potential_for
from lib.cathodes.electrodes import (
    ElectrodeError,
    check_pair,
    composition_key,
    composition_keys,
    pair_properties,
)
from lib.cathodes.hull import Hull
from lib.cathodes.potentials import EnergyModelError, energy_model, get_potential
from lib.structures import Crystal

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from tqdm.auto import tqdm
from lib.cathodes.candidates import ENERGY, oxidation_guess

# ----------------------------------------------------------------------------------------------
# scores
# ----------------------------------------------------------------------------------------------


def screen_potential(ion: str, name: str | None = None):
    """The universal potential that relaxes and scores the screen's candidates of ``ion``: ``name`` if given, else
    the electrode benchmark's best for the ion (:func:`lib.cathodes.defaults.potential_for`)."""
    return get_potential(name or potential_for(ion))


def pareto_mask(se: np.ndarray, eh: np.ndarray) -> np.ndarray:
    """True where no other point has higher-or-equal specific energy and lower-or-equal E_hull (one of
    them strictly): the Pareto front of (max specific energy, min E_hull)."""
    ok = np.isfinite(se) & np.isfinite(eh)
    out = np.zeros(len(se), bool)
    for i in np.flatnonzero(ok):
        dom = ok & (se >= se[i]) & (eh <= eh[i]) & ((se > se[i]) | (eh < eh[i]))
        out[i] = not dom.any()
    return out


_PAIR_SCORES = ("voltage", "capacity_grav", "capacity_vol", "specific_energy", "energy_density", "dx")


def _predict_states(out: pd.DataFrame, predict) -> None:
    """Add the predicted formation energies of both states, ``ef_*`` and ``ef_*_std`` (NaN without σ), from an
    energy model on the formation scale (:func:`lib.cathodes.potentials.energy_model`)."""
    crystals = list(out["discharged"]) + list(out["charged"])
    model = energy_model(predict)
    if model.scale != "formation":
        raise EnergyModelError(f"the GNN stage scores on formation energies; {model.name} gives {model.scale} "
                               "energies")
    mean, std = model.energies(crystals)
    mean = np.asarray(mean, float)
    std = np.asarray(std, float) if std is not None else np.full(len(mean), np.nan)
    n = len(out)
    out["ef_discharged"], out["ef_charged"] = mean[:n], mean[n:]
    out["ef_discharged_std"], out["ef_charged_std"] = std[:n], std[n:]


def _score(d, c, ed, ec, sd, sc, hull: Hull, ion: str) -> dict:
    """One candidate's scores: E_hull of both states, the electrode's voltage (± σ), capacities and
    energies, and ``score_error`` (pymatgen's note, or why the pair could not be scored)."""
    r = {"e_hull_discharged": hull.e_above_hull(d, ed), "e_hull_charged": hull.e_above_hull(c, ec)}
    try:
        p = pair_properties(c, d, ec, ed, ion)
        r.update({k: p[k] for k in _PAIR_SCORES})
        r["voltage_std"] = float(p["geometry"].voltage(0, 0, sc, sd)[1])
        r["score_error"] = p["note"]
    except (ElectrodeError, ValueError) as exc:
        r["score_error"] = str(exc)
    return r


def _scores(out: pd.DataFrame, hull: Hull, ion: str, progress: bool) -> pd.DataFrame:
    """:func:`_score` of every candidate, one row each."""
    it = out[["discharged", "charged", "ef_discharged", "ef_charged", "ef_discharged_std", "ef_charged_std"]]
    rows = [
        _score(d, c, ed, ec, sd, sc, hull, ion)
        for d, c, ed, ec, sd, sc in tqdm(it.itertuples(index=False), total=len(out), desc="scores",
                                         disable=not progress)
    ]
    return pd.DataFrame(rows)


def _filter(
    out: pd.DataFrame, max_e_hull: float, v_window: tuple[float, float], min_e_hull: float
) -> tuple[np.ndarray, np.ndarray]:
    """Why each candidate fails the filters ("" if it passes), and whether a state is suspected of a model
    error (more than ``-min_e_hull`` below the hull)."""
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
    return why, low


def _ranked(out: pd.DataFrame) -> pd.DataFrame:
    """Passing candidates first, then by specific energy (highest first) and id; ``rank`` inserted first."""
    se = out["specific_energy"].fillna(-np.inf)
    order = np.lexsort((out["candidate_id"].to_numpy(), -se.to_numpy(), ~out["passes"].to_numpy()))
    out = out.iloc[order].reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
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
    _predict_states(out, predict)
    out = out.join(_scores(out, hull, ion, progress))
    why, low = _filter(out, max_e_hull, v_window, min_e_hull)
    out["why_not"], out["passes"] = why, why == ""
    se_all, eh = out["specific_energy"].to_numpy(float), out["e_hull_discharged"].to_numpy(float)
    out["pareto"] = pareto_mask(np.where(low, np.nan, se_all), np.where(low, np.nan, eh))
    out = _ranked(out)
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


_KNOWN_COLUMNS = [
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
    "v_mp_2024",
]


def ef_2024_by_id(e2024: pd.DataFrame | None) -> dict[str, float]:
    """MP's 2024 formation energies (``lib.cathodes.benchmark.energies_2024``) by id, under the mirror's id and
    under today's (``material_id_2024``: MP's electrodes name a few charged states by an id that replaced the
    mirror's, e.g. CoO2 mp-714976 -> mp-32686); energies on the r2SCAN scale (``pbe`` False) left out."""
    if e2024 is None:
        return {}
    e = e2024[e2024["pbe"].ne(False) & e2024["ef_2024"].notna()]
    out = dict(zip(e.index, e["ef_2024"].astype(float), strict=True))
    out.update(zip(e["material_id_2024"], e["ef_2024"].astype(float), strict=True))
    return out


def _screen_construction(cs, ds, mean, std, ion: str) -> dict:
    """The model on the screen's construction of a known cathode: all ions removed from the real
    discharged structure ``ds`` (``cs``, unrelaxed); voltage ± σ, dx, specific energy, capacity and
    whether the screen would keep it."""
    scr = pair_properties(cs, ds, mean[1], mean[0], ion)
    geo = check_pair(cs, ds, ion)
    return {
        "v_ml_screen": scr["voltage"],
        "v_ml_screen_std": float(geo.voltage(0, 0, std[1], std[0])[1]),
        "dx_screen": geo.dx,
        "specific_energy_ml_screen": scr["specific_energy"],
        "capacity_grav_screen": scr["capacity_grav"],
        "screen_balanced": oxidation_guess(cs) is not None,
    }


def _mp_pair(p: pd.Series, t: pd.DataFrame, d, ds, mean, ef_d: float, have_c: bool) -> dict:
    """MP's pair of a known cathode: dx and, when the table holds the charged end, the DFT and model
    voltages on both real structures (``v_dft``, ``v_ml_pair``); dx from MP's formula otherwise."""
    ion = p["ion"]
    if have_c:
        c = t.loc[p["high_mpid"], "structure"]
        gp = check_pair(c, d, ion)
        return {
            "dx_mp": gp.dx,
            "v_dft": pair_properties(c, d, t.loc[p["high_mpid"], ENERGY], ef_d, ion)["voltage"],
            "v_ml_pair": pair_properties(c, d, mean[2], mean[0], ion)["voltage"],
        }
    cf = Composition(p["high_formula"])
    try:
        return {"dx_mp": check_pair(cf, ds.composition, ion).dx}
    except ElectrodeError:
        return {"dx_mp": np.nan}


def _better_candidates(candidates: pd.DataFrame, specific_energy: float) -> float:
    """The fraction of passing candidates with a higher ML specific energy (NaN if none passes)."""
    ok = candidates[candidates["passes"]]
    return float((ok["specific_energy"] > specific_energy).mean()) if len(ok) else np.nan


def _known_row(p: pd.Series, t: pd.DataFrame, predict, hull: Hull, candidates: pd.DataFrame | None,
               ef24: dict[str, float]) -> dict:
    """One row of :func:`known_cathodes`: MP's electrode pair ``p`` through the screen, beside DFT and MP
    (``t``: the table indexed by id)."""
    d = t.loc[p["low_mpid"], "structure"]
    ion = p["ion"]
    ds = d.to_structure()
    cs = RemoveSpeciesTransformation([ion]).apply_transformation(ds)
    have_c = p["high_mpid"] in t.index and pd.notna(t.loc[p["high_mpid"], ENERGY])
    crystals = [d, Crystal.from_structure(cs)] + ([t.loc[p["high_mpid"], "structure"]] if have_c else [])
    mean, std = energy_model(predict).energies(crystals)
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
    row.update(_screen_construction(cs, ds, mean, std, ion))
    row.update(_mp_pair(p, t, d, ds, mean, ef_d, have_c))
    if p["high_mpid"] in ef24 and p["low_mpid"] in ef24:  # MP's pair from MP's own 2024 energies: is v_mp solid?
        geo = check_pair(Composition(p["high_formula"]), ds.composition, ion)
        row["v_mp_2024"] = float(geo.voltage(ef24[p["high_mpid"]], ef24[p["low_mpid"]])[0])
    if candidates is not None and len(candidates) and "specific_energy" in candidates:
        row["better_candidates"] = _better_candidates(candidates, row["specific_energy_ml_screen"])
    row["same_reaction"] = bool(np.isclose(row["dx_mp"], row["dx_screen"]))
    return row


def known_cathodes(
    table: pd.DataFrame,
    pairs: pd.DataFrame,
    predict,
    hull: Hull | None = None,
    formulas: Sequence[str] = KNOWN_CATHODES,
    candidates: pd.DataFrame | None = None,
    e2024: pd.DataFrame | None = None,
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
    ``better_candidates``: the fraction of passing candidates with a higher ML specific energy; with ``e2024``
    (``lib.cathodes.benchmark.energies_2024``) ``v_mp_2024``: MP's pair voltage recomputed from MP's 2024
    formation energies of its two ids (:func:`ef_2024_by_id`), a check of the reference itself.
    """
    hull = hull or Hull(table)
    t = table.drop_duplicates("material_id").set_index("material_id")
    ground = _ground_states(table, formulas)
    known_pairs = pairs[pairs["low_mpid"].isin(ground)]
    ef24 = ef_2024_by_id(e2024)
    out = pd.DataFrame([_known_row(p, t, predict, hull, candidates, ef24) for _, p in known_pairs.iterrows()])
    optional = {"better_candidates", "v_mp_2024"}
    return out.reindex(columns=[c for c in _KNOWN_COLUMNS if c in out.columns or c not in optional])


__all__ = ["Hull", "screen", "screen_potential", "known_cathodes", "known_cathode_ids", "ef_2024_by_id", "KNOWN_CATHODES"]
