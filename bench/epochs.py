"""Benchmark: one full-split training epoch of CGCNN and of MEGNet, on the CPU and (where there is one) a GPU.

`python -m bench epochs` (or `make bench BENCH=epochs`). The formation-energy training split of the whole
CGCNN dataset (29,391 crystals; MEGNet drops the 260 with an atom isolated at 4 Å), each model with the
thesis-profile recipe (lib.recipes: CGCNN k = 8, batch 256; MEGNet 4 Å, batch 128), the second epoch timed
(the first warms up allocators, compiled kernels and the GPU). One JSON line per model and device:

- ``cgcnn_epoch_s_cpu`` / ``megnet_epoch_s_cpu``: torch threads = the cores; CGCNN with its compiled hot path.
  Goals (issue 16): CGCNN <= 30 s on 2 cores; MEGNet within 2x of CGCNN.
- ``cgcnn_epoch_s_cuda`` / ``megnet_epoch_s_cuda``: the GraphSet resident on the GPU (lib.device_graphs).
  Goals: CGCNN <= 0.3 s, MEGNet <= 2 s per epoch on one H100/H200.

With the per-epoch figures, ``thesis_protocol_gpu_h`` estimates the whole thesis profile on that GPU: its
GNN runs (7 properties x 10 seeds x 30 epochs, each property's training-set size) plus the SOAP runs as
measured on the CPU (`python -m bench soap`). ``--models cgcnn`` / ``--devices cpu`` narrow a run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from bench import emit, peak_rss_gb

BENCH = "epochs"
PROP = "formation_energy_per_atom"
#: training-set sizes of the seven properties in the thesis profile (80 % of the rows that have them)
N_TRAIN = {"formation_energy_per_atom": 29391, "energy_per_atom": 20333, "efermi": 29388, "band_gap": 29391,
           "log10_K_VRH": 2553, "log10_G_VRH": 2553, "poisson_ratio": 2552}


def child(model: str, device: str) -> dict:
    """Two epochs of ``model`` on ``device`` in this process; the second one's timing."""
    import torch

    from lib import models, recipes
    from lib.data import load_dataset, split
    from lib.graphs import build_graphs, cgcnn_params, megnet_params
    from lib.models.cgcnn import CGCNN
    from lib.models.megnet import MEGNet
    from lib.train import fit, seed_everything

    df = load_dataset("cgcnn", source="auto", progress=False, verbose=False)
    frame = models.get(model).training_rows(df, PROP, "thesis", 0)
    r = recipes.recipe(model, "thesis")
    params = (cgcnn_params if model == "cgcnn" else megnet_params)(**r.graph_kwargs())
    gs = build_graphs(frame, params, name=f"{model}_{PROP}", progress=False)
    y = frame[PROP].to_numpy()[gs.source_index]
    seed_everything(0)
    if model == "cgcnn":
        net = CGCNN.from_graph_params(params, **r.model_kwargs())
    else:
        net = MEGNet(cutoff=params.cutoff, **r.model_kwargs())
    cfg = r.train_config(epochs=2, device=device, compile=model == "cgcnn")
    with tempfile.TemporaryDirectory() as runs:
        rec = fit(net, gs, y, split(len(gs), 0), cfg, property=PROP, profile="bench", runs_dir=runs,
                  resume=False, progress=False)
    c = rec["curves"]
    dev = rec["device"]
    return {"epoch_s": c["epoch_time_s"][-1], "train_s": c["train_step_time_s"][-1],
            "first_epoch_s": c["epoch_time_s"][0], "n_train": rec["split_sizes"]["train"],
            "threads": dev["torch_threads"], "device_name": dev["name"],
            "peak_rss_gb": round(peak_rss_gb(), 3),
            "gpu_mem_gb": round(torch.cuda.max_memory_allocated() / 1e9, 3) if device == "cuda" else None}


def main(argv: list[str] | None = None) -> None:
    import torch

    ap = argparse.ArgumentParser(prog="python -m bench epochs")
    ap.add_argument("--models", default="cgcnn,megnet")
    ap.add_argument("--devices", default="cpu,cuda")
    a = ap.parse_args(argv if argv is not None else [])
    devices = [d for d in a.devices.split(",") if d != "cuda" or torch.cuda.is_available()]
    if "cuda" in a.devices and "cuda" not in devices:
        print("# no CUDA device here: GPU figures are not measured", file=sys.stderr)
    per_epoch: dict[tuple[str, str], float] = {}
    for device in devices:
        for model in a.models.split(","):
            before = [round(x, 2) for x in os.getloadavg()]
            proc = subprocess.run([sys.executable, "-m", "bench.epochs", "--child", model, device],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"bench epochs {model} on {device} failed:\n{proc.stderr[-3000:]}")
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            per_epoch[(model, device)] = res["epoch_s"]
            goal = {("cgcnn", "cpu"): "<= 30 s on 2 cores", ("cgcnn", "cuda"): "<= 0.3 s",
                    ("megnet", "cpu"): "<= 2x CGCNN's", ("megnet", "cuda"): "<= 2 s"}[(model, device)]
            emit(BENCH, f"{model}_epoch_s_{device}", res.pop("epoch_s"), "s", goal=goal, property=PROP,
                 load_before=before, load_after=[round(x, 2) for x in os.getloadavg()], **res)
    if ("cgcnn", "cuda") in per_epoch and ("megnet", "cuda") in per_epoch:
        full = N_TRAIN[PROP]
        gnn_s = sum(10 * 30 * n / full * (per_epoch[("cgcnn", "cuda")] + per_epoch[("megnet", "cuda")])
                    for n in N_TRAIN.values())
        emit(BENCH, "thesis_protocol_gpu_h", gnn_s / 3600, "h",
             note="GNN runs only (7 properties x 10 seeds x 30 epochs, epoch time scaled by training-set "
                  "size); add the SOAP runs (CPU)")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], sys.argv[3])), flush=True)
    else:
        main(sys.argv[1:])
