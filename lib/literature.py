"""Published results that our runs are compared with, every number with its source, in one place.

Three sources: the thesis this compendium reproduces (its Tables 4, 5 and 6), the CGCNN paper (Table 1, as
quoted in the thesis's Table 4) and the MEGNet paper (Table 2, as quoted in the thesis's Table 5). The tables
below are the thesis's, copied number for number from its text (the project reads nothing outside itself at
run time for this); ``tests/test_literature.py`` checks hand-picked cells against the thesis's text.

Each number becomes a :class:`Reported`: model, property, dataset (the CGCNN paper's MP ids or the MEGNet
paper's MP 2018.6.1), test MAE (with RMSE, R², their standard deviations over ``n_runs`` random splits and
the training time where the source gives them), the training-set size and epochs, and where it comes from.

Where our data differ from the thesis's: the thesis fetched its CGCNN-id data from a newer MP; its elastic
sets had about 9,000-9,500 training crystals (Table 4: 9,507 / 9,258 / 9,024), while the mirror's elastic file
(the CGCNN paper's 3,402 ids, 3,191 with data) gives about 2,550; and its "energy per atom" is the CGCNN
paper's absolute energy, ours MP 2024's PBE energies. Its times were taken on its own CPU and GPU.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass

import pandas as pd

CGCNN_PAPER = ("T. Xie and J. C. Grossman, Crystal Graph Convolutional Neural Networks for an Accurate and "
               "Interpretable Prediction of Material Properties, Phys. Rev. Lett. 120, 145301 (2018)")
MEGNET_PAPER = ("C. Chen, W. Ye, Y. Zuo, C. Zheng and S. P. Ong, Graph Networks as a Universal Machine "
                "Learning Framework for Molecules and Crystals, Chem. Mater. 31, 3564 (2019)")
THESIS = ("E. Abenza Severá, Application of Graph Neural Networks for the discovery of new materials for "
          "the cathode of batteries, master's thesis, Universidad Politécnica de Madrid (2021)")
NOT_TRANSCRIBED = "not transcribed"  # kept for callers; every number the thesis reports is transcribed
UNITS = {"formation_energy_per_atom": "eV/atom", "energy_per_atom": "eV/atom", "efermi": "eV",
         "band_gap": "eV", "log10_K_VRH": "log10(GPa)", "log10_G_VRH": "log10(GPa)", "poisson_ratio": "–"}

# The thesis's Table 4: CGCNN on the CGCNN dataset, the CGCNN paper's MAE (its Table 1) and the thesis's,
# each with its training-set size; mae_dft: the DFT error the thesis quotes (a range for formation energy).
TABLE4 = """property,unit,n_train_paper,mae_paper,n_train_thesis,mae_thesis,mae_dft
efermi,eV,28046,0.363,36837,0.473,
energy_per_atom,eV/atom,28046,0.072,36837,0.132,
formation_energy_per_atom,eV/atom,28046,0.039,36837,0.084,0.081-0.136
band_gap,eV,16458,0.388,36837,0.363,0.6
log10_K_VRH,log10(GPa),2041,0.054,9507,0.085,0.050
log10_G_VRH,log10(GPa),2041,0.087,9258,0.142,0.069
poisson_ratio,-,2041,0.030,9024,0.037,
"""

# The thesis's Table 5: MEGNet on the MEGNet dataset (MP 2018.6.1), the MEGNet paper's MAE (its Table 2) and
# the thesis's, with training-set sizes and epochs.
TABLE5 = """property,unit,n_train_paper,mae_paper,epochs_paper,n_train_thesis,mae_thesis,epochs_thesis
formation_energy_per_atom,eV/atom,60000,0.028,>1000,55391,0.122,30
band_gap,eV,36720,0.330,>1000,55391,0.552,30
log10_K_VRH,log10(GPa),4664,0.050,>1000,4664,0.117,30
log10_G_VRH,log10(GPa),4664,0.079,>1000,4664,0.125,30
"""

# The thesis's Table 6 (and Figure 14): the four models on the CGCNN dataset, mean and standard deviation over
# n_runs random splits of the test MAE, RMSE, R² and the training time in seconds on its CPU, or on its GPU
# (for CGCNN the CPU and GPU columns are separate runs; SOAP-MLP was timed on the GPU only).
TABLE6 = """property,model,n_runs,mae_mean,mae_std,rmse_mean,rmse_std,r2_mean,r2_std,train_s_cpu_mean,train_s_cpu_std,train_s_gpu_mean,train_s_gpu_std
energy_per_atom,cgcnn,10,0.135,0.006,0.266,0.005,0.977,0.001,17810,5038,655,40
energy_per_atom,megnet,10,0.157,0.018,0.223,0.020,0.984,0.002,5873,66,,
energy_per_atom,soap_svr,2,0.916,0.012,1.360,0.004,0.432,0.006,41326,2449,,
energy_per_atom,soap_mlp,2,1.407,0.001,1.762,0.001,0.036,0.002,,,85,2
formation_energy_per_atom,cgcnn,10,0.083,0.007,0.140,0.012,0.984,0.003,17865,5217,655,39
formation_energy_per_atom,megnet,10,0.134,0.012,0.204,0.017,0.966,0.006,5870,59,,
formation_energy_per_atom,soap_svr,2,0.454,0.004,0.690,0.007,0.617,0.008,19076,1776,,
formation_energy_per_atom,soap_mlp,2,0.892,0.001,1.057,0.001,0.103,0.001,,,82,1
band_gap,cgcnn,10,0.387,0.011,0.637,0.013,0.868,0.005,17852,5289,694,60
band_gap,megnet,10,0.531,0.042,0.814,0.034,0.787,0.018,5873,53,,
band_gap,soap_svr,2,0.843,0.006,1.331,0.017,0.427,0.016,42751,9,,
band_gap,soap_mlp,2,1.326,0.015,1.754,0.019,0.015,0.021,,,87,5
efermi,cgcnn,10,0.438,0.009,0.657,0.010,0.947,0.002,17928,4844,728,85
efermi,megnet,10,0.604,0.024,0.851,0.030,0.947,0.002,5952,228,,
efermi,soap_svr,2,2.292,0.011,2.836,0.004,0.012,0.005,19789,495,,
efermi,soap_mlp,2,2.223,0.001,2.759,0.003,0.002,0.002,,,85,4
log10_K_VRH,cgcnn,10,0.082,0.003,0.139,0.015,0.825,0.043,1802,1026,124,14
log10_K_VRH,megnet,10,0.109,0.010,0.183,0.033,0.738,0.061,486,15,,
log10_K_VRH,soap_svr,2,0.286,0.005,0.398,0.018,0.003,0.005,1303,19,,
log10_K_VRH,soap_mlp,2,0.275,0.000,0.354,0.000,0.012,0.000,,,23,0
log10_G_VRH,cgcnn,10,0.142,0.004,0.287,0.005,0.524,0.015,1746,1010,119,15
log10_G_VRH,megnet,10,0.170,0.048,0.295,0.080,0.478,0.199,481,10,,
log10_G_VRH,soap_svr,2,0.300,0.008,0.422,0.033,0.021,0.002,1181,36,,
log10_G_VRH,soap_mlp,2,0.301,0.001,0.460,0.002,0.027,0.007,,,22,2
poisson_ratio,cgcnn,10,0.038,0.000,0.055,0.001,0.400,0.013,1711,952,115,15
poisson_ratio,megnet,10,0.045,0.001,0.064,0.003,0.246,0.037,469,13,,
poisson_ratio,soap_svr,2,0.057,0.000,0.075,0.000,0.036,0.007,293,18,,
poisson_ratio,soap_mlp,2,0.057,0.000,0.074,0.000,0.010,0.003,,,21,0
"""


@dataclass(frozen=True)
class Reported:
    """One published result: model, property, dataset, test errors (mean, and std over n_runs), source."""

    model: str  # "cgcnn", "megnet", "soap_svr", "soap_mlp"
    property: str  # a lib.data.TARGETS column
    mae: float
    unit: str
    n_train: int | None  # training-set size (None: the source does not say)
    source: str  # "thesis", "CGCNN paper", "MEGNet paper"
    where: str  # table in the source, e.g. "Table 6"
    citation: str
    dataset: str = "cgcnn"  # "cgcnn" (the CGCNN paper's MP ids) or "megnet" (MP 2018.6.1)
    note: str = ""
    mae_std: float | None = None
    rmse: float | None = None
    rmse_std: float | None = None
    r2: float | None = None
    r2_std: float | None = None
    n_runs: int | None = None
    train_time_s: float | None = None  # mean training time per run (s)
    train_time_std: float | None = None
    train_device: str | None = None  # "CPU" or "GPU" (the source's hardware)
    epochs: str | None = None  # as the source gives it ("30", ">1000")


def _read(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text), dtype={"epochs_paper": str, "epochs_thesis": str, "mae_dft": str})


def _opt(v) -> float | None:
    return None if pd.isna(v) else float(v)


def gpu_note(r, gpu: bool) -> str:
    """CGCNN's GPU runs, beside its CPU time (Table 6 gives both)."""
    if gpu or pd.isna(r.train_s_gpu_mean):
        return ""
    return f"GPU runs: {r.train_s_gpu_mean:g} ± {r.train_s_gpu_std:g} s"


def _build() -> tuple[Reported, ...]:
    out: list[Reported] = []
    t4 = _read(TABLE4)
    for r in t4.itertuples(index=False):
        unit = UNITS[r.property]
        out.append(Reported("cgcnn", r.property, float(r.mae_paper), unit, int(r.n_train_paper),
                            "CGCNN paper", "Table 1 (the thesis's Table 4)", CGCNN_PAPER,
                            note="60:20:20 split of the paper's id lists"))
        dft = f"; DFT error {r.mae_dft} {unit}" if isinstance(r.mae_dft, str) and r.mae_dft else ""
        out.append(Reported("cgcnn", r.property, float(r.mae_thesis), unit, int(r.n_train_thesis), "thesis",
                            "Table 4", THESIS, note="one run" + dft))
    for r in _read(TABLE5).itertuples(index=False):
        unit = UNITS[r.property]
        out.append(Reported("megnet", r.property, float(r.mae_paper), unit, int(r.n_train_paper),
                            "MEGNet paper", "Table 2 (the thesis's Table 5)", MEGNET_PAPER, dataset="megnet",
                            epochs=str(r.epochs_paper)))
        out.append(Reported("megnet", r.property, float(r.mae_thesis), unit, int(r.n_train_thesis), "thesis",
                            "Table 5", THESIS, dataset="megnet", epochs=str(r.epochs_thesis)))
    n_train = {r.property: int(r.n_train_thesis) for r in t4.itertuples(index=False)}
    for r in _read(TABLE6).itertuples(index=False):
        gpu = pd.isna(r.train_s_cpu_mean)  # SOAP-MLP: timed on the GPU only
        out.append(Reported(
            r.model, r.property, float(r.mae_mean), UNITS[r.property], n_train.get(r.property), "thesis",
            "Table 6", THESIS, mae_std=_opt(r.mae_std), rmse=_opt(r.rmse_mean), rmse_std=_opt(r.rmse_std),
            r2=_opt(r.r2_mean), r2_std=_opt(r.r2_std), n_runs=int(r.n_runs),
            train_time_s=_opt(r.train_s_gpu_mean if gpu else r.train_s_cpu_mean),
            train_time_std=_opt(r.train_s_gpu_std if gpu else r.train_s_cpu_std),
            train_device="GPU" if gpu else "CPU",
            note=gpu_note(r, gpu) + ("; n_train: the thesis's Table 4 size" if r.property in n_train else ""),
        ))
    return tuple(out)


REPORTED: tuple[Reported, ...] = _build()


def reported(model: str | None = None, property: str | None = None, source: str | None = None,
             where: str | None = None, dataset: str | None = None) -> list[Reported]:
    """The published results matching the given model / property / source / table / dataset (None: any)."""
    return [r for r in REPORTED if (model is None or r.model == model)
            and (property is None or r.property == property) and (source is None or r.source == source)
            and (where is None or r.where.startswith(where)) and (dataset is None or r.dataset == dataset)]


def reported_frame(model: str | None = None) -> pd.DataFrame:
    """Every published result (of one model) as a table."""
    return pd.DataFrame([asdict(r) for r in REPORTED if model is None or r.model == model])


def thesis_table6() -> pd.DataFrame:
    """The thesis's Table 6 indexed by (property, model): n_runs and mean/std of MAE, RMSE, R², time."""
    rows = {(r.property, r.model): {
        "n_runs": r.n_runs, "test_mae": r.mae, "test_mae_std": r.mae_std, "test_rmse": r.rmse,
        "test_rmse_std": r.rmse_std, "test_r2": r.r2, "test_r2_std": r.r2_std, "train_time_s": r.train_time_s,
        "train_time_s_std": r.train_time_std, "train_device": r.train_device,
    } for r in reported(source="thesis", where="Table 6")}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index = pd.MultiIndex.from_tuples(frame.index, names=["property", "model"])
    return frame


def verdict(ours: float, thesis: float, thesis_std: float | None, higher_is_better: bool = False,
            k: float = 2.0) -> str:
    """'within' (|ours - thesis| <= k std of the thesis's runs), else 'better' or 'worse'."""
    if thesis_std is not None and abs(ours - thesis) <= k * thesis_std:
        return "within"
    return "better" if (ours > thesis) == higher_is_better else "worse"


def compare_row(record: dict, sources: tuple[str, ...] | None = None) -> pd.DataFrame:
    """One run beside the published results for its model, property and dataset: MAE, RMSE, R², n_train.

    ``sources`` default: the thesis and the model's paper. A MEGNet run on the MEGNet dataset
    (``record["dataset"] == "megnet"``) is compared with Table 5, one on the CGCNN dataset with Tables 4/6.
    """
    model = str(record["model"]).split("_mp2018")[0]
    dataset = record.get("dataset", "cgcnn") if model == "megnet" else "cgcnn"
    if sources is None:
        sources = ("thesis", {"cgcnn": "CGCNN paper", "megnet": "MEGNet paper"}.get(model, "thesis"))
    unit = record.get("unit") or ""
    u = f" ({unit})" if unit and unit != "–" else ""
    test = record.get("metrics", {}).get("test", {})
    rows = [{"": f"this run ({record['profile']}, seed {record['seed']})", f"MAE{u}": record["test_mae"],
             f"RMSE{u}": test.get("rmse"), "R²": test.get("r2"), "n_train": record["split_sizes"]["train"],
             "epochs": str(record.get("epochs_run") or ""), "source": f"results/runs/{record['run']}.json"}]
    for src in dict.fromkeys(sources):
        for r in reported(model, record["property"], src):
            if r.dataset != dataset and not (src != "thesis" and model == "megnet"):
                continue
            runs = f", mean of {r.n_runs} runs" if r.n_runs else ""
            spread = f"MAE std {r.mae_std:g} over its runs; " if r.mae_std is not None else ""
            rows.append({"": f"{src}, {r.where.split(' (')[0]}{runs}", f"MAE{u}": r.mae, f"RMSE{u}": r.rmse,
                         "R²": r.r2, "n_train": r.n_train, "epochs": r.epochs or "",
                         "source": spread + r.citation + (f"; {r.note}" if r.note else "")})
    out = pd.DataFrame(rows).set_index("")
    out["n_train"] = out["n_train"].astype("Int64")
    return out


__all__ = ["Reported", "REPORTED", "CGCNN_PAPER", "MEGNET_PAPER", "THESIS", "NOT_TRANSCRIBED", "TABLE4",
           "TABLE5", "TABLE6", "reported", "reported_frame", "thesis_table6", "verdict", "compare_row"]
