"""The learned correction of a universal potential's voltage (Δ-learning): features, trees, splits, evaluation.

    V = V_uMLIP + Δ(features),   Δ learned on V_MP − V_uMLIP

with gradient-boosted trees (scikit-learn's ``GradientBoostingRegressor``, Huber loss) on features of the pair
(:func:`pair_features`): the working ion, the framework's composition (fraction-weighted mean, max and min of
seven element properties of :func:`lib.elements.element_properties`, and the fractions of the common anions and
polyanion formers), the ions per framework atom and how many are exchanged, the discharged volume per atom, and
V_uMLIP itself. An ensemble of members fitted on bootstrap resamples gives a spread ``s``; the uncertainty is
``σ_V = sqrt(s² + τ²)`` with ``τ`` calibrated so that 68.3 % of the grouped out-of-fold errors of the training
pairs are within 1 σ_V (:meth:`VoltageModel.fit`).

**Splits** (:func:`grouped_split`): no test pair shares its framework's **chemical system** with a training pair
(``by="framework"``: its reduced formula), and the known cathodes of the screen
(:data:`lib.cathodes.screen.KNOWN_CATHODES`) with every pair of their systems are in the test set;
:func:`random_split` is the split published voltage models use. :func:`compare` puts the model beside the other
routes on a split's test pairs.

Plain JSON (the trees' arrays, never pickled code): :meth:`VoltageModel.to_json` / :meth:`VoltageModel.from_json`;
the shipped model and its use are :mod:`lib.cathodes.voltage_model`.
"""

from __future__ import annotations

import functools
import json
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Composition, Element

from lib.cathodes.metrics import system_of
from lib.cathodes.screen import KNOWN_CATHODES
from lib.elements import element_properties
from lib.paths import atomic_path

FORMAT = "compendium-voltage-model/1"
#: the universal potential whose static voltage the correction is fitted on by default
#: (lib.cathodes.potentials.POTENTIALS)
POTENTIAL = "sevennet"
BASE = "umlip_static_voltage"
PROPS = ("group", "period", "electronegativity", "covalent_radius", "valence_electrons",
         "first_ionization_energy", "atomic_volume")
IONS = ("Li", "Na", "K", "Rb", "Cs", "Mg", "Ca", "Zn", "Al", "Y")
ANIONS = ("O", "F", "S", "P", "N", "Cl", "Se", "C", "B", "Si")
COVERAGE = 0.683  # the fraction of errors within 1 σ_V the calibration aims at
#: the trees' settings (fixed: chosen on the grouped out-of-fold error of the training pairs, never on test)
TREES = {"n_estimators": 200, "max_depth": 3, "learning_rate": 0.05, "subsample": 0.8, "loss": "huber",
         "min_samples_leaf": 3}


# ----------------------------------------------------------------------------------------------
# features
# ----------------------------------------------------------------------------------------------


@functools.cache
def _props(symbol: str) -> np.ndarray:
    p = element_properties(Element(symbol).Z)
    return np.array([p[k] if p[k] is not None else np.nan for k in PROPS], float)


def feature_names() -> list[str]:
    stats = [f"{s}_{p}" for s in ("mean", "max", "min") for p in PROPS]
    return (["v_base", "ions_per_framework_atom", "dx_per_framework_atom", "volume_per_atom"]
            + [f"ion_{i}" for i in IONS] + stats + [f"frac_{a}" for a in ANIONS])


def _framework(formula: str, ion: str) -> dict[str, float]:
    return {e.symbol: float(a) for e, a in Composition(formula).items() if e.symbol != ion}


def pair_features(pairs: pd.DataFrame, base: str = BASE) -> np.ndarray:
    """One row of :func:`feature_names` per pair (``ion``, ``formula_charged``, ``formula_discharged``,
    ``discharged`` (a Crystal) and the base voltage column); NaN where the base voltage is missing."""
    rows = []
    for ion, fc, fd, disc, vb in zip(pairs["ion"], pairs["formula_charged"], pairs["formula_discharged"],
                                     pairs["discharged"], pairs[base], strict=True):
        fw = _framework(fd, ion)
        n_fw = sum(fw.values())
        w = np.array(list(fw.values())) / n_fw
        P = np.vstack([_props(e) for e in fw])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an element without a property: NaN, fine for trees
            stats = np.concatenate([np.nansum(P * w[:, None], 0), np.nanmax(P, 0), np.nanmin(P, 0)])
        x_d = Composition(fd)[ion] / n_fw
        fwc = _framework(fc, ion)
        x_c = Composition(fc)[ion] / sum(fwc.values()) if fwc else 0.0
        vol = disc.volume / len(disc.numbers) if disc is not None else np.nan
        rows.append(np.concatenate([[vb, x_d, x_d - x_c, vol], [float(ion == i) for i in IONS], stats,
                                    [fw.get(a, 0.0) / n_fw for a in ANIONS]]))
    return np.array(rows, float).reshape(len(rows), len(feature_names()))


# ----------------------------------------------------------------------------------------------
# splits
# ----------------------------------------------------------------------------------------------


def framework_groups(pairs: pd.DataFrame, by: str = "chemsys") -> pd.Series:
    """Each pair's group: its framework's chemical system (``chemsys``, e.g. ``Fe-O-P``) or reduced formula
    (``framework``)."""
    if by == "framework":
        return pairs["framework"].astype(str)
    if by != "chemsys":
        raise ValueError(f"by must be 'chemsys' or 'framework', not {by!r}")
    if "framework" not in pairs:  # a table of pairs without pymatgen's electrode columns: the discharged formula
        return pd.Series([system_of(f, ion) for f, ion in zip(pairs["low_formula"], pairs["ion"], strict=True)],
                         index=pairs.index)
    return pairs["framework"].map(lambda f: "-".join(sorted(e.symbol for e in Composition(f).elements)))


def known_frameworks(formulas: Sequence[str] | None = None, ion: str = "Li", by: str = "chemsys") -> set[str]:
    """The groups of the known cathodes' frameworks (their formula without the ion)."""

    out = set()
    for f in formulas if formulas is not None else KNOWN_CATHODES:
        fw = Composition({e: a for e, a in Composition(f).items() if e.symbol != ion})
        out.add(fw.reduced_formula if by == "framework" else "-".join(sorted(e.symbol for e in fw.elements)))
    return out


def grouped_split(pairs: pd.DataFrame, seed: int = 0, test: float = 0.125, by: str = "chemsys",
                  hold_out: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Row positions of ``train`` and ``test``: every group (:func:`framework_groups`) of a known cathode
    (``hold_out``: their formulas, default the screen's known cathodes) is a test group, then whole groups
    drawn with ``seed`` join it until they hold ``test`` of the other pairs. No group is on both sides. (On
    MP's 4,401 pairs the known cathodes' systems alone hold 22 % of them, so a rule "known first, then random
    up to 20 %" would give the same test set for every seed: the drawn part is counted apart.)"""
    groups = framework_groups(pairs, by).to_numpy()
    known = known_frameworks(hold_out, by=by)
    rng = np.random.default_rng([seed, 25])
    names = sorted(set(groups))
    drawn = [names[i] for i in rng.permutation(len(names)) if names[i] not in known]
    size = pd.Series(groups).value_counts()
    chosen = {g for g in names if g in known}
    rest = int(sum(size[g] for g in names if g not in known))
    n = 0
    for g in drawn:
        if n >= test * rest:
            break
        chosen.add(g)
        n += int(size[g])
    is_test = np.isin(groups, list(chosen))
    return {"train": np.flatnonzero(~is_test), "test": np.flatnonzero(is_test)}


def random_split(pairs: pd.DataFrame, seed: int = 0, test: float = 0.2) -> dict[str, np.ndarray]:
    """Row positions of a random split of the pairs (what published voltage models use)."""
    perm = np.random.default_rng([seed, 26]).permutation(len(pairs))
    k = int(round(test * len(pairs)))
    return {"train": np.sort(perm[k:]), "test": np.sort(perm[:k])}


# ----------------------------------------------------------------------------------------------
# trees as data
# ----------------------------------------------------------------------------------------------


@dataclass
class Trees:
    """A fitted ``GradientBoostingRegressor`` as arrays (JSON), predicting exactly as scikit-learn does."""

    init: float
    learning_rate: float
    left: list[np.ndarray]
    right: list[np.ndarray]
    feature: list[np.ndarray]
    threshold: list[np.ndarray]
    value: list[np.ndarray]

    @classmethod
    def from_sklearn(cls, gbr) -> Trees:
        ts = [e[0].tree_ for e in gbr.estimators_]
        init = float(np.asarray(gbr._raw_predict_init(np.zeros((1, gbr.n_features_in_)))).ravel()[0])
        return cls(init, float(gbr.learning_rate), [t.children_left.copy() for t in ts],
                   [t.children_right.copy() for t in ts], [t.feature.copy() for t in ts],
                   [t.threshold.copy() for t in ts], [t.value[:, 0, 0].copy() for t in ts])

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, np.float32).astype(float)  # scikit-learn's trees compare float32 features
        out = np.full(len(X), self.init)
        rows = np.arange(len(X))
        for left, right, feat, thr, val in zip(self.left, self.right, self.feature, self.threshold, self.value,
                                               strict=True):
            node = np.zeros(len(X), np.int64)
            while True:
                inner = left[node] >= 0
                if not inner.any():
                    break
                f = feat[node[inner]]
                go_left = X[rows[inner], f] <= thr[node[inner]]
                node[inner] = np.where(go_left, left[node[inner]], right[node[inner]])
            out += self.learning_rate * val[node]
        return out

    def to_json(self) -> dict:
        return {"init": self.init, "learning_rate": self.learning_rate,
                "trees": [{"left": a.tolist(), "right": b.tolist(), "feature": c.tolist(), "threshold": d.tolist(),
                           "value": e.tolist()}
                          for a, b, c, d, e in zip(self.left, self.right, self.feature, self.threshold, self.value,
                                                   strict=True)]}

    @classmethod
    def from_json(cls, d: dict) -> Trees:
        ts = d["trees"]
        return cls(float(d["init"]), float(d["learning_rate"]),
                   [np.array(t["left"], np.int64) for t in ts], [np.array(t["right"], np.int64) for t in ts],
                   [np.array(t["feature"], np.int64) for t in ts], [np.array(t["threshold"], float) for t in ts],
                   [np.array(t["value"], float) for t in ts])


# ----------------------------------------------------------------------------------------------
# the model
# ----------------------------------------------------------------------------------------------


def _fit_trees(X: np.ndarray, y: np.ndarray, seed: int) -> Trees:
    from sklearn.ensemble import GradientBoostingRegressor  # here: scikit-learn only to fit

    gbr = GradientBoostingRegressor(random_state=seed, **TREES)
    ok = np.isfinite(y)
    return Trees.from_sklearn(gbr.fit(np.nan_to_num(X[ok], nan=-1.0), y[ok]))


def _calibrate_tau(err: np.ndarray, spread: np.ndarray, coverage: float = COVERAGE) -> float:
    """The τ for which ``coverage`` of |err| are within sqrt(spread² + τ²) (0 if the spread alone covers)."""
    err, spread = np.abs(err), np.asarray(spread, float)
    if np.mean(err <= spread) >= coverage:
        return 0.0
    lo, hi = 0.0, float(err.max()) + 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if np.mean(err <= np.sqrt(spread**2 + mid**2)) >= coverage else (mid, hi)
    return hi


@dataclass
class VoltageModel:
    """Δ-learning on a base voltage (module docstring): members, τ, and what it was trained on."""

    members: list[Trees]
    tau: float
    base: str = BASE
    features: tuple[str, ...] = ()
    info: dict | None = None
    potential: str = "chgnet"  # whose static voltage ``base`` is (lib.cathodes.potentials.POTENTIALS)

    @classmethod
    def fit(cls, pairs: pd.DataFrame, members: int = 10, seed: int = 0, folds: int = 5, base: str = BASE,
            by: str = "chemsys", progress: bool = False, potential: str = POTENTIAL) -> VoltageModel:
        """Fit on ``pairs`` (MP's ``avg_voltage`` the target); τ from grouped ``folds``-fold out-of-fold errors."""
        pairs = pairs[pairs[base].notna() & pairs["avg_voltage"].notna()].reset_index(drop=True)
        X = pair_features(pairs, base)
        dy = pairs["avg_voltage"].to_numpy(float) - pairs[base].to_numpy(float)
        groups = framework_groups(pairs, by).to_numpy()
        t0 = time.perf_counter()
        oof_mean, oof_spread = cls._oof(X, dy, groups, members, seed, folds)
        tau = _calibrate_tau(dy - oof_mean, oof_spread)
        model = cls(cls._members(X, dy, members, seed), tau, base, tuple(feature_names()), potential=potential)
        model.info = {"n_train": len(pairs), "members": members, "folds": folds, "group_by": by, "seed": seed,
                      "trees": TREES, "oof_mae": float(np.mean(np.abs(dy - oof_mean))),
                      "oof_coverage_spread_only": float(np.mean(np.abs(dy - oof_mean) <= oof_spread)),
                      "fit_seconds": round(time.perf_counter() - t0, 1)}
        return model

    @staticmethod
    def _members(X, dy, members, seed) -> list[Trees]:
        rng = np.random.default_rng([seed, 27])
        out = []
        for m in range(members):
            idx = rng.integers(0, len(X), len(X)) if members > 1 else np.arange(len(X))
            out.append(_fit_trees(X[idx], dy[idx], seed * 1000 + m))
        return out

    @classmethod
    def _oof(cls, X, dy, groups, members, seed, folds):
        from sklearn.model_selection import GroupKFold

        mean, spread = np.zeros(len(X)), np.zeros(len(X))
        for tr, te in GroupKFold(folds).split(X, dy, groups):
            preds = np.array([t.predict(np.nan_to_num(X[te], nan=-1.0))
                              for t in cls._members(X[tr], dy[tr], members, seed)])
            mean[te], spread[te] = preds.mean(0), preds.std(0)
        return mean, spread

    def predict(self, pairs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(voltage, σ_V) of each pair (NaN where the base voltage is missing)."""
        X = pair_features(pairs, self.base)
        preds = np.array([t.predict(np.nan_to_num(X, nan=-1.0)) for t in self.members])
        v = X[:, 0] + preds.mean(0)
        s = np.sqrt(preds.std(0) ** 2 + self.tau**2)
        bad = ~np.isfinite(X[:, 0])
        v[bad], s[bad] = np.nan, np.nan
        return v, s

    def to_json(self) -> dict:
        return {"format": FORMAT, "base": self.base, "potential": self.potential, "features": list(self.features),
                "tau": self.tau, "info": self.info, "members": [m.to_json() for m in self.members]}

    @classmethod
    def from_json(cls, d: dict) -> VoltageModel:
        if d.get("format") != FORMAT:
            raise ValueError(f"not a voltage model of this compendium (format {d.get('format')!r})")
        if list(d["features"]) != feature_names():
            raise ValueError("the model's features differ from this code's feature_names(): retrain it")
        return cls([Trees.from_json(m) for m in d["members"]], float(d["tau"]), d["base"], tuple(d["features"]),
                   d.get("info"), d.get("potential", "chgnet"))

    def save(self, path: str | Path) -> Path:
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_json(), separators=(",", ":")))
        return Path(path)


# ----------------------------------------------------------------------------------------------
# evaluation
# ----------------------------------------------------------------------------------------------


def _mae(pred, ref) -> tuple[float, int, float]:
    e = np.abs(np.asarray(pred, float) - np.asarray(ref, float))
    e = e[np.isfinite(e)]
    return (float(e.mean()) if len(e) else math.nan, len(e),
            float(e.std(ddof=1) / math.sqrt(len(e))) if len(e) > 1 else math.nan)


def compare(pairs: pd.DataFrame, split: dict[str, np.ndarray], model: VoltageModel,
            routes: dict[str, str] | None = None) -> pd.DataFrame:
    """MAE vs MP (with n and its standard error) per ion and for all pairs, on the test pairs of ``split``, of
    the voltage model, a constant (each ion's median training voltage) and every column of ``routes``
    (label -> voltage column; the ones the table has)."""
    train, test = pairs.iloc[split["train"]], pairs.iloc[split["test"]].copy()
    v, s = model.predict(test)
    med = train.groupby("ion")["avg_voltage"].median()
    test["voltage_model"], test["voltage_model_sigma"] = v, s
    test["constant"] = test["ion"].map(med).fillna(train["avg_voltage"].median())
    routes = {"constant": "constant", **(routes or {}), "voltage model": "voltage_model"}
    rows = []
    for label, col in routes.items():
        if col not in test:
            continue
        for ion, g in [("all", test), *test.groupby("ion")]:
            mae, n, se = _mae(g[col], g["avg_voltage"])
            rows.append({"route": label, "ion": ion, "mae": mae, "n": n, "se": se})
    z = np.abs(v - test["avg_voltage"].to_numpy()) / s
    out = pd.DataFrame(rows)
    out.attrs["coverage_1sigma"] = float(np.mean(z[np.isfinite(z)] <= 1))
    out.attrs["test"] = test
    return out


__all__ = ["FORMAT", "POTENTIAL", "BASE", "COVERAGE", "TREES", "VoltageModel", "Trees", "pair_features", "feature_names",
           "grouped_split", "random_split", "framework_groups", "known_frameworks", "compare"]
