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

**Every known framework** (issue 41; the second half of this module): :func:`find_frameworks` takes every
discharged end of MP's Li and Na pairs and every extra MP structure holding the ion as a framework,
:func:`stream_candidates` substitutes on them one candidate at a time by three routes (every other metal, as
above; 50:50 mixes; pymatgen's data-mined substitution probabilities, :class:`ProbabilityRoute`), for the
framework's ion and, by ion exchange, the other one, with the same charge balance (by a dynamic programme,
:func:`_oxidation_dp`), volume rule and charged states, known structures labelled (:class:`KnownIndex`) and
duplicates named (:class:`Deduplicator`); :data:`FRAMEWORK_SIZES` are its profiles. The rediscovery benchmark
on it is :mod:`lib.cathodes.rediscovery`.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.analysis.structure_prediction.volume_predictor import RLSVolumePredictor
from pymatgen.core import Composition, Element, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from pymatgen.transformations.site_transformations import ReplaceSiteSpeciesTransformation
from pymatgen.transformations.standard_transformations import (
    RemoveSpeciesTransformation,
    SubstitutionTransformation,
)

from lib.cathodes.electrodes import (
    ElectrodeError,
    check_ion,
    check_pair,
    composition_key,
    composition_keys,
    match_pairs,
    pair_table,
    read_pairs,
)
from lib.structures import Crystal, as_structure

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
    """How big a screen is: extra prototypes from the pairs file, mixed-metal fractions, metals; and how much
    of it the universal potential sees: ``top`` candidates relaxed, the electrode benchmark's pairs with static
    (``pairs_static``) and relaxed (``pairs_relaxed``) energies (None: all), and the hull's phases (those
    within ``hull_window`` eV/atom of the DFT hull, at most ``hull_max_atoms`` atoms, relaxed or, in the smoke
    profile, static; lib.cathodes.hull), and which known cathodes go through the uMLIP stage."""
    n_extra: int
    mixes: tuple[float, ...]
    metals: tuple[str, ...] = METALS
    mix_metals: tuple[str, ...] = METALS
    top: int = 100
    pairs_static: int | None = None
    pairs_relaxed: int | None = None
    hull_window: float = 0.02
    hull_max_atoms: int = 80
    hull_relaxed: bool = True
    known: tuple[str, ...] | None = None  # the known cathodes checked (None: lib.cathodes.screen.KNOWN_CATHODES)

    def kwargs(self) -> dict:
        """The keyword arguments of :func:`generate_candidates`."""
        return {"metals": self.metals, "mixes": self.mixes, "mix_metals": self.mix_metals}


SCREEN_SIZES = {
    # the three classics, single substitutions and 50:50 mixes of Mn, Fe, Co, Ni: a few dozen candidates;
    # a handful relaxed, on a hull of the DFT ground states (a test of the pipeline in CI's time)
    "smoke": ScreenSize(0, (0.5,), mix_metals=("Mn", "Fe", "Co", "Ni"), top=4, pairs_static=40, pairs_relaxed=4,
                        hull_window=0.0, hull_max_atoms=40, hull_relaxed=False, known=("LiFePO4", "LiVO2")),
    # + 40 prototypes from the pairs file, 50:50 mixes of any two metals; 100 relaxed
    "quick": ScreenSize(40, (0.5,), top=100, pairs_relaxed=100),
    "thesis": ScreenSize(100, (0.25, 0.5), top=300, hull_window=0.05, hull_max_atoms=120),
    # the best profile is about its (shipped) models: quick's screen, minutes on 2 cores (thesis's is ~5x larger)
    "best": ScreenSize(40, (0.5,), top=100, pairs_relaxed=100),
    "long": ScreenSize(40, (0.5,), top=100, pairs_relaxed=100),  # as best: it differs in its models' epochs
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


#: above this many combinations pymatgen's enumeration is replaced by the same search as a dynamic programme
GUESS_ENUMERATION_LIMIT = 20_000


def _states(el: str, override: dict) -> tuple:
    return tuple(override.get(el) or Element(el).icsd_oxidation_states or Element(el).common_oxidation_states)


def _enumeration_size(comp: Composition, override: dict) -> float:
    """How many combinations pymatgen's ``oxi_state_guesses`` walks through on ``comp`` (reduced): per element
    the multisets of its states over its sites, then the product of each element's distinct sums."""
    from math import comb

    per, prod = 0.0, 1.0
    for el, n in comp.get_el_amt_dict().items():
        st = _states(el, override)
        k, n = len(st), int(n)
        per += comb(n + k - 1, k - 1) if k else 0
        prod *= max(1, n * (max(st) - min(st)) + 1) if st else 1
    return per + prod


def _oxidation_dp(comp: Composition, override: dict) -> dict | None:
    """pymatgen's most likely charge-balanced assignment (``oxi_state_guesses``' scoring: the sum over sites
    of the ICSD occurrence of each species, the best combination per element and total) found by dynamic
    programming instead of enumeration: the same answer but for ties, in time linear in the sites."""
    from pymatgen.core import Species

    if Composition.oxi_prob is None:
        Composition("LiF").oxi_state_guesses()  # loads pymatgen's ICSD occurrence table
    prob = Composition.oxi_prob
    totals: dict[int, tuple[float, dict]] = {0: (0.0, {})}
    for el, n in comp.get_el_amt_dict().items():
        if n != int(n):
            return None
        st = _states(el, override)
        if not st:
            return None
        scores = [(o, prob.get(Species(el, o), 0)) for o in st]
        best = {0: 0.0}
        for _ in range(int(n)):  # the best score of each sum over the element's sites
            nxt: dict[int, float] = {}
            for t, sc in best.items():
                for o, p in scores:
                    v = sc + p
                    if t + o not in nxt or v > nxt[t + o]:
                        nxt[t + o] = v
            best = nxt
        new: dict[int, tuple[float, dict]] = {}
        for t, (sc, pick) in totals.items():
            for s_el, v in best.items():
                if t + s_el not in new or sc + v > new[t + s_el][0]:
                    new[t + s_el] = (sc + v, {**pick, el: s_el / n})
        totals = new
    return totals[0][1] if 0 in totals else None


def oxidation_guess(structure, fast: bool = False):
    """The most likely oxidation-state assignment of a structure's composition (dict), or None.

    pymatgen's ``oxi_state_guesses`` over the ICSD oxidation states, with the substituent metals capped at
    :data:`MAX_OXIDATION`. ``fast`` (the every-framework stream), or a composition where pymatgen would walk
    through more than :data:`GUESS_ENUMERATION_LIMIT` combinations (Li17(PO3)20: 19 s): the same search as a
    dynamic programme (:func:`_oxidation_dp`; 1.7 s -> ms on Li5Ti7Al(PO4)12's charged states)."""
    comp = structure.composition if not isinstance(structure, Composition) else structure
    override = {
        e.symbol: tuple(s for s in Element(e.symbol).icsd_oxidation_states if s <= MAX_OXIDATION[e.symbol])
        for e in comp
        if e.symbol in MAX_OXIDATION
    }
    reduced = comp.reduced_composition
    if fast or _enumeration_size(reduced, override) > GUESS_ENUMERATION_LIMIT:
        return _oxidation_dp(reduced, override)
    try:
        g = comp.oxi_state_guesses(oxi_states_override=override, max_sites=-1)
    except ValueError:
        return None
    return g[0] if g else None


def _scaled(structure, guess, ref, ref_guess):
    """``structure`` with its volume from pymatgen's RLS predictor against ``ref``; and the rule used."""
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


class _States(NamedTuple):
    """One candidate's two states, volume-scaled, with their oxidation states and how they were built."""
    formula: str
    discharged: Structure
    charged: Structure
    guess: dict
    guess_charged: dict
    charged_from: str
    volume_rule: str


class _Mirror(NamedTuple):
    """The table without duplicate ids, its row positions by id and by reduced composition, and a matcher."""
    table: pd.DataFrame
    pos: dict[str, int]
    findex: dict[tuple, list[int]]
    matcher: StructureMatcher


def _check_arguments(ion: str, metals: Sequence[str], mix_metals: Sequence[str], exclude: str) -> None:
    """Raise on an unknown working ion, exclusion rule or substituent metal."""
    check_ion(ion)
    if exclude not in ("structure", "formula", "none"):
        raise ValueError(f"exclude must be 'structure', 'formula' or 'none', got {exclude!r}")
    bad = [m for m in (*metals, *mix_metals) if m not in METALS]
    if bad:
        raise ValueError(f"unknown substituent metal(s) {bad}; choose from {METALS}")


def _mirror(table: pd.DataFrame) -> _Mirror:
    """The table indexed for the prototypes' structures and the known-structure test."""
    t = table.drop_duplicates("material_id").reset_index(drop=True)
    return _Mirror(t, {m: i for i, m in enumerate(t["material_id"])}, _formula_index(t), StructureMatcher())


def _substitution_jobs(
    mirror: _Mirror,
    prototypes: Sequence[Prototype],
    ion: str,
    metals: Sequence[str],
    mixes: Sequence[float],
    mix_metals: Sequence[str],
) -> list[tuple]:
    """One job per candidate: (prototype, discharged and charged (or None) prototype structures with the
    working ion, the real Li prototypes (the volume references, so Li -> Na is scaled too), and
    :func:`_substitutions`' label, {site: species} and single metal)."""
    t, pos = mirror.table, mirror.pos
    jobs = []
    for p in prototypes:
        if p.discharged_id not in pos:
            raise ValueError(f"prototype {p.key}: {p.discharged_id} is not in the table")
        d0 = t["structure"][pos[p.discharged_id]].to_structure()
        c0 = t["structure"][pos[p.charged_id]].to_structure() if p.charged_id else None
        refs = (d0, c0)
        if ion != "Li":
            d0 = SubstitutionTransformation({"Li": ion}).apply_transformation(d0)
            if c0 is not None and "Li" in c0.symbol_set:
                c0 = SubstitutionTransformation({"Li": ion}).apply_transformation(c0)
        jobs += [(p, d0, c0, refs, *sub) for sub in _substitutions(p, d0, metals, mixes, mix_metals)]
    return jobs


def _cached_oxidation_guess(fast: bool = False, max_size: int = 200_000):
    """:func:`oxidation_guess`, once per reduced formula (at most ``max_size`` kept: bounded memory)."""
    cache: dict = {}

    def guess(s):
        key = s.composition.reduced_formula
        if key not in cache:
            if len(cache) >= max_size:
                cache.clear()
            cache[key] = oxidation_guess(s, fast=fast)
        return cache[key]

    return guess


def _candidate_states(job: tuple, cid: str, ion: str, guess) -> tuple[_States | None, tuple | None]:
    """Build one candidate's discharged and charged states (module docstring): ``(states, None)``, or
    ``(None, dropped row)`` when a state cannot be charge-balanced or the two are no electrode pair."""
    p, d0, c0, (d_ref, c_ref), _label, sites, single = job
    d = ReplaceSiteSpeciesTransformation(sites).apply_transformation(d0)
    formula = d.composition.reduced_formula
    gd = guess(d)
    if gd is None:
        return None, (cid, formula, "discharged state cannot be charge-balanced", "discharged not balanced")
    if c0 is not None and single is not None:
        c = SubstitutionTransformation({p.metal: single}).apply_transformation(c0)
        charged_from = f"prototype pair {p.charged_id}"
    else:
        c = RemoveSpeciesTransformation([ion]).apply_transformation(d)
        charged_from = f"all {ion} removed"
    gc = guess(c)
    if gc is None:
        reason = f"charged state {c.composition.reduced_formula} cannot be charge-balanced ({charged_from})"
        return None, (cid, formula, reason, "charged not balanced")
    try:
        check_pair(c.composition, d.composition, ion)
    except ElectrodeError as exc:
        return None, (cid, formula, f"not an electrode pair: {exc}", "not an electrode pair")
    g0 = guess(d_ref)
    d, rule = _scaled(d, gd, d_ref, g0) if g0 else (d, "prototype volume (prototype not balanced)")
    if charged_from.startswith("prototype"):
        gc0 = guess(c_ref)
        c = _scaled(c, gc, c_ref, gc0)[0] if gc0 else c
    else:
        c = RemoveSpeciesTransformation([ion]).apply_transformation(d)
    return _States(formula, d, c, gd, gc, charged_from, rule), None


def _known_or_duplicate(
    cid: str, states: _States, mirror: _Mirror, seen: dict, exclude: str
) -> tuple[list[str], str | None, tuple | None]:
    """Whether a candidate is known or a duplicate: the mirror ids of its formula, the one it matches
    (structure; None if none was looked for or matched) and the dropped row (None: keep it; then it is
    recorded in ``seen``, {formula: [(candidate id, discharged structure)]})."""
    t, pos, matcher = mirror.table, mirror.pos, mirror.matcher
    d, formula = states.discharged, states.formula
    known = [t["material_id"][i] for i in mirror.findex.get(composition_key(d.composition), [])]
    if known and exclude == "formula":
        return known, None, (cid, formula, f"formula in the mirror ({', '.join(known[:3])})", "in the mirror")
    hit = next((mid for mid in known if matcher.fit(d, t["structure"][pos[mid]].to_structure())), None)
    if hit and exclude != "none":
        reason = f"in the mirror as {hit} (same formula and structure)"
        return known, hit, (cid, formula, reason, "in the mirror")
    dup = next((k for k, s in seen.get(formula, []) if matcher.fit(d, s)), None)
    if dup:
        return known, hit, (cid, formula, f"duplicate of candidate {dup}", "duplicate")
    seen.setdefault(formula, []).append((cid, d))
    return known, hit, None


def _oxidation_text(guess: dict) -> str:
    """An oxidation-state assignment as text, e.g. "Li+1 Fe+2 P+5 O-2"."""
    return " ".join(f"{e}{v:+g}" for e, v in guess.items())


def _candidate_row(
    cid: str, p: Prototype, label: str, states: _States, known: list[str], hit: str | None
) -> dict:
    """One row of :func:`generate_candidates`' candidates."""
    return {
        "candidate_id": cid,
        "prototype": p.key,
        "substitution": label,
        "formula": states.formula,
        "formula_charged": states.charged.composition.reduced_formula,
        "discharged": Crystal.from_structure(states.discharged),
        "charged": Crystal.from_structure(states.charged),
        "charged_from": states.charged_from,
        "oxidation_states": _oxidation_text(states.guess),
        "oxidation_states_charged": _oxidation_text(states.guess_charged),
        "volume_rule": states.volume_rule,
        "formula_known_in_mirror": bool(known),
        "known_as": hit or "",
    }


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

    ``exclude``: ``"structure"`` drops a candidate that matches a mirror structure of its formula,
    ``"formula"`` any candidate whose formula the mirror holds, ``"none"`` keeps them all (the rediscovery
    test: a screen that rejects or buries the cathodes people use will not find new ones); ``known_as`` is
    the matching mirror id either way ("" for a new one).
    """
    _check_arguments(ion, metals, mix_metals, exclude)
    mirror = _mirror(table)
    jobs = _substitution_jobs(mirror, prototypes, ion, metals, mixes, mix_metals)
    guess = _cached_oxidation_guess()
    kept, dropped, seen = [], [], {}
    for job in tqdm(jobs, desc="candidates", disable=not progress):
        p, label = job[0], job[4]
        cid = f"{p.key}:{label}" + ("" if ion == "Li" else f":{ion}")
        states, drop = _candidate_states(job, cid, ion, guess)
        if states is not None:
            known, hit, drop = _known_or_duplicate(cid, states, mirror, seen, exclude)
        if drop is not None:
            dropped.append(drop)
            continue
        kept.append(_candidate_row(cid, p, label, states, known, hit))
    cands = pd.DataFrame(kept)
    drops = pd.DataFrame(dropped, columns=["candidate_id", "formula", "reason", "category"])
    cands.attrs.update(ion=ion, exclude=exclude, n_prototypes=len(prototypes), n_tried=len(jobs))
    return cands, drops


# ----------------------------------------------------------------------------------------------
# every known framework (issue 41): prototypes from all of MP's insertion frameworks and the extra MP
# structures holding the ion, three substitution routes, Li and Na, streamed with bounded memory
# ----------------------------------------------------------------------------------------------
#
# The functions above build the chapter's screen on a handful of prototypes. Those below build it on every
# framework the project's structure sources know (:func:`find_frameworks`), one candidate at a time
# (:func:`stream_candidates`), so a screen of 10^5 candidates never holds more than one chunk of them plus
# the compact index of the unique ones (:class:`Deduplicator`); :mod:`lib.cathodes.rediscovery` writes the
# stream to disk in resumable chunks and runs the blind rediscovery benchmark on it.

#: the working ions of the every-framework generator (ion exchange swaps them)
FRAMEWORK_IONS = ("Li", "Na")
#: the anions a framework must hold one of
FRAMEWORK_ANIONS = ("O", "F", "S", "Se", "N", "Cl")
#: the elements the substitution-probability route may put into a framework: the redox metals, W, the
#: spectator cations and polyanion formers of known cathodes and the anions. The data-mined table alone ranks
#: Am4+, Pu4+, Po4+ and Cd2+ among the likeliest substitutes of Co3+, Mn4+ or Fe2+: radioactive, precious and
#: highly toxic elements are left out of a cathode screen.
PALETTE = (*METALS, "W", "Mg", "Al", "Zn", "Ga", "Ge", "Si", "B", "C", "P", "As", "Sn", "Zr", "Sb",
           *FRAMEWORK_ANIONS)


def system_set(system) -> frozenset[str]:
    """A chemical system ('Fe-Li-O-P', or a sequence of symbols) as a set of element symbols."""
    parts = system.split("-") if isinstance(system, str) else list(system)
    return frozenset(Element(str(p).strip()).symbol for p in parts if str(p).strip())


def held_out(elements, systems) -> bool:
    """Whether a material with ``elements`` belongs to one of the held-out chemical ``systems``: its elements
    include all of a system's (the rule of :class:`lib.cathodes.stability.SystemHull`'s ``exclude_systems``:
    the held-out material, its doped and mixed variants go; its subsystems stay)."""
    els = frozenset(elements)
    return any(system_set(s) <= els for s in systems)


def _elements(c) -> frozenset[str]:
    return frozenset(Element.from_Z(int(z)).symbol for z in np.unique(c.numbers))


@dataclass(frozen=True, eq=False)
class Framework:
    """A known structure holding a working ion that substitutions start from: the discharged end of one of
    MP's insertion pairs (``charged``: its pair's charged end, the one with the fewest ions left) or an extra
    MP structure holding the ion (``charged`` None: the charged state is built by removing the ions)."""

    id: str
    ion: str
    source: str
    formula: str
    elements: frozenset
    discharged: Crystal
    charged: Crystal | None = None
    charged_id: str | None = None

    @property
    def system(self) -> str:
        return "-".join(sorted(self.elements))

    @property
    def metals(self) -> tuple[str, ...]:
        """The redox metals (:data:`METALS`) it holds, in METALS' order."""
        return tuple(m for m in METALS if m in self.elements)

    def __len__(self) -> int:
        return len(self.discharged)


def _ion_share(formula: str, ion: str) -> float:
    c = Composition(formula)
    return c[Element(ion)] / c.num_atoms


def _usable(c: Crystal, ion: str, max_atoms: int) -> bool:
    els = _elements(c)
    return (len(c) <= max_atoms and ion in els and bool(els & set(METALS))
            and bool(els & set(FRAMEWORK_ANIONS)) and len(els) >= 3)


def find_frameworks(pairs: pd.DataFrame, extra: pd.DataFrame | None = None,
                    ions: Sequence[str] = FRAMEWORK_IONS, max_atoms: int = 80,
                    exclude_systems: Sequence = (), n: int | None = None,
                    elements: Sequence[str] | None = None) -> list[Framework]:
    """Every known framework of ``ions``, smallest first (sites, then id); the first ``n`` (None: all).

    ``pairs``: :func:`lib.data.electrodes.load_electrode_pairs` (every discharged end of a pair of one of
    ``ions``, with the charged end of its pair that keeps the fewest ions); ``extra``: a table of
    ``material_id`` and ``structure`` (``load_dataset("extra_structures")``), whose structures holding one of
    the ions are frameworks without a charged end. A framework must hold the ion, a redox metal
    (:data:`METALS`), an anion (:data:`FRAMEWORK_ANIONS`), at least three elements and at most ``max_atoms``
    sites; with ``elements``, only frameworks whose elements all lie in it. ``exclude_systems``: frameworks of
    these chemical systems are left out (:func:`held_out`)."""
    ex = [system_set(s) for s in exclude_systems]
    allowed = frozenset(elements) if elements is not None else None
    out: list[Framework] = []
    seen: set[str] = set()
    p = pairs[pairs["ion"].isin(list(ions))]
    order = sorted(range(len(p)), key=lambda i: (p["low_mpid"].iat[i], _ion_share(p["formula_charged"].iat[i],
                                                                                    p["ion"].iat[i]),
                                                 str(p["battery_id"].iat[i])))
    for i in order:
        mid, ion, d = str(p["low_mpid"].iat[i]), p["ion"].iat[i], p["discharged"].iat[i]
        if mid in seen:
            continue
        seen.add(mid)
        els = _elements(d)
        if not _usable(d, ion, max_atoms) or held_out(els, ex):
            continue
        if allowed is not None and not els <= allowed:
            continue
        out.append(Framework(mid, ion, "electrode_pairs", d.formula, els, d, p["charged"].iat[i],
                             str(p["high_mpid"].iat[i])))
    if extra is not None:
        for mid, d in zip(extra["material_id"], extra["structure"], strict=True):
            mid = str(mid)
            if mid in seen or d is None:
                continue
            seen.add(mid)
            els = _elements(d)
            ion = next((x for x in ions if x in els), None)
            if ion is None or not _usable(d, ion, max_atoms) or held_out(els, ex):
                continue
            if allowed is not None and not els <= allowed:
                continue
            out.append(Framework(mid, ion, "mp_structures_extra", d.formula, els, d))
    out.sort(key=lambda f: (len(f), f.id))
    return out[:n] if n is not None else out


@dataclass(frozen=True)
class FrameworkSize:
    """How big an every-framework screen is: the first ``n_frameworks`` frameworks (smallest first; None:
    all) of at most ``max_atoms`` sites, from the pairs file only or the extra structures too (``extra``),
    with ``elements`` only those made of these elements (None: any); the routes: every other metal of
    ``metals`` on each redox metal's sites (today's rule), 50:50 ``mixes`` of two of ``mix_metals`` on the
    first redox metal's sites, pymatgen's data-mined substitutions with probability above ``threshold``
    (None: not used; at most ``max_probable`` per framework and ion, likeliest first), and each of those with
    the other working ion too (``ion_exchange``)."""

    n_frameworks: int | None
    max_atoms: int = 80
    metals: tuple[str, ...] = METALS
    mixes: tuple[float, ...] = ()
    mix_metals: tuple[str, ...] = ("Mn", "Fe", "Co", "Ni")
    threshold: float | None = 1e-3
    max_probable: int = 40
    ion_exchange: bool = True
    ions: tuple[str, ...] = FRAMEWORK_IONS
    extra: bool = True
    elements: tuple[str, ...] | None = None

    def frameworks(self, pairs: pd.DataFrame, extra: pd.DataFrame | None = None,
                   exclude_systems: Sequence = ()) -> list[Framework]:
        """This size's frameworks (:func:`find_frameworks`)."""
        return find_frameworks(pairs, extra if self.extra else None, ions=self.ions, max_atoms=self.max_atoms,
                               exclude_systems=exclude_systems, n=self.n_frameworks, elements=self.elements)


FRAMEWORK_SIZES = {
    # a test of the machinery on real chemistry: MP's Li pair frameworks of Mn, Fe, Co, Ni phosphates and
    # oxides with at most 28 sites (layered, spinel, olivine: the three classics' families), no ion exchange
    "smoke": FrameworkSize(None, max_atoms=28, max_probable=5, extra=False, ion_exchange=False, ions=("Li",),
                           elements=("Li", "Mn", "Fe", "Co", "Ni", "P", "O")),
    # every framework of MP's Li and Na pairs with at most 28 sites: >= 10,000 candidates
    "quick": FrameworkSize(None, max_atoms=28, max_probable=20, extra=False),
    # every framework of the pairs and the extra structures of Li and Na up to 80 sites: >= 100,000, streamed
    "large": FrameworkSize(None, max_atoms=80, mixes=(0.5,), max_probable=40),
}


class ProbabilityRoute:
    """pymatgen's data-mined substitutions (Hautier, Fischer, Ehrlacher, Jain & Ceder, Inorg. Chem. 50, 656
    (2011); the λ table ships with pymatgen) from a framework's species.

    :meth:`maps` gives every substitution {old species: new species} of the framework's species except the
    working ion's whose probability, the product over the species of pymatgen's ``cond_prob(new, old)``, is
    above ``threshold``: exactly what ``Substitutor(threshold).pred_from_list(species)`` returns (its branch
    and bound, tested), with the new species restricted to :data:`PALETTE` and the identity left out. The
    working ion keeps its sites (ion exchange is its own route). Cached per species set."""

    def __init__(self, threshold: float = 1e-3, palette: Sequence[str] = PALETTE):
        from pymatgen.analysis.structure_prediction.substitutor import Substitutor

        self.threshold = float(threshold)
        self.substitutor = Substitutor(threshold=self.threshold)
        self.p = self.substitutor._sp  # the SubstitutionProbability (λ table) the Substitutor uses
        allowed = set(palette)
        self.targets = sorted((sp for sp in self.p.species if sp.symbol in allowed), key=str)
        self._cache: dict[tuple, list[tuple[float, dict]]] = {}

    def maps(self, species: Sequence) -> list[tuple[float, dict]]:
        """(probability, {old Species: new Species}) of ``species`` (pymatgen Species with oxidation states),
        likeliest first (ties by text); [] when a species is not in the table."""
        from functools import reduce
        from operator import mul

        olds = tuple(sorted(set(species), key=str))
        if olds in self._cache:
            return self._cache[olds]
        out: list[tuple[float, dict]] = []
        if all(o in self.p.species for o in olds):
            rows = [sorted(((self.p.cond_prob(t, o), t) for t in self.targets),
                           key=lambda x: (-x[0], str(x[1]))) for o in olds]
            best = [r[0][0] if r else 0.0 for r in rows]

            def bound(i: int) -> float:
                return reduce(mul, best[i:], 1.0)

            def rec(i: int, prob: float, chosen: list) -> None:
                if i == len(olds):
                    if prob > self.threshold and any(c != o for c, o in zip(chosen, olds, strict=True)):
                        out.append((prob, dict(zip(olds, chosen, strict=True))))
                    return
                rest = bound(i + 1)
                for q, t in rows[i]:
                    if prob * q * rest <= self.threshold:
                        break  # sorted: no later target does better
                    rec(i + 1, prob * q, [*chosen, t])

            rec(0, 1.0, [])
        out.sort(key=lambda x: (-x[0], " ".join(f"{k}>{v}" for k, v in x[1].items())))
        self._cache[olds] = out
        return out


def site_species(structure: Structure, guess: dict | None) -> list | None:
    """Each site's species with an integer oxidation state: the composition's guess (:func:`oxidation_guess`)
    where all its states are integers, else pymatgen's ``BVAnalyzer`` (bond valences, per site; mixed valences
    such as Mn3+/Mn4+ in LiMn2O4), else None."""
    from pymatgen.core import Species

    if guess and all(float(v).is_integer() for v in guess.values()):
        return [Species(sp.symbol, int(guess[sp.symbol])) for sp in structure.species]
    from pymatgen.analysis.bond_valence import BVAnalyzer

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            vals = BVAnalyzer().get_valences(structure)
    except (ValueError, KeyError):
        return None
    return [Species(sp.symbol, int(v)) for sp, v in zip(structure.species, vals, strict=True)]


class _Job(NamedTuple):
    """One substitution of one framework: route, label, {site: element} on the discharged structure (with
    the ion already exchanged), {element: element} for the charged end (None: build it by removal), the
    candidate's ion and the route's probability (NaN but for the data-mined route)."""
    route: str
    label: str
    sites: dict
    element_map: dict | None
    ion: str
    probability: float


def _framework_jobs(fw: Framework, d0: Structure, size: FrameworkSize, probable: ProbabilityRoute | None,
                    guess) -> Iterator[_Job]:
    """Every substitution of a framework (:class:`FrameworkSize`), for its own ion and, with ion exchange, the
    other one; ``d0`` is the framework's discharged structure."""
    ions = [fw.ion] + ([x for x in size.ions if x != fw.ion] if size.ion_exchange else [])
    species = None
    if probable is not None:
        species = site_species(d0, guess(d0))
    for ion in ions:
        swap = {fw.ion: ion} if ion != fw.ion else {}
        pre = f"{fw.ion}->{ion}," if swap else ""
        ion_sites = {i: ion for i, sp in enumerate(d0.species) if swap and sp.symbol == fw.ion}
        if swap:
            yield _Job("ion exchange", f"{fw.ion}->{ion}", dict(ion_sites), dict(swap), ion, float("nan"))
        for m in fw.metals:
            sites = [i for i, sp in enumerate(d0.species) if sp.symbol == m]
            for new in size.metals:
                if new != m and new not in fw.elements:
                    yield _Job("metal", f"{pre}{m}->{new}", {**ion_sites, **dict.fromkeys(sites, new)},
                               {**swap, m: new}, ion, float("nan"))
        if size.mixes and fw.metals:
            m = fw.metals[0]
            sites = [i for i, sp in enumerate(d0.species) if sp.symbol == m]
            for f in size.mixes:
                k = int(round(f * len(sites)))
                if len(sites) < 2 or not 0 < k < len(sites):
                    continue
                first = {sites[j] for j in _mix_sites(len(sites), k)}
                for m1, m2 in itertools.combinations(size.mix_metals, 2):
                    yield _Job("mix", f"{pre}{m}->{m1}{f:g}{m2}{1 - f:g}",
                               {**ion_sites, **{i: (m1 if i in first else m2) for i in sites}}, None, ion,
                               float("nan"))
        if probable is not None and species is not None:
            olds = [sp for sp in species if sp.symbol != fw.ion]
            n = 0
            for prob, mp in probable.maps(olds):
                new_sites = {i: mp[sp].symbol for i, sp in enumerate(species)
                             if sp.symbol != fw.ion and mp[sp].symbol != sp.symbol}
                if not new_sites:
                    continue  # only oxidation states changed: the same structure
                if abs(sum(mp.get(sp, sp).oxi_state for sp in species)) > 1e-6:
                    continue  # not charge-balanced with the new species (Substitutor's pred_from_comp test)
                by_el: dict[str, set] = {}
                for sp in olds:
                    by_el.setdefault(sp.symbol, set()).add(mp[sp].symbol)
                emap = {e: next(iter(v)) for e, v in by_el.items() if len(v) == 1 and next(iter(v)) != e}
                consistent = all(len(v) == 1 for v in by_el.values())
                label = pre + ",".join(f"{o}->{mp[o]}" for o in sorted(mp, key=str) if mp[o] != o)
                yield _Job("probability", label, {**ion_sites, **new_sites},
                           {**swap, **emap} if consistent else None, ion, float(prob))
                n += 1
                if n >= size.max_probable:
                    break


def count_substitutions(frameworks: Sequence[Framework], size: FrameworkSize,
                        probable: ProbabilityRoute | None = None) -> int:
    """How many substitutions :func:`stream_candidates` tries on ``frameworks`` (every one ends as a candidate
    or a dropped row): counted without building a candidate (the data-mined route still needs each framework's
    oxidation states)."""
    if size.threshold is not None and probable is None:
        probable = ProbabilityRoute(size.threshold)
    guess = _cached_oxidation_guess(fast=True)
    return sum(1 for fw in frameworks
               for _ in _framework_jobs(fw, fw.discharged.to_structure(), size, probable, guess))


class KnownIndex:
    """The known structures by reduced composition (``material_id``, ``structure``): :meth:`match` says which
    one a structure is (pymatgen's ``StructureMatcher``, default tolerances, volumes scaled), "" for none.
    Default: :func:`lib.cathodes.stability.structure_sources` (the mirror, MP's electrode end members, the
    extra structures)."""

    def __init__(self, table: pd.DataFrame, matcher: StructureMatcher | None = None):
        self.matcher = matcher or StructureMatcher()
        self._by_key: dict[tuple, list[tuple[str, Crystal]]] = {}
        for mid, c in zip(table["material_id"], table["structure"], strict=True):
            if c is not None:
                self._by_key.setdefault(composition_key(c.numbers), []).append((str(mid), c))

    def ids(self, structure) -> list[str]:
        """The ids of the known structures of the same reduced formula."""
        return [m for m, _ in self._by_key.get(composition_key(_numbers(structure)), [])]

    def match(self, structure) -> str:
        s = as_structure(structure)
        for mid, c in self._by_key.get(composition_key(_numbers(s)), []):
            if self.matcher.fit(s, c.to_structure()):
                return mid
        return ""


def _numbers(s) -> np.ndarray:
    return s.numbers if isinstance(s, Crystal) else np.asarray(s.atomic_numbers)


class Deduplicator:
    """The unique candidates so far, as compact Crystals by reduced composition: :meth:`add` returns the id of
    the earlier candidate a structure matches (``StructureMatcher``) or records it and returns "". Memory:
    one Crystal (~1 kB for 30 sites) per unique candidate, nothing else; :meth:`restore` rebuilds it from
    chunks."""

    def __init__(self, matcher: StructureMatcher | None = None):
        self.matcher = matcher or StructureMatcher()
        self._by_key: dict[tuple, list[tuple[str, Crystal]]] = {}
        self.n = 0

    def add(self, cid: str, structure) -> str:
        s = as_structure(structure)
        bucket = self._by_key.setdefault(composition_key(_numbers(s)), [])
        for other, c in bucket:
            if self.matcher.fit(s, c.to_structure()):
                return other
        bucket.append((cid, structure if isinstance(structure, Crystal) else Crystal.from_structure(s)))
        self.n += 1
        return ""

    def restore(self, ids: Sequence[str], crystals: Sequence[Crystal]) -> None:
        for cid, c in zip(ids, crystals, strict=True):
            self._by_key.setdefault(composition_key(c.numbers), []).append((str(cid), c))
            self.n += 1


def _build(fw: Framework, d0: Structure, job: _Job, guess) -> tuple[_States | None, tuple[str, str] | None]:
    """Both states of one substitution (the rules of :func:`_candidate_states`): ``(states, None)`` or
    ``(None, (reason, category))``."""
    d = ReplaceSiteSpeciesTransformation(job.sites).apply_transformation(d0) if job.sites else d0.copy()
    formula = d.composition.reduced_formula
    gd = guess(d)
    if gd is None:
        return None, ("discharged state cannot be charge-balanced", "discharged not balanced")
    c0 = fw.charged.to_structure() if fw.charged is not None else None
    if c0 is not None and job.element_map is not None:
        emap = {k: v for k, v in job.element_map.items() if k in c0.symbol_set and k != v}
        c = SubstitutionTransformation(emap).apply_transformation(c0) if emap else c0.copy()
        charged_from = f"framework pair {fw.charged_id}"
    else:
        c = RemoveSpeciesTransformation([job.ion]).apply_transformation(d)
        charged_from = f"all {job.ion} removed"
    if job.ion not in d.symbol_set or len(c) == 0:
        return None, ("no working ion or nothing left when it is removed", "not an electrode pair")
    gc = guess(c)
    if gc is None:
        why = f"charged state {c.composition.reduced_formula} cannot be charge-balanced ({charged_from})"
        return None, (why, "charged not balanced")
    try:
        check_pair(c.composition, d.composition, job.ion)
    except ElectrodeError as exc:
        return None, (f"not an electrode pair: {exc}", "not an electrode pair")
    g0 = guess(d0)  # the real framework (its own ion): the volume reference
    d, rule = _scaled(d, gd, d0, g0) if g0 else (d, "framework volume (framework not balanced)")
    if charged_from.startswith("framework"):
        cref = fw.charged.to_structure()
        gc0 = guess(cref)
        c = _scaled(c, gc, cref, gc0)[0] if gc0 else c
    else:
        c = RemoveSpeciesTransformation([job.ion]).apply_transformation(d)
    return _States(formula, d, c, gd, gc, charged_from, rule), None


def stream_candidates(frameworks: Sequence[Framework], size: FrameworkSize, known: KnownIndex | None = None,
                      dedup: Deduplicator | None = None, start: int = 0,
                      probable: ProbabilityRoute | None = None) -> Iterator[dict]:
    """Every substitution of ``frameworks[start:]`` (:class:`FrameworkSize`), one row at a time, in a fixed
    order: ``kind`` "candidate" or "dropped", ``candidate_id`` (framework id : label : ion),
    ``framework_index``, ``framework_id``, ``framework_system``, ``framework_source``, ``route``,
    ``substitution``, ``probability``, ``ion``, ``formula``; a candidate adds ``formula_charged``, both states
    (Crystals), ``charged_from``, both oxidation-state assignments, ``volume_rule`` and ``known_as`` (the
    known structure it matches, "" for a new one: kept either way, so the rediscovery can find the cathodes
    people use; a screen drops them); a dropped row adds ``reason``, ``category`` and ``duplicate_of`` (the
    earlier candidate a duplicate matches: the rediscovery needs every framework that generates a candidate).
    Charge balance, volume scaling and the charged state follow :func:`generate_candidates`; the charged end
    is the framework's pair partner with the same element substitution when there is one."""
    dedup = dedup if dedup is not None else Deduplicator()
    if size.threshold is not None and probable is None:
        probable = ProbabilityRoute(size.threshold)
    guess = _cached_oxidation_guess(fast=True)
    for k in range(start, len(frameworks)):
        fw = frameworks[k]
        d0 = fw.discharged.to_structure()
        for job in _framework_jobs(fw, d0, size, probable, guess):
            cid = f"{fw.id}:{job.label}:{job.ion}"
            base = {"candidate_id": cid, "framework_index": k, "framework_id": fw.id,
                    "framework_system": fw.system, "framework_source": fw.source, "route": job.route,
                    "substitution": job.label, "probability": job.probability, "ion": job.ion}
            try:
                states, drop = _build(fw, d0, job, guess)
            except (ValueError, KeyError, IndexError) as exc:  # a pymatgen transformation refused the job
                states, drop = None, (f"could not be built: {exc}", "not built")
            if states is None:
                yield {**base, "kind": "dropped", "formula": "", "reason": drop[0], "category": drop[1],
                       "duplicate_of": ""}
                continue
            dup = dedup.add(cid, Crystal.from_structure(states.discharged, check=False))
            if dup:
                yield {**base, "kind": "dropped", "formula": states.formula, "reason": f"duplicate of {dup}",
                       "category": "duplicate", "duplicate_of": dup}
                continue
            yield {**base, "kind": "candidate", "formula": states.formula,
                   "formula_charged": states.charged.composition.reduced_formula,
                   "discharged": Crystal.from_structure(states.discharged, check=False),
                   "charged": Crystal.from_structure(states.charged, check=False),
                   "charged_from": states.charged_from, "oxidation_states": _oxidation_text(states.guess),
                   "oxidation_states_charged": _oxidation_text(states.guess_charged),
                   "volume_rule": states.volume_rule,
                   "known_as": known.match(states.discharged) if known is not None else ""}


def build_one(fw: Framework, size: FrameworkSize, label: str, ion: str,
              probable: ProbabilityRoute | None = None) -> dict | None:
    """Both states (Crystals, ``discharged`` and ``charged``) of the one substitution ``label`` of ``fw`` for
    ``ion``, built as :func:`stream_candidates` builds it (no duplicate or known test); None when the
    framework has no such substitution or it does not build. The rediscovery rebuilds a candidate from a
    framework outside the held-out systems when the pool's copy came from one inside them."""
    if size.threshold is not None and probable is None:
        probable = ProbabilityRoute(size.threshold)
    guess = _cached_oxidation_guess(fast=True)
    d0 = fw.discharged.to_structure()
    for job in _framework_jobs(fw, d0, size, probable, guess):
        if job.label == label and job.ion == ion:
            states, _ = _build(fw, d0, job, guess)
            if states is None:
                return None
            return {"discharged": Crystal.from_structure(states.discharged, check=False),
                    "charged": Crystal.from_structure(states.charged, check=False)}
    return None


def chunks(rows: Iterable[dict], n: int) -> Iterator[list[dict]]:
    """``rows`` in lists of ``n`` (the last one shorter)."""
    it = iter(rows)
    while part := list(itertools.islice(it, n)):
        yield part


__all__ = ["METALS", "MAX_OXIDATION", "ANIONS", "Prototype", "CLASSICS", "ScreenSize", "SCREEN_SIZES",
           "find_prototypes", "generate_candidates", "FRAMEWORK_IONS", "FRAMEWORK_ANIONS", "PALETTE",
           "Framework",
           "find_frameworks", "FrameworkSize", "FRAMEWORK_SIZES", "ProbabilityRoute", "site_species",
           "count_substitutions", "KnownIndex", "Deduplicator", "stream_candidates", "build_one", "chunks",
           "held_out",
           "system_set", "oxidation_guess"]

