"""Published errors that our runs are compared with, each number with its source, in one place.

Only numbers copied from a publication go here, with the table they come from. A value the thesis
reports but that has not been copied yet is ``None`` with the note "not transcribed yet": tables
then show a gap, never an invented number.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

CGCNN_PAPER = ("T. Xie and J. C. Grossman, Crystal Graph Convolutional Neural Networks for an Accurate and "
               "Interpretable Prediction of Material Properties, Phys. Rev. Lett. 120, 145301 (2018)")
MEGNET_PAPER = ("C. Chen, W. Ye, Y. Zuo, C. Zheng and S. P. Ong, Graph Networks as a Universal Machine Learning "
                "Framework for Molecules and Crystals, Chem. Mater. 31, 3564 (2019)")
THESIS = "the thesis reproduced by this compendium"
NOT_TRANSCRIBED = "not transcribed yet"


@dataclass(frozen=True)
class Reported:
    """One published test error: which model, property, value, unit, training-set size, source."""

    model: str  # "cgcnn", "megnet", "soap_svr", ...
    property: str  # a lib.data.TARGETS column
    mae: float | None  # None: not transcribed yet
    unit: str
    n_train: int | None  # training-set size the error was obtained with (None: not transcribed)
    source: str  # short name of the publication: "CGCNN paper", "thesis"
    where: str  # table or figure in it
    citation: str
    note: str = ""


_CGCNN_T1 = "Table 1"
_PROPS = ("formation_energy_per_atom", "energy_per_atom", "band_gap", "efermi", "log10_K_VRH", "log10_G_VRH",
          "poisson_ratio")

REPORTED: tuple[Reported, ...] = (
    # CGCNN paper, Table 1: MAE of CGCNN on the MP test sets, with the number of training data. The sizes are
    # 60 % of the paper's id lists (46,744 / 27,430 / 3,402; split 60:20:20): see tests/test_literature.py
    Reported("cgcnn", "formation_energy_per_atom", 0.039, "eV/atom", 28046, "CGCNN paper", _CGCNN_T1,
             CGCNN_PAPER),
    Reported("cgcnn", "energy_per_atom", 0.072, "eV/atom", 28046, "CGCNN paper", _CGCNN_T1, CGCNN_PAPER,
             "'absolute energy' in the paper"),
    Reported("cgcnn", "band_gap", 0.388, "eV", 16458, "CGCNN paper", _CGCNN_T1, CGCNN_PAPER),
    Reported("cgcnn", "efermi", 0.363, "eV", 28046, "CGCNN paper", _CGCNN_T1, CGCNN_PAPER),
    Reported("cgcnn", "log10_K_VRH", 0.054, "log10(GPa)", 2041, "CGCNN paper", _CGCNN_T1, CGCNN_PAPER,
             "'bulk moduli', log(GPa) in the paper"),
    Reported("cgcnn", "log10_G_VRH", 0.087, "log10(GPa)", 2041, "CGCNN paper", _CGCNN_T1, CGCNN_PAPER,
             "'shear moduli', log(GPa) in the paper"),
    Reported("cgcnn", "poisson_ratio", 0.030, "–", 2041, "CGCNN paper", _CGCNN_T1, CGCNN_PAPER),
    # the thesis, Table 4 (CGCNN): only the formation energy has been copied so far
    Reported("cgcnn", "formation_energy_per_atom", 0.083, "eV/atom", None, "thesis", "Table 4", THESIS,
             "training-set size " + NOT_TRANSCRIBED),
    *(Reported("cgcnn", p, None, "", None, "thesis", "Table 4", THESIS, NOT_TRANSCRIBED)
      for p in _PROPS if p != "formation_energy_per_atom"),
    # MEGNet paper, Table 2: MAE of MEGNet on its own MP 2018.6.1 dataset (training-set sizes not copied)
    Reported("megnet", "formation_energy_per_atom", 0.028, "eV/atom", None, "MEGNet paper", "Table 2", MEGNET_PAPER,
             "MP 2018.6.1 dataset; training-set size " + NOT_TRANSCRIBED),
    Reported("megnet", "band_gap", 0.33, "eV", None, "MEGNet paper", "Table 2", MEGNET_PAPER,
             "MP 2018.6.1 dataset; training-set size " + NOT_TRANSCRIBED),
    Reported("megnet", "log10_K_VRH", 0.050, "log10(GPa)", None, "MEGNet paper", "Table 2", MEGNET_PAPER,
             "MP 2018.6.1 dataset; training-set size " + NOT_TRANSCRIBED),
    Reported("megnet", "log10_G_VRH", 0.079, "log10(GPa)", None, "MEGNet paper", "Table 2", MEGNET_PAPER,
             "MP 2018.6.1 dataset; training-set size " + NOT_TRANSCRIBED),
    # the thesis, Table 5 (MEGNet on its dataset) and Table 6 (on the CGCNN dataset): not copied yet
    *(Reported("megnet", p, None, "", None, "thesis", "Tables 5-6", THESIS, NOT_TRANSCRIBED) for p in _PROPS),
    # the thesis, Table 6: the SOAP baselines (its SOAP-SVR took 19,000-42,000 s per run; errors not copied yet)
    *(Reported(m, p, None, "", None, "thesis", "Table 6", THESIS, NOT_TRANSCRIBED)
      for m in ("soap_svr", "soap_mlp") for p in _PROPS),
)


def reported(model: str | None = None, property: str | None = None,
             source: str | None = None) -> list[Reported]:
    """The published values matching the given model / property / source (None: any)."""
    return [r for r in REPORTED if (model is None or r.model == model)
            and (property is None or r.property == property) and (source is None or r.source == source)]


def reported_frame(model: str | None = None) -> pd.DataFrame:
    """Every published value (of one model) as a table."""
    return pd.DataFrame([asdict(r) for r in REPORTED if model is None or r.model == model])


def compare_row(record: dict, sources: tuple[str, ...] = ("thesis", "CGCNN paper")) -> pd.DataFrame:
    """The thesis's Table 4 row for one run: our test MAE beside the published ones, with sources.

    Rows: this run, then each source; columns: MAE (in the property's unit), training-set size, where
    the number comes from.
    """
    unit = record.get("unit") or ""
    col = f"MAE ({unit})" if unit and unit != "–" else "MAE"
    rows = [{"": f"this run ({record['profile']}, seed {record['seed']})", col: record["test_mae"],
             "n_train": record["split_sizes"]["train"], "source": f"results/runs/{record['run']}.json"}]
    for src in sources:
        for r in reported(record["model"], record["property"], src):
            rows.append({"": src, col: r.mae, "n_train": r.n_train,
                         "source": f"{r.where}: {r.citation}" + (f" ({r.note})" if r.note else "")})
    out = pd.DataFrame(rows).set_index("")
    out["n_train"] = out["n_train"].astype("Int64")
    return out


__all__ = ["Reported", "REPORTED", "CGCNN_PAPER", "MEGNET_PAPER", "THESIS", "NOT_TRANSCRIBED", "reported", "reported_frame",
           "compare_row"]
