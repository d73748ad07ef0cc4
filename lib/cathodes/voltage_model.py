"""The voltage model a user gets: a universal potential's static voltage, corrected by a model trained on MP's voltages.

    V = V_uMLIP + Δ(features)

The correction (features, trees, σ_V, splits, evaluation) is :mod:`lib.cathodes.correction`; this module ships and
uses it: :func:`load` reads the shipped model and its card (``pretrained/voltage_<potential>_delta/``: plain JSON,
never pickled code), :func:`predict_pairs` gives the voltages of pairs of structures, :func:`predict_voltage` of
one discharged structure (its charged state given, or built by removing every ion and relaxing with
:data:`RELAXER`; then ``charged_built`` is True: the model saw no such pair in training), and
``python -m lib.cathodes.voltage_train ship`` (:mod:`lib.cathodes.voltage_train`) retrains and rewrites it.

**Data of the shipped model.** The pairs of MP's insertion electrodes whose two structures the CGCNN mirror holds
(451 of 4,401), SevenNet-0's **static** voltage on those (DFT-relaxed) structures as the base, tested on a split
grouped by the framework's chemical system (:func:`lib.cathodes.correction.grouped_split`): Li 0.115 V, tied with
SevenNet-0 alone (docs/voltage_model.md). The potential was trained on MP's own relaxations, so its voltage is not
a leak-free input; the grouping makes the *correction* leak-free with respect to frameworks.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.transformations.standard_transformations import RemoveSpeciesTransformation

from lib.cathodes import defaults, potentials
from lib.cathodes.correction import BASE, POTENTIAL, VoltageModel
from lib.cathodes.relax import relax
from lib.data.sources.files import read_cif_text
from lib.paths import ROOT
from lib.structures import Crystal, as_structure, parse_cif


def shipped_folder(potential: str = POTENTIAL) -> Path:
    """``pretrained/voltage_<potential>_delta/``: where the voltage model on that potential is shipped."""
    return ROOT / "pretrained" / f"voltage_{potential}_delta"


SHIPPED = shipped_folder()


def load(folder: str | Path | None = None) -> tuple[VoltageModel, dict]:
    """The shipped voltage model and its card."""
    folder = Path(folder) if folder is not None else SHIPPED
    if not (folder / "model.json").exists():
        raise FileNotFoundError(f"no voltage model in {folder} (python -m lib.cathodes.voltage_train ship)")
    return (VoltageModel.from_json(json.loads((folder / "model.json").read_text())),
            json.loads((folder / "card.json").read_text()))


# ----------------------------------------------------------------------------------------------
# using the model
# ----------------------------------------------------------------------------------------------


def predict_pairs(pairs: pd.DataFrame, model: VoltageModel | None = None, potential: str | None = None) -> pd.DataFrame:
    """``pairs`` (ion, charged and discharged Crystals) with the static voltage of the model's universal potential
    (``umlip_static_voltage``, on the structures as given) and the voltage model's (``voltage_model``,
    ``voltage_model_sigma``) added. ``potential``: another potential's static voltage in ``umlip_static_voltage``
    (the model's correction is then not applied: ``voltage_model`` NaN). The stages in order, each entered once:
    energies (:mod:`lib.cathodes.potentials`, through the cache), voltages (:mod:`lib.cathodes.electrodes`, in
    there), the correction (:mod:`lib.cathodes.correction`)."""
    model = model or load()[0]
    t = pairs.copy()
    for col, end in (("high_mpid", "charged"), ("low_mpid", "discharged")):
        if col not in t:
            t[col] = [f"{i}-{end}" for i in range(len(t))]
    t["formula_charged"] = [c.to_structure().composition.reduced_formula for c in t["charged"]]
    t["formula_discharged"] = [c.to_structure().composition.reduced_formula for c in t["discharged"]]
    for c in ("ef_charged", "ef_discharged"):
        t[c] = 0.0
    t = potentials.potential_pair_table(t, potentials.get_potential(potential or model.potential), relaxed=False,
                                        progress=False)
    if "avg_voltage" not in t:
        t["avg_voltage"] = np.nan
    ok = t[BASE].notna() & (potential is None or potential == model.potential)
    t["voltage_model"], t["voltage_model_sigma"] = np.nan, np.nan
    if ok.any():
        v, s = model.predict(t[ok])
        t.loc[ok, "voltage_model"], t.loc[ok, "voltage_model_sigma"] = v, s
    return t


#: the potential that relaxes a charged state built by removal (the chapter's: lib.cathodes.defaults)
RELAXER = defaults.RELAXER


#: the voltage models ``predict_voltage`` (and ``lib.predict --voltage --model``) can report
KINDS = ("delta", "gnn", "potential")


def load_gnn(folder: str | Path | None = None):
    """The shipped GNN voltage model (:mod:`lib.cathodes.voltage_gnn`, ``pretrained/voltage_gnn/``)."""
    from lib.cathodes.voltage_gnn import GNNVoltageModel

    return GNNVoltageModel.load(folder if folder is not None else ROOT / "pretrained" / "voltage_gnn")


def training_ids(folder: str | Path | None = None) -> set[str] | None:
    """The battery ids a shipped model was trained on (``training_battery_ids.txt`` beside its card), or None
    for a model shipped before the cards listed them."""
    f = Path(folder if folder is not None else SHIPPED) / "training_battery_ids.txt"
    return set(f.read_text().split()) if f.exists() else None


def predict_voltage(discharged, ion: str, charged=None, model: VoltageModel | None = None,
                    potential: str | None = None, kind: str = "delta", gnn=None) -> dict:
    """The voltage (± σ_V) of a discharged structure (a Crystal, pymatgen Structure or CIF path) and ``ion``,
    against its charged state: given, or built by removing every ``ion`` and relaxing with :data:`RELAXER`
    (then ``charged_built`` is True: outside the model's training); the base is the model's potential's static
    voltage on the two structures. ``potential`` (a name of :data:`lib.cathodes.potentials.POTENTIALS`): also that
    potential's static voltage on the same pair (``potential_voltage``), with its benchmark error on MP's pairs of
    the ion as ``potential_sigma`` (:mod:`lib.cathodes.defaults`), and the voltage of the route closest to
    measured voltages (``exp_voltage``, ``exp_route``; its error against experiment as ``exp_sigma``:
    :func:`lib.cathodes.defaults.experiment_route`). ``kind`` (:data:`KINDS`): which voltage ``voltage`` and
    ``sigma`` are: the correction (``delta``, the default), the GNN voltage model (``gnn``; ``gnn``: a loaded
    one, default the shipped one), or the potential's static voltage with its benchmark error on MP's pairs of
    the ion as σ (``potential``; needs ``potential``); ``model_kind`` says which."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    if kind == "potential" and potential is None:
        raise ValueError("kind='potential' needs the potential's name")
    model = model or load()[0]  # read once: predict_pairs and the result both need it

    def crystal(x):
        if isinstance(x, (str, Path)):
            return parse_cif(read_cif_text(Path(x)))
        return x if isinstance(x, Crystal) else Crystal.from_structure(x)

    d = crystal(discharged)
    if ion not in {e.symbol for e in as_structure(d).composition.elements}:
        raise ValueError(f"the discharged structure holds no {ion}")
    built = charged is None
    if built:
        host = RemoveSpeciesTransformation([ion]).apply_transformation(as_structure(d))
        r = relax(potentials.get_potential(RELAXER), [host], ids=["charged"], progress=False)[0]
        if not r.ok:
            raise ValueError(f"the charged state built by removing {ion} did not relax ({r.status}: {r.reason})")
        c = r.structure
    else:
        c = crystal(charged)
    pair = pd.DataFrame({"ion": [ion], "charged": [c], "discharged": [d]})
    t = predict_pairs(pair, model)
    row = t.iloc[0]
    out = {"ion": ion, "charged": row["formula_charged"], "discharged": row["formula_discharged"],
           "voltage": float(row["voltage_model"]), "sigma": float(row["voltage_model_sigma"]),
           "umlip_static_voltage": float(row[BASE]), "potential": model.potential, "charged_built": built,
           "error": str(row.get("umlip_static_error") or "")}
    if potential is not None:
        p = t if potential == model.potential else predict_pairs(pair, model, potential=potential)
        out.update(default_potential=potential, potential_voltage=float(p[BASE].iloc[0]),
                   potential_sigma=defaults.sigma_for(ion, potential))
        exp = defaults.experiment_route()
        if exp is not None:  # the route closest to measured voltages, its error against them as σ
            q = p if exp["potential"] == potential else predict_pairs(pair, model, potential=exp["potential"])
            out.update(exp_route=exp["route"], exp_voltage=float(q[BASE].iloc[0]) + exp["offset"],
                       exp_sigma=exp["sigma"])
    out["model_kind"] = kind
    if kind == "gnn":
        g = gnn if gnn is not None else load_gnn()
        v, s = g.predict(t[["ion", "charged", "discharged", "formula_charged", "formula_discharged"]])
        out.update(voltage=float(v[0]), sigma=float(s[0]), delta_voltage=float(row["voltage_model"]))
    elif kind == "potential":
        out.update(voltage=out["potential_voltage"], sigma=out["potential_sigma"],
                   delta_voltage=float(row["voltage_model"]))
    return out


__all__ = ["shipped_folder", "SHIPPED", "POTENTIAL", "RELAXER", "KINDS", "load", "load_gnn", "training_ids",
           "predict_pairs", "predict_voltage"]
