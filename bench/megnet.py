"""One training epoch of our MEGNet vs matgl's MEGNet, same sizes, same 5,000 crystals, one run.

    make bench BENCH=megnet        (needs the optional peers: pip install -r requirements-bench.txt)
    OMP_NUM_THREADS=1 make bench BENCH=megnet   (one thread each: steadier on a shared machine)

Both models: atom embedding 16, 100 Gaussians (width 0.5) on 0..5 Å, state 2, three blocks (64, 32)
/ (64, 64, 32), Set2Set with 3 steps, head (32, 16, 1), cutoff 4 Å, Adam 1e-3, MSE, batch 128, the
formation energy of the same crystals. Graphs are built before the clock starts on both sides (ours
from the lib.graphs cache, matgl's MGLDataset in memory); the timed epoch is forward + loss + backward
+ step over every training batch, batch collation included (GraphSet.batch for ours, matgl's PyG
DataLoader and its pos/pbc_offshift set-up for matgl). One warm-up pass of a few batches precedes
each timed epoch. Crystals with an atom isolated at 4 Å are left out of both (ours drops them).
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch

from bench import emit, peak_rss_gb

N_CRYSTALS = int(os.environ.get("BENCH_MEGNET_N", 5000))
BATCH = 128
WARMUP_BATCHES = 3


def _ours(gs, y: np.ndarray) -> tuple[float, int]:
    from lib.models.megnet import MEGNet
    from lib.train import batches, epoch_order

    torch.manual_seed(0)
    model = MEGNet(cutoff=4.0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    yt = torch.as_tensor((y - y.mean()) / y.std(), dtype=torch.float32)
    order = batches(epoch_order(np.arange(len(gs)), 0, 0), BATCH)

    def step(bidx):
        out = model(gs.batch(bidx))
        loss = torch.nn.functional.mse_loss(out, yt[torch.from_numpy(bidx)])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    model.train()
    for bidx in order[:WARMUP_BATCHES]:
        step(bidx)
    t0 = time.perf_counter()
    for bidx in order:
        step(bidx)
    return time.perf_counter() - t0, sum(p.numel() for p in model.parameters())


def _matgl(structures, y: np.ndarray, tmp: str) -> tuple[float, int]:
    from matgl.ext.pymatgen import Structure2Graph, get_element_list
    from matgl.graph.data import MGLDataLoader, MGLDataset
    from matgl.models import MEGNet as MatglMEGNet

    elements = get_element_list(structures)
    conv = Structure2Graph(element_types=elements, cutoff=4.0)
    yn = ((y - y.mean()) / y.std()).tolist()
    ds = MGLDataset(structures=structures, converter=conv, labels={"eform": yn}, save_cache=False,
                    root=tmp)
    train_loader, _ = MGLDataLoader(train_data=ds, val_data=ds, batch_size=BATCH,
                                    num_workers=0, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = MatglMEGNet(dim_node_embedding=16, dim_edge_embedding=100, dim_state_embedding=2, nblocks=3,
                        hidden_layer_sizes_input=(64, 32), hidden_layer_sizes_conv=(64, 64, 32),
                        hidden_layer_sizes_output=(32, 16), niters_set2set=3, nlayers_set2set=1,
                        element_types=elements, cutoff=4.0, gauss_width=0.5)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(g, lat, state_attr, labels):
        # what matgl's ModelLightningModule.forward does before calling the model
        lat = lat.unsqueeze(0) if lat.dim() == 2 else lat
        batch = g.batch
        g.pos = (g.frac_coords.unsqueeze(-1) * lat[batch]).sum(dim=1)
        g.pbc_offshift = (g.pbc_offset.unsqueeze(-1) * lat[batch[g.edge_index[0]]]).sum(dim=1)
        out = model(g, state_attr=state_attr)
        loss = torch.nn.functional.mse_loss(out, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    model.train()
    for i, b in enumerate(train_loader):
        if i >= WARMUP_BATCHES:
            break
        step(*b)
    t0 = time.perf_counter()
    for b in train_loader:
        step(*b)
    return time.perf_counter() - t0, sum(p.numel() for p in model.parameters())


def main() -> None:
    import tempfile

    try:
        import matgl  # noqa: F401
    except ImportError:
        print("bench megnet: matgl is not installed; `.venv/bin/pip install -r requirements-bench.txt "
              "-c requirements-lock.txt` adds it (optional, not needed by the compendium).")
        return
    from lib.data import load_dataset, target_frame
    from lib.graphs import build_graphs, megnet_params
    from lib.train import tune_malloc

    tune_malloc()  # process-wide glibc setting that lib.train.fit applies; it speeds both sides alike

    df = target_frame(load_dataset("cgcnn", source="mirror", progress=False), "formation_energy_per_atom",
                      n_max=N_CRYSTALS, seed=0)
    gs = build_graphs(df, megnet_params(4.0), name=f"bench-megnet-{N_CRYSTALS}", on_isolated="drop")
    keep = df.set_index("material_id").loc[list(gs.material_ids)]
    y = keep["formation_energy_per_atom"].to_numpy(np.float64)
    structures = [c.to_structure() for c in keep["structure"]]
    threads = torch.get_num_threads()

    t_ours, p_ours = _ours(gs, y)
    emit("megnet", "ours_s_per_epoch", t_ours, "s", n=len(y), batch=BATCH, n_params=p_ours, threads=threads)
    with tempfile.TemporaryDirectory() as tmp:
        t_matgl, p_matgl = _matgl(structures, y, tmp)
    emit("megnet", "matgl_s_per_epoch", t_matgl, "s", n=len(y), batch=BATCH, n_params=p_matgl,
         threads=threads)
    emit("megnet", "matgl_over_ours", t_matgl / t_ours, "x", n=len(y),
         note=">1 means ours is faster")
    emit("megnet", "peak_rss", peak_rss_gb(), "GB", n=len(y))
