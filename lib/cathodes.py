"""A screen for cathode materials that no dataset holds: substitution on known prototypes, scored by a model.

The thesis's LiOn-HD strategy pairs a generator that proposes materials with a GNN that predicts how they
would work in a cathode. Here the generator is element substitution on the cathode prototypes the mirror
holds, and the predictor any formation-energy model ``predict(crystals) -> (mean, std or None)``
(eV/atom; ``lib.electrode_benchmark.checkpoint_predictor``):

1. **Prototypes** (:func:`find_prototypes`): layered LiMO2 (LiVO2 mp-19340, R-3m, with its charged VO2
   mp-714944 from MP's electrode pairs), olivine LiMPO4 (LiFePO4 mp-19017, Pnma) and spinel LiM2O4
   (LiV2O4 mp-19394, Fd-3m); the mirror has no R-3m LiCoO2 nor spinel LiMn2O4, so these are its closest
   members of the three families. Optionally more, from MP's Li electrode pairs whose two structures the
   mirror holds and whose mirror voltage agrees with MP's within 0.1 V: one redox metal (:data:`METALS`),
   an anion (O, F, S, Se), at most ``max_atoms`` sites; one per anonymous formula and space group.
2. **Candidates** (:func:`generate_candidates`): the prototype's metal M replaced by every other metal of
   :data:`METALS` (pymatgen's ``SubstitutionTransformation``) and, with ``mixes``, by two metals on M's
   sites (``ReplaceSiteSpeciesTransformation``; one fixed, evenly spaced ordering of the sites, not the
   lowest-energy one); for another working ion than Li, Li → ion everywhere. **Charged state:** the
   prototype's own charged structure from the pairs file with the same substitution when there is one
   (single substitutions), otherwise the discharged candidate with *all* working ions removed
   (``RemoveSpeciesTransformation``) on the same lattice. **Charge balance:** both states must have an
   oxidation-state assignment (pymatgen's ``Composition.oxi_state_guesses``, ICSD oxidation states, the
   metals capped at :data:`MAX_OXIDATION`: no Cr⁶⁺ or Mn⁷⁺ in a cathode); a candidate that has none is
   dropped with the reason (e.g. FeO2 from LiFeO2 would need Fe⁴⁺, not among iron's ICSD oxidation states).
   **No relaxation is possible here:** the atoms keep the prototype's fractional coordinates and the
   volume is scaled by pymatgen's ``RLSVolumePredictor`` (reference lattice scaling: the prototype's
   volume × (Σ r_new n^(1/3) / Σ r_old n^(1/3))³ with Shannon ionic radii of the guessed oxidation
   states, atomic radii where one is missing; column ``volume_rule``). The charged state built by
   removal keeps the discharged lattice (real delithiation changes it by a few %, e.g. -6.5 % for
   LiFePO4 → FePO4). **New:** a candidate whose discharged state matches a mirror structure of the same
   reduced formula (pymatgen's ``StructureMatcher``, default tolerances, volumes scaled) is dropped as
   known (``exclude="formula"``: any mirror entry of that formula); duplicates among the candidates too.
   Same inputs give the same candidates in the same order.
3. **Scores** (:func:`screen`): predicted formation energies of both states (mean ± σ), their energy above
   the convex hull of the mirror's phases (:class:`Hull`: pymatgen ``PhaseDiagram`` on the mirror's DFT
   formation energies, elements at 0; the candidate's entry from its predicted energy; negative = below
   the known hull, which for an unrelaxed structure is more likely a model error than a discovery),
   voltage, capacities, specific energy and energy density through pymatgen (``lib.electrodes``), σ_V.
   Ranked: candidates with E_hull(discharged) ≤ ``max_e_hull``, ``v_window[0]`` ≤ V ≤ ``v_window[1]`` and
   neither state more than 0.1 eV/atom below the known hull (``min_e_hull``: a model error is then far
   likelier than a discovery) first, by specific energy; ``pareto`` marks the candidates no other beats in
   both specific energy and E_hull.

:func:`known_cathodes` runs the same pipeline on known cathodes the mirror holds and sets it beside DFT
and MP.
"""

from __future__ import annotations

import itertools
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lib.electrode_benchmark import composition_key, composition_keys
from lib.electrodes import ElectrodeError, check_ion, check_pair, pair_properties
from lib.structures import Crystal

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from tqdm.auto import tqdm

METALS = ("Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Nb", "Mo")  # redox-active substituents
#: the highest oxidation state a metal may reach in a cathode here (ICSD states above it are not used):
#: Cr6+ and Mn7+ exist (chromates, permanganates) but leave the octahedral sites of a cathode framework
#: (irreversibly), and Fe4+, Co4+, Ni4+ are the usual end points of oxide cathodes
MAX_OXIDATION = {"Ti": 4, "V": 5, "Cr": 4, "Mn": 4, "Fe": 4, "Co": 4, "Ni": 4, "Cu": 3, "Nb": 5, "Mo": 6}
ANIONS = ("O", "F", "S", "Se")
ENERGY = "formation_energy_per_atom"


@dataclass(frozen=True)
class Prototype:
    """A cathode prototype: discharged (ion-rich) mirror id, its charged partner (or None) and its metal."""

    key: str
    name: str
    discharged_id: str
    charged_id: str | None
    metal: str


CLASSICS = (
    Prototype("layered", "layered LiMO2 (R-3m): LiVO2", "mp-19340", "mp-714944", "V"),
    Prototype("olivine", "olivine LiMPO4 (Pnma): LiFePO4", "mp-19017", None, "Fe"),
    Prototype("spinel", "spinel LiM2O4 (Fd-3m): LiV2O4", "mp-19394", None, "V"),
)


@dataclass(frozen=True)
class ScreenSize:
    """How big a screen is: extra prototypes from the pairs file, mixed-metal fractions, metals."""

    n_extra: int
    mixes: tuple[float, ...]
    metals: tuple[str, ...] = METALS
    mix_metals: tuple[str, ...] = METALS

    def kwargs(self) -> dict:
        """The keyword arguments of :func:`generate_candidates`."""
        return {"metals": self.metals, "mixes": self.mixes, "mix_metals": self.mix_metals}


SCREEN_SIZES = {
    # the three classics, single substitutions and 50:50 mixes of Mn, Fe, Co, Ni: a few dozen candidates
    "smoke": ScreenSize(0, (0.5,), mix_metals=("Mn", "Fe", "Co", "Ni")),
    # + 40 prototypes from the pairs file, 50:50 mixes of any two metals
    "quick": ScreenSize(40, (0.5,)),
    "thesis": ScreenSize(100, (0.25, 0.5)),
}


def _formula_index(table: pd.DataFrame) -> dict[tuple, list[int]]:
    """Row positions of the table by reduced composition (lib.electrode_benchmark.composition_key)."""
    idx: dict[tuple, list[int]] = {}
    for i, k in enumerate(composition_keys(table["structure"].tolist())):
        idx.setdefault(k, []).append(i)
    return idx


# ----------------------------------------------------------------------------------------------
# prototypes
# ----------------------------------------------------------------------------------------------


def find_prototypes(
    table: pd.DataFrame,
    pairs: pd.DataFrame | None = None,
    n_extra: int = 0,
    max_atoms: int = 40,
    progress: bool = False,
) -> list[Prototype]:
    """The classic prototypes the table holds, then up to ``n_extra`` from MP's Li electrode pairs (see the
    module docstring), in order of (sites, id)."""
    from pymatgen.core import Element
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    from lib.electrodes import match_pairs, pair_table, read_pairs

    ids = set(table["material_id"])
    protos = [p for p in CLASSICS if p.discharged_id in ids and (p.charged_id is None or p.charged_id in ids)]
    if n_extra <= 0:
        return protos
    pairs = read_pairs() if pairs is None else pairs
    m = match_pairs(pairs[pairs["ion"] == "Li"], table)
    m = m[
        [
            len(c) <= max_atoms and len(d) <= max_atoms
            for c, d in zip(m["charged"], m["discharged"], strict=True)
        ]
    ]
    t = pair_table(m.reset_index(drop=True), progress=progress)
    t = t[(t["dft_voltage"] - t["avg_voltage"]).abs() <= 0.1]
    seen = {(p.discharged_id) for p in protos}
    cand = []
    for _, r in t.iterrows():
        s = r["discharged"].to_structure()
        els = {e.symbol for e in s.composition}
        metals = els & set(METALS)
        other_tm = {e for e in els - metals if Element(e).is_transition_metal}
        if len(metals) != 1 or other_tm or not els & set(ANIONS) or r["low_mpid"] in seen:
            continue
        sg = SpacegroupAnalyzer(s, symprec=0.1).get_space_group_number()
        cand.append(
            (
                len(s),
                r["low_mpid"],
                r["high_mpid"],
                s.composition.anonymized_formula,
                sg,
                r["low_formula"],
                metals.pop(),
            )
        )
    keys = set()
    for _n, lid, hid, anon, sg, formula, metal in sorted(cand, key=lambda c: (c[0], c[1])):
        if (anon, sg) in keys:
            continue
        keys.add((anon, sg))
        protos.append(Prototype(f"{formula}-{lid}", f"{formula} ({lid}, space group {sg})", lid, hid, metal))
        if len(protos) >= len(CLASSICS) + n_extra:
            break
    return protos


# ----------------------------------------------------------------------------------------------
# candidates
# ----------------------------------------------------------------------------------------------


def _oxi(structure):
    """The most likely oxidation-state assignment of a structure's composition (dict), or None.

    pymatgen's ``oxi_state_guesses`` over the ICSD oxidation states, with the substituent metals capped at
    :data:`MAX_OXIDATION`."""
    from pymatgen.core import Element

    comp = structure.composition
    override = {
        e.symbol: tuple(s for s in Element(e.symbol).icsd_oxidation_states if s <= MAX_OXIDATION[e.symbol])
        for e in comp
        if e.symbol in MAX_OXIDATION
    }
    try:
        g = comp.oxi_state_guesses(oxi_states_override=override, max_sites=-1)
    except ValueError:
        return None
    return g[0] if g else None


def _scaled(structure, guess, ref, ref_guess):
    """``structure`` with its volume from pymatgen's RLS predictor against ``ref``; and the rule used."""
    from pymatgen.analysis.structure_prediction.volume_predictor import RLSVolumePredictor

    s, r = structure.copy(), ref.copy()
    s.add_oxidation_state_by_element(guess)
    r.add_oxidation_state_by_element(ref_guess)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        vol = RLSVolumePredictor(check_isostructural=False).predict(s, r)
    rule = "atomic radii" if any("atomic radii" in str(x.message) for x in w) else "ionic radii"
    out = structure.copy()
    out.scale_lattice(vol)
    return out, rule


def _mix_sites(n: int, k: int) -> list[int]:
    """k of n site positions, evenly spaced (deterministic)."""
    return sorted({int(round(i * n / k)) % n for i in range(k)})


def _substitutions(
    proto: Prototype, structure, metals: Sequence[str], mixes: Sequence[float], mix_metals: Sequence[str]
):
    """(label, {site index: new species}, single?) for every substitution of the prototype's metal."""
    sites = [i for i, sp in enumerate(structure.species) if sp.symbol == proto.metal]
    for m in metals:
        if m != proto.metal:
            yield f"{proto.metal}->{m}", {i: m for i in sites}, m
    for f in mixes:
        k = int(round(f * len(sites)))
        if len(sites) < 2 or not 0 < k < len(sites):
            continue
        first = {sites[j] for j in _mix_sites(len(sites), k)}
        for m1, m2 in itertools.combinations(mix_metals, 2):
            label = f"{proto.metal}->{m1}{f:g}{m2}{1 - f:g}"
            yield label, {i: (m1 if i in first else m2) for i in sites}, None


def generate_candidates(
    table: pd.DataFrame,
    prototypes: Sequence[Prototype],
    ion: str = "Li",
    metals: Sequence[str] = METALS,
    mixes: Sequence[float] = (),
    mix_metals: Sequence[str] = METALS,
    exclude: str = "structure",
    progress: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Candidates from ``prototypes`` (module docstring): returns ``(candidates, dropped)``.

    ``candidates``: ``candidate_id``, ``prototype``, ``substitution``, ``formula`` (discharged),
    ``formula_charged``, ``discharged`` / ``charged`` (Crystals), ``charged_from``, ``oxidation_states`` of
    both states, ``volume_rule``. ``dropped``: ``candidate_id``, ``formula``, ``reason`` and its ``category``
    (discharged / charged not balanced, in the mirror, duplicate, not an electrode pair).
    """
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.transformations.site_transformations import ReplaceSiteSpeciesTransformation
    from pymatgen.transformations.standard_transformations import (
        RemoveSpeciesTransformation,
        SubstitutionTransformation,
    )

    check_ion(ion)
    if exclude not in ("structure", "formula"):
        raise ValueError(f"exclude must be 'structure' or 'formula', got {exclude!r}")
    bad = [m for m in (*metals, *mix_metals) if m not in METALS]
    if bad:
        raise ValueError(f"unknown substituent metal(s) {bad}; choose from {METALS}")
    t = table.drop_duplicates("material_id").reset_index(drop=True)
    pos = {m: i for i, m in enumerate(t["material_id"])}
    findex = _formula_index(t)
    matcher = StructureMatcher()
    kept, dropped, seen = [], [], {}
    jobs = []
    for p in prototypes:
        if p.discharged_id not in pos:
            raise ValueError(f"prototype {p.key}: {p.discharged_id} is not in the table")
        d0 = t["structure"][pos[p.discharged_id]].to_structure()
        c0 = t["structure"][pos[p.charged_id]].to_structure() if p.charged_id else None
        refs = (d0, c0)  # the real (Li) prototypes: the volume references, so Li -> Na is scaled too
        if ion != "Li":
            d0 = SubstitutionTransformation({"Li": ion}).apply_transformation(d0)
            if c0 is not None and "Li" in c0.symbol_set:
                c0 = SubstitutionTransformation({"Li": ion}).apply_transformation(c0)
        jobs += [(p, d0, c0, refs, *sub) for sub in _substitutions(p, d0, metals, mixes, mix_metals)]
    guess_cache: dict = {}

    def guess(s):
        key = s.composition.reduced_formula
        if key not in guess_cache:
            guess_cache[key] = _oxi(s)
        return guess_cache[key]

    for p, d0, c0, (d_ref, c_ref), label, sites, single in tqdm(
        jobs, desc="candidates", disable=not progress
    ):
        cid = f"{p.key}:{label}" + ("" if ion == "Li" else f":{ion}")
        d = ReplaceSiteSpeciesTransformation(sites).apply_transformation(d0)
        formula = d.composition.reduced_formula
        gd = guess(d)
        if gd is None:
            dropped.append(
                (cid, formula, "discharged state cannot be charge-balanced", "discharged not balanced")
            )
            continue
        if c0 is not None and single is not None:
            c = SubstitutionTransformation({p.metal: single}).apply_transformation(c0)
            charged_from = f"prototype pair {p.charged_id}"
        else:
            c = RemoveSpeciesTransformation([ion]).apply_transformation(d)
            charged_from = f"all {ion} removed"
        gc = guess(c)
        if gc is None:
            dropped.append(
                (
                    cid,
                    formula,
                    f"charged state {c.composition.reduced_formula} cannot be charge-balanced "
                    f"({charged_from})",
                    "charged not balanced",
                )
            )
            continue
        try:
            check_pair(c.composition, d.composition, ion)
        except ElectrodeError as exc:
            dropped.append((cid, formula, f"not an electrode pair: {exc}", "not an electrode pair"))
            continue
        g0 = guess(d_ref)
        d, rule = _scaled(d, gd, d_ref, g0) if g0 else (d, "prototype volume (prototype not balanced)")
        if charged_from.startswith("prototype"):
            gc0 = guess(c_ref)
            c = _scaled(c, gc, c_ref, gc0)[0] if gc0 else c
        else:
            c = RemoveSpeciesTransformation([ion]).apply_transformation(d)
        known = [t["material_id"][i] for i in findex.get(composition_key(d.composition), [])]
        if known and exclude == "formula":
            dropped.append((cid, formula, f"formula in the mirror ({', '.join(known[:3])})", "in the mirror"))
            continue
        hit = next((mid for mid in known if matcher.fit(d, t["structure"][pos[mid]].to_structure())), None)
        if hit:
            dropped.append(
                (cid, formula, f"in the mirror as {hit} (same formula and structure)", "in the mirror")
            )
            continue
        dup = next((k for k, s in seen.get(formula, []) if matcher.fit(d, s)), None)
        if dup:
            dropped.append((cid, formula, f"duplicate of candidate {dup}", "duplicate"))
            continue
        seen.setdefault(formula, []).append((cid, d))
        ox = lambda g: " ".join(f"{e}{v:+g}" for e, v in g.items())  # noqa: E731
        kept.append(
            {
                "candidate_id": cid,
                "prototype": p.key,
                "substitution": label,
                "formula": formula,
                "formula_charged": c.composition.reduced_formula,
                "discharged": Crystal.from_structure(d),
                "charged": Crystal.from_structure(c),
                "charged_from": charged_from,
                "oxidation_states": ox(gd),
                "oxidation_states_charged": ox(gc),
                "volume_rule": rule,
                "formula_known_in_mirror": bool(known),
            }
        )
    cands = pd.DataFrame(kept)
    drops = pd.DataFrame(dropped, columns=["candidate_id", "formula", "reason", "category"])
    cands.attrs.update(ion=ion, exclude=exclude, n_prototypes=len(prototypes), n_tried=len(jobs))
    return cands, drops


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
        from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
        from pymatgen.core import Composition, Element

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
        from pymatgen.analysis.phase_diagram import PDEntry

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
    from pymatgen.core import Composition

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
    from pymatgen.core import Composition
    from pymatgen.transformations.standard_transformations import RemoveSpeciesTransformation

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
            screen_balanced=_oxi(cs) is not None,
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


__all__ = [
    "METALS",
    "Prototype",
    "CLASSICS",
    "SCREEN_SIZES",
    "find_prototypes",
    "generate_candidates",
    "Hull",
    "screen",
    "known_cathodes",
    "known_cathode_ids",
    "KNOWN_CATHODES",
]
