"""Experiment as the reference: measured voltages of known electrodes against every route.

:func:`match_experiment` finds, for each row of the experimental table (:mod:`lib.data.experimental`), MP's
insertion pair of the **same reaction** (the same ion, discharged and charged formulas): ``match`` is

- ``same reaction``: a pair with both ends' formulas; among several (polymorphs) the one whose discharged end
  has the lowest energy per atom of ``energy`` (a route's static energies: the ground state, which is what a
  synthesis usually makes) — ``n_candidates`` says how many there were;
- ``other range``: MP has the discharged end but its pair stops at another charged composition (another
  reaction: reported apart, never averaged in);
- ``no MP pair``: MP has no pair with this discharged composition (building the charged end by removing ions
  and relaxing is not done here: the row says so).

:func:`experiment_table` puts every route's voltage (the long table of :mod:`lib.cathodes.routes`, plus MP's
listed ``avg_voltage`` as the route ``mp``) beside the measured one on the matched rows, and
:func:`loco_offset` adds, per route, the correction a careful researcher would fit on experiment — a constant
offset — judged leave-one-chemistry-out (fitted on the other chemistries' rows only).
:func:`experiment_summary` gives each route's MAE against experiment with its interval (rows resampled by
chemistry) and the paired interval against MP's own GGA+U voltage on the same rows.

**Built pairs** (:func:`build_experiment_pairs`): for every row without a same-reaction MP pair, the
discharged end is looked up by reduced formula among **all** structure sources
(:func:`lib.cathodes.stability.structure_sources`: the mirror, the electrode end members, the extra
structures); among polymorphs the one whose space group fits the row's ``structure_type`` when the type names
one (:data:`STRUCTURE_TYPE_SPACEGROUPS`: olivine Pnma, spinel Fd-3m, layered O3 R-3m, NASICON R-3c, …), and of
those the lowest static energy per atom of the default potential (``discharged_rule`` says which rule chose).
The charged end is an MP structure of the charged formula when one has **the same framework** (the two
structures without the ion match under pymatgen's ``StructureMatcher``, volume scaled); else it is **built**
from the discharged end (``built=True``, ``build_note``): all ions removed (pymatgen's
``RemoveSpeciesTransformation``) for a full removal, or, for a partial one, the ``n_orderings`` lowest-Ewald
ion/vacancy orderings of :func:`lib.cathodes.curves.enumerate_orderings`, of which each potential keeps its
own lowest static energy (:func:`lowest_energy`). A row with no discharged structure (only the charged end, or
neither) says why; inserting ions is not done. :func:`built_voltages` gives every potential's static voltage
of the built pairs (``pair_properties`` with the ion's metal from the same potential) and, with
``relax_model``, the relaxed one (both ends relaxed, :func:`lib.cathodes.relax.relax`, cached).
:func:`with_built` marks those rows ``match="built"`` (the MP status before in ``mp_match``): they form their
own class, reported apart from the MP-matched rows; MP lists no voltage for them.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from pymatgen.core import Composition, Element, Structure

from lib.cathodes.metrics import bootstrap_mae, paired_difference, system_of
from lib.structures import Crystal, as_structure


def chemistry(formula: str) -> str:
    """A coarse chemistry class of a framework, for leave-one-chemistry-out: the polyanion or anion family."""
    els = {e.symbol for e in Composition(formula).elements}
    if "P" in els and "F" in els:
        return "fluorophosphate"
    for el, name in (
        ("P", "phosphate"),
        ("Si", "silicate"),
        ("B", "borate"),
        ("As", "arsenate"),
        ("Mo", "molybdate"),
    ):
        if el in els and "O" in els:
            return name
    if "S" in els and "O" in els:
        return "sulfate"
    if "S" in els:
        return "sulfide"
    if "F" in els:
        return "fluoride"
    return "oxide"


def _reduced(f: str) -> str:
    return Composition(f).reduced_formula


def match_experiment(
    exp: pd.DataFrame, pairs: pd.DataFrame, energies: pd.Series | None = None
) -> pd.DataFrame:
    """``exp`` with ``match``, ``battery_id`` (the matched pair), ``n_candidates``, ``mp_voltage`` and ``why``
    (module docstring). ``energies``: energy per atom by material id, to choose among polymorphs (lowest
    discharged energy); without it the first pair by battery id."""
    red_d = pairs["low_formula"].map(_reduced)
    red_c = pairs["high_formula"].map(_reduced)
    rows = []
    for r in exp.itertuples(index=False):
        d, c = _reduced(r.discharged_formula), _reduced(r.charged_formula)
        same_d = pairs["ion"].eq(r.ion) & red_d.eq(d)
        same = same_d & red_c.eq(c)
        row = {
            "match": "no MP pair",
            "battery_id": None,
            "n_candidates": 0,
            "mp_voltage": np.nan,
            "why": f"MP has no {r.ion} pair with the discharged end {d}",
        }
        if same.any():
            cand = pairs[same]
            if energies is not None:
                e = cand["low_mpid"].map(energies)
                cand = cand.assign(_e=e.to_numpy()).sort_values(["_e", "battery_id"], na_position="last")
            else:
                cand = cand.sort_values("battery_id")
            best = cand.iloc[0]
            row = {
                "match": "same reaction",
                "battery_id": best["battery_id"],
                "n_candidates": int(same.sum()),
                "mp_voltage": float(best["avg_voltage"]),
                "why": "",
            }
        elif same_d.any():
            others = sorted(set(red_c[same_d]))
            row.update(
                match="other range",
                n_candidates=int(same_d.sum()),
                why=f"MP's {r.ion} pairs from {d} end at {', '.join(others)}, not {c}",
            )
        rows.append(row)
    out = pd.concat([exp.reset_index(drop=True), pd.DataFrame(rows)], axis=1)
    out["chemistry"] = out["charged_formula"].map(chemistry)
    return out


def experiment_table(matched: pd.DataFrame, long: pd.DataFrame,
                     built_long: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per compared experimental row and route: ``id``, ``route``, ``voltage``, ``voltage_exp``,
    ``chemistry``, ``match``. The ``same reaction`` rows take MP's listed voltage as the route ``mp`` and
    every route of ``long`` (by battery id); the ``built`` rows (:func:`with_built`) take the routes of
    ``built_long`` (:func:`built_voltages`, by row id) and no ``mp`` (MP lists no voltage for a pair it does
    not have).
    ``other range`` and ``no MP pair`` rows are never in the table."""
    m = matched[matched["match"] == "same reaction"]
    v = long.set_index(["battery_id", "route"])["voltage"]
    rows = []
    for r in m.itertuples(index=False):
        rows.append({"id": r.id, "route": "mp", "voltage": r.mp_voltage})
        for route in long["route"].unique():
            rows.append({"id": r.id, "route": route, "voltage": float(v.get((r.battery_id, route), np.nan))})
    if built_long is not None and len(built_long) and "built" in set(matched["match"]):
        b = built_long[built_long["id"].isin(matched.loc[matched["match"] == "built", "id"])]
        rows += b[["id", "route", "voltage"]].to_dict("records")
    t = pd.DataFrame(rows, columns=["id", "route", "voltage"])
    m = matched[matched["match"].isin(["same reaction", "built"])]
    m = m.assign(system=[system_of(f, ion) for f, ion in zip(m["charged_formula"], m["ion"], strict=True)])
    return t.merge(m[["id", "ion", "voltage_exp", "chemistry", "system", "structure_type", "match"]], on="id")


def loco_offset(table: pd.DataFrame, suffix: str = "+offset") -> pd.DataFrame:
    """Each route shifted by the mean of (experiment − route) over the **other** chemistries' rows
    (leave-one-chemistry-out; a row whose chemistry is the only one gets no correction): new routes
    ``<route><suffix>``."""
    parts = []
    for route, g in table.groupby("route"):
        g = g.copy()
        resid = g["voltage_exp"] - g["voltage"]
        shift = []
        for chem in g["chemistry"]:
            other = resid[(g["chemistry"] != chem).to_numpy() & resid.notna().to_numpy()]
            shift.append(float(other.mean()) if len(other) else np.nan)
        g["voltage"] = g["voltage"] + np.asarray(shift)
        g["route"] = route + suffix
        parts.append(g)
    return pd.concat(parts, ignore_index=True) if parts else table.iloc[:0]


def experiment_summary(table: pd.DataFrame, reference: str = "mp", seed: int = 0) -> pd.DataFrame:
    """Per route: n, MAE against experiment with its 95 % interval (rows resampled by their framework's
    chemical system: a material measured twice counts once in the resampling), mean signed error (route −
    experiment), and MAE(route) − MAE(``reference``) on the rows both have, with its interval."""
    ref = table[table["route"] == reference].set_index("id")["voltage"]
    rows = []
    for route, g in table.groupby("route", sort=False):
        g = g[g["voltage"].notna()]
        if not len(g):
            rows.append({"route": route, "n": 0})
            continue
        err = (g["voltage"] - g["voltage_exp"]).to_numpy()
        lo, hi = bootstrap_mae(np.abs(err), g["system"], seed=seed)
        r = ref.reindex(g["id"]).to_numpy()
        d = paired_difference(err, r - g["voltage_exp"].to_numpy(), g["system"], seed=seed)
        rows.append(
            {
                "route": route,
                "n": len(g),
                "mae": float(np.abs(err).mean()),
                "ci_low": lo,
                "ci_high": hi,
                "bias": float(err.mean()),
                "vs_mp": d["diff"],
                "vs_mp_ci_low": d["ci_low"],
                "vs_mp_ci_high": d["ci_high"],
                "vs_mp_n": d["n"],
            }
        )
    return pd.DataFrame(rows).sort_values("mae", na_position="last").reset_index(drop=True)


def closest_route(table: pd.DataFrame, summary: pd.DataFrame, min_n: int = 5) -> dict | None:
    """The potential route a user should read beside the default: among the static potential routes with at least
    ``min_n`` matched rows, the lowest MAE against experiment whose paired interval against MP's own voltage lies
    below zero (better than MP's GGA+U beyond the resampling's doubt), else the lowest MAE. The offset variants
    (``+offset``, fitted on experiment) are judged leave-one-chemistry-out in the bench but never chosen here: on
    a few rows their gain is as likely the fit's noise. σ_V is the 68.3 % quantile of its |error| against
    experiment. None without such a route."""
    s = summary[summary["route"].str.startswith("umlip_static_") & ~summary["route"].str.endswith("+offset")
                & (summary["n"] >= min_n)]
    if s.empty:
        return None
    better = s[s["vs_mp_ci_high"] < 0]
    best = (better if len(better) else s).sort_values("mae").iloc[0]
    g = table[(table["route"] == best["route"]) & table["voltage"].notna()]
    err = (g["voltage"] - g["voltage_exp"]).abs()
    return {"route": best["route"], "potential": best["route"].removeprefix("umlip_static_"), "offset": 0.0,
            "sigma": float(err.quantile(0.683)), "mae": float(best["mae"]), "ci_low": float(best["ci_low"]),
            "ci_high": float(best["ci_high"]), "n": int(best["n"]), "vs_mp": float(best["vs_mp"]),
            "vs_mp_ci_low": float(best["vs_mp_ci_low"]), "vs_mp_ci_high": float(best["vs_mp_ci_high"]),
            "better_than_mp": bool(len(better))}


# ----------------------------------------------------------------------------------------------
# built pairs: the experiment's reaction where MP has no pair of it
# ----------------------------------------------------------------------------------------------

#: keywords of ``structure_type`` (lower case, first hit wins) and the space-group numbers they name: used to
#: choose the discharged polymorph when the row says which it is
STRUCTURE_TYPE_SPACEGROUPS: tuple[tuple[str, frozenset[int], str], ...] = (
    ("olivine", frozenset({62}), "Pnma"),
    ("spinel", frozenset({227}), "Fd-3m"),
    ("layered o3", frozenset({166}), "R-3m"),
    ("nasicon-type (monoclinic)", frozenset(range(3, 16)), "monoclinic"),
    ("nasicon", frozenset({148, 167}), "R-3 or R-3c"),
    ("tavorite", frozenset({2}), "P-1"),
    ("triplite", frozenset({15}), "C2/c"),
    ("anatase", frozenset({141}), "I4_1/amd"),
    ("triclinic", frozenset({1, 2}), "triclinic"),
    ("monoclinic", frozenset(range(3, 16)), "monoclinic"),
    ("orthorhombic", frozenset(range(16, 75)), "orthorhombic"),
)
#: the potentials of the routes that the built pairs get (lib.cathodes.routes' static routes)
ROUTE_POTENTIALS = ("sevennet", "chgnet", "sevennet_mf0", "chgnet_r2scan", "sevennet_mf0_r2scan")
BUILT_COLUMNS = ("id", "ion", "mp_match", "status", "built", "build_note", "why", "fraction", "discharged_id",
                 "discharged_source", "discharged_rule", "n_polymorphs", "charged_id", "discharged",
                 "charged_candidates")


def structure_type_spacegroups(structure_type: str) -> tuple[frozenset[int], str] | None:
    """The space groups a row's ``structure_type`` names (:data:`STRUCTURE_TYPE_SPACEGROUPS`), with a label;
    None when it names none."""
    t = str(structure_type or "").lower()
    for key, groups, label in STRUCTURE_TYPE_SPACEGROUPS:
        if key in t:
            return groups, label
    return None


def spacegroup_number(structure) -> int:
    """pymatgen's space-group number (symprec 0.1 Å); 0 when the analysis fails."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        return int(SpacegroupAnalyzer(as_structure(structure), symprec=0.1).get_space_group_number())
    except Exception:  # noqa: BLE001 - a structure spglib cannot analyse has no space group to match
        return 0


def source_formulas(sources: pd.DataFrame) -> pd.Series:
    """The reduced formula of every structure of ``sources``
    (:func:`lib.cathodes.stability.structure_sources`), from the atomic numbers (one Composition per distinct
    content)."""
    memo: dict[tuple, str] = {}
    out = []
    for c in sources["structure"]:
        nums = c.numbers if hasattr(c, "numbers") else np.array([sp.Z for sp in as_structure(c).species])
        z, k = np.unique(nums, return_counts=True)
        key = (tuple(z.tolist()), tuple(k.tolist()))
        if key not in memo:
            comp = Composition({Element.from_Z(int(a)): int(b) for a, b in zip(*key, strict=True)})
            memo[key] = comp.reduced_formula
        out.append(memo[key])
    return pd.Series(out, index=sources.index, name="formula")


def ion_fraction(discharged_formula: str, charged_formula: str, ion: str) -> float:
    """The share of the discharged end's ``ion`` left in the charged end (per framework formula unit): 0 for a
    full removal, 3/5 for Li5Fe2(PO4)3 → Li3Fe2(PO4)3. ValueError when the frameworks differ or the charged
    end does not hold fewer ions."""
    el = Element(ion)
    cd, cc = Composition(discharged_formula), Composition(charged_formula)
    fd = Composition({e: a for e, a in cd.items() if e != el})
    fc = Composition({e: a for e, a in cc.items() if e != el})
    if fd.reduced_formula != fc.reduced_formula:
        raise ValueError(f"frameworks differ: {fd.reduced_formula} and {fc.reduced_formula}")
    xd, xc = cd[el] / fd.num_atoms, cc[el] / fc.num_atoms
    if not xd > xc + 1e-9:
        raise ValueError(f"{charged_formula} holds no fewer {ion} than {discharged_formula}")
    return float(xc / xd)


def framework(structure, ion: str) -> Structure:
    """The structure without its ``ion`` sites."""
    s = as_structure(structure).copy()
    s.remove_species([ion])
    return s


def same_framework(a, b, ion: str) -> bool:
    """Whether two structures hold the same framework: without the ion they match under pymatgen's
    ``StructureMatcher`` (volumes scaled, supercells tried; ltol 0.3, stol 0.5, angle 10°, as a (de)insertion
    strains the cell)."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    fa, fb = framework(a, ion), framework(b, ion)
    if fa.composition.reduced_formula != fb.composition.reduced_formula:
        return False
    m = StructureMatcher(ltol=0.3, stol=0.5, angle_tol=10, primitive_cell=True, scale=True,
                         attempt_supercell=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bool(m.fit(fa, fb))


def _energies_of(model, structures: Sequence, **kw) -> np.ndarray:
    """Static energies per atom from an energy model (``.energies(structures) -> (array, sigma)``) or a plain
    callable (``f(structures) -> array``)."""
    if hasattr(model, "energies"):
        return np.asarray(model.energies(list(structures), **kw)[0], float)
    return np.asarray(model(list(structures)), float)


def lowest_energy(structures: Sequence, model, **kw) -> tuple[int, np.ndarray]:
    """The index of the structure with the lowest energy per atom of ``model`` (NaN never chosen) and the
    energies; ValueError when none has one."""
    e = _energies_of(model, structures, **kw)
    if not np.isfinite(e).any():
        raise ValueError("no structure has an energy")
    return int(np.nanargmin(e)), e


def build_charged(discharged, ion: str, fraction: float, n_orderings: int = 4, max_cells: int = 4,
                  max_atoms: int = 96) -> tuple[list[Structure], str]:
    """The charged end built from ``discharged`` by removing ions: all of them (``fraction`` 0, pymatgen's
    ``RemoveSpeciesTransformation``: one structure), or all but ``fraction`` of them (the ``n_orderings``
    lowest-Ewald orderings of :func:`lib.cathodes.curves.enumerate_orderings`, each a candidate; the caller
    keeps the lowest energy, :func:`lowest_energy`). Returns the candidates and a note; ValueError (with the
    reason) when the content fits no supercell within the limits."""
    from pymatgen.transformations.standard_transformations import RemoveSpeciesTransformation

    from lib.cathodes.curves import CurveError, enumerate_orderings

    s = as_structure(discharged)
    if fraction <= 1e-9:
        out = RemoveSpeciesTransformation([ion]).apply_transformation(s.copy())
        return [out], f"built: every {ion} removed from the discharged cell (RemoveSpeciesTransformation)"
    try:
        orders = enumerate_orderings(s, ion, fraction, n=n_orderings, max_cells=max_cells,
                                     max_atoms=max_atoms)
    except CurveError as exc:
        raise ValueError(str(exc)) from exc
    if not orders:
        raise ValueError(f"no ordering with {fraction:g} of the {ion} sites")
    o = orders[0]
    return [x.structure for x in orders], (
        f"built: {fraction:.3g} of the {ion} sites kept, {len(orders)} lowest-Ewald orderings in "
        f"{o.cells} primitive cell(s) ({len(o.structure)} atoms, charges {o.charges}); each route keeps its "
        "lowest static energy")


def _choose_discharged(cand: pd.DataFrame, structure_type: str, energies) -> tuple[int, str]:
    """Index (in ``cand``) of the discharged polymorph and the rule that chose it."""
    idx = list(range(len(cand)))
    rule = []
    named = structure_type_spacegroups(structure_type)
    if named is not None and len(cand) > 1:
        groups, label = named
        sg = [spacegroup_number(c) for c in cand["structure"]]
        fit = [i for i in idx if sg[i] in groups]
        if fit:
            idx = fit
            rule.append(f"space group {label} ({structure_type}): {len(fit)} of {len(cand)}")
        else:
            rule.append(f"no polymorph in {label} ({structure_type}; found {sorted(set(sg))})")
    if len(idx) == 1:
        return idx[0], "; ".join(rule + ["the only one" if len(cand) == 1 else "the only such one"])
    if energies is None:
        first = min(idx, key=lambda i: cand["material_id"].iloc[i])
        return first, "; ".join(rule + ["first material id (no energies given)"])
    j, e = lowest_energy([cand["structure"].iloc[i] for i in idx], energies)
    return idx[j], "; ".join(rule + [f"lowest static energy of {len(idx)} ({e[j]:.3f} eV/atom)"])


def build_experiment_pairs(exp: pd.DataFrame, pairs: pd.DataFrame, sources: pd.DataFrame, energies=None,
                           n_orderings: int = 4, max_cells: int = 4, max_atoms: int = 96,
                           formulas: pd.Series | None = None) -> pd.DataFrame:
    """For every row of ``exp`` without a same-reaction MP pair (:func:`match_experiment`), the pair of the
    experiment's reaction from the structure sources (module docstring): one row each, :data:`BUILT_COLUMNS`.
    ``status``: ``built`` (charged end built by removing ions), ``MP structures`` (both ends are MP structures
    of one framework), ``no structure`` (no discharged structure; ``why`` says what there is) or ``not built``
    (the build failed; ``why``). ``charged_candidates``: one structure, or the orderings of a partial removal.
    ``energies``: a static energy model (or ``f(structures) -> eV/atom``) to choose among polymorphs (the
    default potential's); without it the first material id. ``formulas``: the sources' reduced formulas, if
    known."""
    matched = match_experiment(exp, pairs)
    formulas = source_formulas(sources) if formulas is None else formulas
    rows = []
    for r in matched[matched["match"] != "same reaction"].itertuples(index=False):
        d, c = _reduced(r.discharged_formula), _reduced(r.charged_formula)
        row = dict.fromkeys(BUILT_COLUMNS)
        row.update(id=r.id, ion=r.ion, mp_match=r.match, built=False, build_note="", n_polymorphs=0,
                   charged_candidates=[])
        dc = sources[formulas.eq(d).to_numpy()]
        cc = sources[formulas.eq(c).to_numpy()]
        try:
            row["fraction"] = ion_fraction(r.discharged_formula, r.charged_formula, r.ion)
        except ValueError as exc:
            rows.append({**row, "status": "not built", "why": str(exc)})
            continue
        if dc.empty:
            why = (f"only the charged end {c} is in the sources ({len(cc)} structure(s)): inserting "
                   f"{r.ion} is not done" if len(cc) else f"neither {d} nor {c} is in the structure sources")
            rows.append({**row, "status": "no structure", "why": why})
            continue
        j, rule = _choose_discharged(dc, r.structure_type, energies)
        dis = as_structure(dc["structure"].iloc[j])
        row.update(discharged_id=dc["material_id"].iloc[j], discharged_source=dc["source"].iloc[j],
                   discharged_rule=rule, n_polymorphs=len(dc), discharged=dis)
        same = [i for i in range(len(cc)) if same_framework(dis, cc["structure"].iloc[i], r.ion)]
        if same:
            k = same[0]
            if len(same) > 1 and energies is not None:
                k = same[lowest_energy([cc["structure"].iloc[i] for i in same], energies)[0]]
            cid = cc["material_id"].iloc[k]
            rows.append({**row, "status": "MP structures", "charged_id": cid, "why": "",
                         "charged_candidates": [as_structure(cc["structure"].iloc[k])],
                         "build_note": f"charged end {cid} ({cc['source'].iloc[k]}): the discharged end's "
                                       f"framework ({len(same)} of {len(cc)} {c} structure(s) match it)"})
            continue
        try:
            cands, note = build_charged(dis, r.ion, row["fraction"], n_orderings, max_cells, max_atoms)
        except ValueError as exc:
            rows.append({**row, "status": "not built", "why": f"charged end {c} could not be built: {exc}"})
            continue
        if len(cc):
            note += f"; MP's {len(cc)} {c} structure(s) hold another framework"
        rows.append({**row, "status": "built", "built": True, "charged_id": "built", "build_note": note,
                     "why": "", "charged_candidates": cands})
    return pd.DataFrame(rows, columns=list(BUILT_COLUMNS))


def with_built(matched: pd.DataFrame, built: pd.DataFrame) -> pd.DataFrame:
    """``matched`` with the rows that have a pair of the experiment's reaction from
    :func:`build_experiment_pairs` marked ``match="built"`` (whether or not an end was built: MP has no pair
    of that reaction; ``built`` says whether the charged end was made by removing ions), MP's status before
    in ``mp_match``, and the build's ``build_note``, ``discharged_id``, ``charged_id``, ``discharged_rule``;
    a row that could not be built keeps its match and adds the reason to ``why``."""
    out = matched.copy()
    out["mp_match"] = out["match"]
    for c in ("build_note", "discharged_id", "charged_id", "discharged_rule"):
        out[c] = ""
    out["built"] = False
    b = built.set_index("id")
    for i, r in out.iterrows():
        if r["id"] not in b.index:
            continue
        x = b.loc[r["id"]]
        if len(x["charged_candidates"]):
            out.loc[i, "match"] = "built"
            out.loc[i, ["build_note", "discharged_id", "charged_id", "discharged_rule"]] = [
                x["build_note"], x["discharged_id"], x["charged_id"], x["discharged_rule"]]
            out.loc[i, "built"] = bool(x["built"])
            out.loc[i, "why"] = ""
        else:
            out.loc[i, "why"] = f"{r['why']}; {x['why']}"
    return out


def built_voltages(built: pd.DataFrame, models: dict, relax_model=None, relax_name: str | None = None,
                   cached_only: bool = False, relax_settings=None, progress: bool = False) -> pd.DataFrame:
    """Every model's voltage of the pairs of :func:`build_experiment_pairs` (those with a charged end): one
    row per row id and route (``umlip_static_<name>`` for each ``models`` item; with ``relax_model``,
    ``umlip_relaxed_<relax_name>``), ``voltage``, ``error``, ``charged_choice`` (the candidate kept: the
    lowest static energy per atom of that model), ``e_charged``, ``e_discharged`` (eV/atom). Static: the
    structures as they are; relaxed: the discharged end and the charged candidate its static energy chose,
    both relaxed (cached; a row whose either end did not converge gets no voltage and says why). Voltages are
    :func:`lib.cathodes.electrodes.pair_properties`' with the ion's metal from the same model."""
    from lib.cathodes.electrodes import pair_properties

    b = built[built["charged_candidates"].map(len) > 0]
    kw = {"cached_only": True} if cached_only else {}
    rows = []
    chosen: dict[str, dict] = {}
    for name, model in models.items():
        flat = [s for r in b.itertuples() for s in (r.discharged, *r.charged_candidates)]
        e = _energies_of(model, flat, **kw) if flat else np.array([])
        k = 0
        route = f"umlip_static_{name}"
        for r in b.itertuples():
            ed, ec = e[k], e[k + 1:k + 1 + len(r.charged_candidates)]
            k += 1 + len(r.charged_candidates)
            row = {"id": r.id, "route": route, "voltage": np.nan, "error": "", "charged_choice": -1,
                   "e_charged": np.nan, "e_discharged": float(ed)}
            if not np.isfinite(ed) or not np.isfinite(ec).any():
                rows.append({**row, "error": "static energy not computed (pending)"})
                continue
            j = int(np.nanargmin(ec))
            chosen.setdefault(name, {})[r.id] = j
            try:
                p = pair_properties(r.charged_candidates[j], r.discharged, float(ec[j]), float(ed), r.ion,
                                    ion_energy=model.ion_energy(r.ion))
                rows.append({**row, "voltage": p["voltage"], "charged_choice": j, "e_charged": float(ec[j])})
            except Exception as exc:  # noqa: BLE001 - the row says why it has no voltage
                rows.append({**row, "error": f"{type(exc).__name__}: {exc}", "charged_choice": j})
    if relax_model is not None:
        from lib.cathodes.relax import relax

        name = relax_name or getattr(relax_model, "name", "model")
        pick = chosen.get(name)
        if pick is None:  # the relax model's own static choice of ordering
            pick = {}
            for r in b.itertuples():
                many = len(r.charged_candidates) > 1
                pick[r.id] = lowest_energy(r.charged_candidates, relax_model)[0] if many else 0
        todo = [(r, pick.get(r.id, 0)) for r in b.itertuples()]
        structs = [s for r, j in todo for s in (r.discharged, r.charged_candidates[j])]
        ids = [f"{r.id}:{end}" for r, _ in todo for end in ("discharged", "charged")]
        rkw = {"cached_only": True} if cached_only else {}
        if relax_settings is not None:
            rkw["settings"] = relax_settings
        rs = relax(relax_model, structs, ids=ids, progress=progress, **rkw) if structs else []
        for n, (r, j) in enumerate(todo):
            rd, rc = rs[2 * n], rs[2 * n + 1]
            row = {"id": r.id, "route": f"umlip_relaxed_{name}", "voltage": np.nan, "error": "",
                   "charged_choice": j, "e_charged": rc.energy_per_atom, "e_discharged": rd.energy_per_atom}
            if not (rd.ok and rc.ok):
                row["error"] = (f"relaxation not used (charged: {rc.status} {rc.reason}; discharged: "
                                f"{rd.status} {rd.reason})")
                rows.append(row)
                continue
            try:
                p = pair_properties(rc.structure, rd.structure, rc.energy_per_atom, rd.energy_per_atom, r.ion,
                                    ion_energy=relax_model.ion_energy(r.ion))
                row["voltage"] = p["voltage"]
            except Exception as exc:  # noqa: BLE001 - the row says why it has no voltage
                row["error"] = f"{type(exc).__name__}: {exc}"
            rows.append(row)
    return pd.DataFrame(rows, columns=["id", "route", "voltage", "error", "charged_choice", "e_charged",
                                       "e_discharged"])


def model_voltages(built: pd.DataFrame, potential, delta=None, gnn=None) -> pd.DataFrame:
    """The voltage models of our own on the built pairs (:mod:`lib.cathodes.voltage_model`): routes
    ``voltage_model`` (``potential``'s static voltage + the learned correction; ``delta`` default: the shipped
    one, whose base must be ``potential``) and ``voltage_gnn`` (the CGCNN on both states; ``gnn`` default: the
    shipped one), on the charged candidate of lowest static energy of ``potential`` (as
    :func:`built_voltages` chooses), one row per row id and route with ``sigma`` (their σ_V). Both were trained
    on MP's pairs, none of which is a built pair's reaction: out of sample for them. A model that cannot load
    gives its rows NaN with the reason."""
    from lib.cathodes import voltage_model as vm

    b = built[built["charged_candidates"].map(len) > 0]
    cols = ["id", "route", "voltage", "error", "sigma"]
    if b.empty:
        return pd.DataFrame(columns=cols)
    pick = [lowest_energy(r.charged_candidates, potential)[0] if len(r.charged_candidates) > 1 else 0
            for r in b.itertuples()]
    def crystal(x):
        return x if isinstance(x, Crystal) else Crystal.from_structure(as_structure(x), check=False)

    pairs = pd.DataFrame({"ion": b["ion"].to_numpy(),
                          "charged": [crystal(r.charged_candidates[j]) for r, j in zip(b.itertuples(), pick,
                                                                                      strict=True)],
                          "discharged": [crystal(d) for d in b["discharged"]]})
    pairs["formula_charged"] = [as_structure(c).composition.reduced_formula for c in pairs["charged"]]
    pairs["formula_discharged"] = [as_structure(d).composition.reduced_formula for d in pairs["discharged"]]
    rows = []
    for route, fn in (("voltage_model", lambda: _delta(pairs, delta)), ("voltage_gnn", lambda: _gnn(pairs, gnn))):
        try:
            v, sg = fn()
            err = ["" if np.isfinite(x) else "no voltage from the model" for x in v]
        except Exception as exc:  # noqa: BLE001 - a model that cannot load is said, not hidden
            v, sg = np.full(len(b), np.nan), np.full(len(b), np.nan)
            err = [f"{type(exc).__name__}: {exc}"[:200]] * len(b)
        rows += [{"id": i, "route": route, "voltage": float(x), "error": e, "sigma": float(y)}
                 for i, x, y, e in zip(b["id"], v, sg, err, strict=True)]
    return pd.DataFrame(rows, columns=cols)


def _delta(pairs: pd.DataFrame, model) -> tuple[np.ndarray, np.ndarray]:
    from lib.cathodes.voltage_model import predict_pairs

    t = predict_pairs(pairs.drop(columns=["formula_charged", "formula_discharged"]), model)
    return t["voltage_model"].to_numpy(float), t["voltage_model_sigma"].to_numpy(float)


def _gnn(pairs: pd.DataFrame, model) -> tuple[np.ndarray, np.ndarray]:
    from lib.cathodes.voltage_model import load_gnn

    return (model or load_gnn()).predict(pairs)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lib.cathodes.experiment built [--relax] [--potential NAME ...]``: build the pairs of the
    experimental rows MP has no pair of (:func:`build_experiment_pairs`, polymorphs chosen with the default
    potential), print each row's status and every named potential's static voltage, and with ``--relax`` relax
    both ends with the default potential (cached: the benchmark then reads them, ``make bench
    BENCH=electrodes``)."""
    import argparse

    from lib.cathodes import defaults, potentials
    from lib.cathodes.stability import structure_sources
    from lib.data.electrodes import load_electrode_pairs
    from lib.data.experimental import read_experimental_voltages

    ap = argparse.ArgumentParser(prog="python -m lib.cathodes.experiment", description=main.__doc__)
    ap.add_argument("command", choices=["built"])
    ap.add_argument("--relax", action="store_true",
                    help="relax both ends with the default potential (cached)")
    ap.add_argument("--potential", nargs="*", default=list(ROUTE_POTENTIALS))
    a = ap.parse_args(argv)
    name = defaults.potential_for("Li")
    pot = potentials.get_potential(name)
    exp = read_experimental_voltages()
    built = build_experiment_pairs(exp, load_electrode_pairs(), structure_sources(), energies=pot)
    parts = [built_voltages(built, {n: potentials.get_potential(n)}) for n in a.potential]
    if a.relax:
        parts.append(built_voltages(built, {}, relax_model=pot, relax_name=name, progress=True))
    cols = ["id", "mp_match", "status", "discharged_id", "charged_id", "why"]
    with pd.option_context("display.width", 200, "display.max_colwidth", 90):
        print(built[cols].to_string(index=False))
        if parts:
            v = pd.concat(parts).pivot(index="id", columns="route", values="voltage")
            print(v.join(exp.set_index("id")["voltage_exp"]).round(2).to_string())
    return 0


__all__ = ["chemistry", "match_experiment", "experiment_table", "loco_offset", "experiment_summary",
           "closest_route", "STRUCTURE_TYPE_SPACEGROUPS", "ROUTE_POTENTIALS", "structure_type_spacegroups",
           "spacegroup_number", "source_formulas", "ion_fraction", "framework", "same_framework",
           "lowest_energy", "build_charged", "build_experiment_pairs", "with_built", "built_voltages", "main"]


if __name__ == "__main__":
    raise SystemExit(main())
