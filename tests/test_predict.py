"""lib.predict: CIF files, CGCNN-format folders and snapshots in, one row per structure out."""

from __future__ import annotations

import json
import lzma
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from lib.paths import ROOT
from lib.predict import predict, read_inputs
from lib.records import load_checkpoint

PROP = "formation_energy_per_atom"
COL = "formation_energy_per_atom [eV/atom]"
BROKEN_CIF = "data_broken\n_cell_length_a 3.0\nloop_\n_atom_site_label\nthis is not a CIF\n"


@pytest.fixture(scope="module")
def trained(mirror, tmp_path_factory):
    """A small CGCNN trained for one epoch on 24 mirror crystals, its checkpoint and a few crystals."""
    from lib.data import load_dataset, split, target_frame
    from lib.graphs import build_graphs, cgcnn_params
    from lib.models.cgcnn import CGCNN
    from lib.train import fit, predict_data, seed_everything

    table = load_dataset("cgcnn", source="mirror", progress=False, verbose=False)
    frame = target_frame(table, PROP, n_max=24, seed=2)
    gs = build_graphs(frame, cgcnn_params(), cache=False, n_jobs=1, progress=False)
    y = frame[PROP].to_numpy()[gs.source_index]
    runs = tmp_path_factory.mktemp("runs")
    seed_everything(0)
    model = CGCNN(atom_fea_len=16, n_conv=2, h_fea_len=16)
    rec = fit(model, gs, y, split(len(gs), 0), property=PROP, profile="test", runs_dir=runs, epochs=1,
              batch_size=8, num_threads=1, progress=False)
    ckpt = runs / f"{rec['run']}.pt"
    ids = list(gs.material_ids[:3])
    crystals = [frame.structure[i] for i in gs.source_index[:3]]
    expected = predict_data(load_checkpoint(ckpt, "cpu").model, gs, np.arange(3),
                            load_checkpoint(ckpt, "cpu").normalizer)
    return ckpt, ids, crystals, expected


def _write_cifs(folder, ids, crystals):
    folder.mkdir(parents=True, exist_ok=True)
    for mid, c in zip(ids, crystals, strict=True):
        (folder / f"{mid}.cif").write_text(c.to_cif(mid))


def test_cif_files_and_a_broken_one(trained, tmp_path):
    ckpt, ids, crystals, expected = trained
    _write_cifs(tmp_path, ids, crystals)
    (tmp_path / "broken.cif").write_text(BROKEN_CIF)
    files = [tmp_path / f"{ids[0]}.cif", tmp_path / "broken.cif", tmp_path / "missing.cif",
             tmp_path / f"{ids[1]}.cif"]
    df = predict(ckpt, files, device="cpu")
    assert list(df.columns) == ["id", "source", COL, "error"]
    assert df["id"].tolist() == [ids[0], "broken", "missing", ids[1]]  # names without .cif, as in folders
    assert df.loc[1, "error"].startswith("unreadable CIF") and np.isnan(df.loc[1, COL])
    assert df.loc[2, "error"] == "no such file or folder"
    ok = df[df["error"] == ""]
    assert len(ok) == 2
    # same values as the model on the training graphs (the CIF round trip keeps 8 decimals)
    np.testing.assert_allclose(ok[COL].to_numpy(), expected[:2], atol=1e-4)


def test_cgcnn_folder(trained, tmp_path):
    ckpt, ids, crystals, expected = trained
    _write_cifs(tmp_path / "set", ids, crystals)
    (tmp_path / "set" / "id_prop.csv").write_text("\n".join(f"{m},0.0" for m in [*ids, "mp-nothere"]) + "\n")
    df = predict(ckpt, [tmp_path / "set"], device="cpu")
    assert df["id"].tolist() == [*ids, "mp-nothere"]
    assert "no file mp-nothere.cif" in df.loc[3, "error"]
    np.testing.assert_allclose(df[COL].to_numpy()[:3], expected, atol=1e-4)
    # a folder of loose CIFs (no id_prop.csv) works too; ids are the file stems
    (tmp_path / "set" / "id_prop.csv").unlink()
    (tmp_path / "set" / "zz_broken.cif").write_text(BROKEN_CIF)
    df = predict(ckpt, [tmp_path / "set"], device="cpu")
    assert sorted(df["id"]) == sorted([*ids, "zz_broken"])
    assert (df["error"] != "").sum() == 1


def test_snapshot_jsonl_xz_with_bad_lines(trained, tmp_path):
    ckpt, ids, crystals, expected = trained
    lines = [json.dumps({"material_id": ids[0], "cif": crystals[0].to_cif(ids[0]), PROP: -1.0}),
             "{not json",
             json.dumps({"material_id": "mp-nocif", PROP: 0.0}),
             json.dumps({"material_id": "mp-badcif", "cif": BROKEN_CIF}),
             json.dumps({"material_id": ids[2], "crystal": {"lattice": crystals[2].lattice.tolist(),
                                                            "frac_coords": crystals[2].frac_coords.tolist(),
                                                            "numbers": crystals[2].numbers.tolist()}})]
    path = tmp_path / "snap.jsonl.xz"
    with lzma.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")
    df = predict(ckpt, [path], device="cpu")
    assert df["id"].tolist() == [ids[0], "snap.jsonl.xz:2", "mp-nocif", "mp-badcif", ids[2]]
    assert (df["error"] != "").tolist() == [False, True, True, True, False]
    assert "no 'crystal' or 'cif'" in df.loc[2, "error"]
    np.testing.assert_allclose(df[COL].to_numpy()[[0, 4]], expected[[0, 2]], atol=1e-4)
    # plain .jsonl is read the same way
    (tmp_path / "snap.jsonl").write_text(lines[0] + "\n")
    assert predict(ckpt, [tmp_path / "snap.jsonl"], device="cpu")["error"].tolist() == [""]


def test_unsupported_input_is_reported(trained, tmp_path):
    ckpt, *_ = trained
    (tmp_path / "x.txt").write_text("hello")
    items = read_inputs([tmp_path / "x.txt"])
    assert items[0][2] is None and "unsupported input" in items[0][3]


def test_cli(trained, tmp_path):
    ckpt, ids, crystals, expected = trained
    _write_cifs(tmp_path, ids[:2], crystals[:2])
    (tmp_path / "broken.cif").write_text(BROKEN_CIF)
    out = tmp_path / "pred.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "lib.predict", str(ckpt), str(tmp_path / f"{ids[0]}.cif"),
         str(tmp_path / "broken.cif"), str(tmp_path / f"{ids[1]}.cif"), "--out", str(out), "--device", "cpu"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "2 structure(s) predicted" in proc.stderr and "broken.cif" in proc.stderr
    assert "trained on only" in proc.stderr  # 19 training crystals: said
    df = pd.read_csv(out, keep_default_na=False)
    assert list(df.columns) == ["id", "source", COL, "error"] and len(df) == 3
    np.testing.assert_allclose(df[COL].to_numpy()[[0, 2]].astype(float), expected[:2], atol=1e-4)
    # no --out: the table goes to stdout
    proc = subprocess.run([sys.executable, "-m", "lib.predict", str(ckpt), str(tmp_path / f"{ids[0]}.cif")],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0 and proc.stdout.splitlines()[0] == f"id,source,{COL},error"


def test_checkpoint_loads_on_cpu_and_names_its_model(trained):
    ckpt, *_ = trained
    ck = load_checkpoint(ckpt, device="cpu")
    assert ck.device.type == "cpu" and ck.model.__class__.__name__ == "CGCNN"
    assert ck.column == COL and not ck.model.training
    raw = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert raw["model"]["class"] == "CGCNN" and raw["graph_params"]["builder"] == "cgcnn"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cpu_checkpoint_predicts_on_cuda(trained, tmp_path):
    ckpt, ids, crystals, expected = trained
    _write_cifs(tmp_path, ids, crystals)
    df = predict(ckpt, [tmp_path / f"{m}.cif" for m in ids], device="cuda")
    np.testing.assert_allclose(df[COL].to_numpy(), expected, atol=1e-4)


def test_cli_refuses_what_is_not_a_checkpoint_and_exits_1_when_nothing_is_predicted(trained, tmp_path):
    ckpt, ids, crystals, _ = trained

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "lib.predict", *map(str, args)], capture_output=True,
                              text=True, cwd=ROOT, timeout=300)

    _write_cifs(tmp_path, ids[:1], crystals[:1])
    cif = tmp_path / f"{ids[0]}.cif"
    for wrong, says in ((ckpt.with_suffix(".json"), "is a run record"),
                        (ckpt.with_name(ckpt.stem + ".state.pt"), "resumable training state"),
                        (tmp_path / "soap_svr_band_gap_quick_s0.svr.pkl", "SOAP-SVR"),
                        (cif, "not a checkpoint of this project")):
        proc = cli("-c", wrong, cif)
        assert proc.returncode == 2 and says in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    (tmp_path / "broken.cif").write_text(BROKEN_CIF)
    proc = cli("-c", ckpt, tmp_path / "broken.cif", tmp_path / "absent.cif")
    assert proc.returncode == 1 and "0 structure(s) predicted" in proc.stderr
    proc = cli(cif)
    assert proc.returncode == 2 and "--model NAME" in proc.stderr
    proc = cli("--help")
    assert proc.returncode == 0 and "examples:" in proc.stdout and "--model formation_energy" in proc.stdout


def test_list_names_checkpoints_with_profile_and_mae(trained):
    from lib.predict import found_checkpoints

    ckpt, *_ = trained
    found = found_checkpoints(ckpt.parent)
    row = found[found["use"] == f"-c {ckpt}"].iloc[0]
    rec = json.loads(ckpt.with_suffix(".json").read_text())
    assert row["profile/recipe"] == "test" and row["test MAE"] == pytest.approx(rec["test_mae"])


def test_an_ensemble_gives_mean_and_sigma(trained, tmp_path, mirror):
    """Two seeds: the mean of their predictions and its standard deviation; one checkpoint: no σ column."""
    from lib.data import load_dataset, split, target_frame
    from lib.graphs import build_graphs, cgcnn_params
    from lib.models.cgcnn import CGCNN
    from lib.predict import predict_structures
    from lib.train import fit, seed_everything

    ckpt, ids, crystals, expected = trained
    table = load_dataset("cgcnn", source="mirror", progress=False, verbose=False)
    frame = target_frame(table, PROP, n_max=24, seed=2)
    gs = build_graphs(frame, cgcnn_params(), cache=False, n_jobs=1, progress=False)
    seed_everything(1)
    rec = fit(CGCNN(atom_fea_len=16, n_conv=2, h_fea_len=16), gs, frame[PROP].to_numpy()[gs.source_index],
              split(len(gs), 0), property=PROP, profile="test", seed=1, runs_dir=tmp_path, epochs=1,
              batch_size=8, num_threads=1, progress=False)
    other = tmp_path / f"{rec['run']}.pt"
    _write_cifs(tmp_path / "cifs", ids, crystals)
    files = [tmp_path / "cifs" / f"{m}.cif" for m in ids]
    one = predict(ckpt, files, device="cpu")
    two = predict(other, files, device="cpu")
    both = predict([ckpt, other], files, device="cpu")
    sig = "formation_energy_per_atom σ [eV/atom]"
    assert list(both.columns) == ["id", "source", COL, sig, "error"] and sig not in one.columns
    pair = np.vstack([one[COL], two[COL]])
    np.testing.assert_allclose(both[COL], pair.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(both[sig], pair.std(axis=0, ddof=1), rtol=1e-12)
    assert (both[sig] > 0).all()
    # pymatgen Structures in Python, the same numbers
    py = predict_structures([c.to_structure() for c in crystals], checkpoints=[ckpt, other], ids=ids)
    np.testing.assert_allclose(py[COL], both[COL], atol=1e-5)
    assert py["id"].tolist() == ids


def test_a_shipped_ensemble_predicts_by_name(trained, tmp_path, monkeypatch, mirror):
    """lib.pretrained.ship makes pretrained/<model>_<property>/ (checkpoints + a JSON card with the
    ensemble's calibration); predict(model=...) and the CLI's --model use it, σ scaled as the card says."""
    from lib import pretrained
    from lib.data import load_dataset, split, target_frame
    from lib.graphs import build_graphs, cgcnn_params
    from lib.models.cgcnn import CGCNN
    from lib.train import fit, seed_everything

    runs, ship_root = tmp_path / "runs", tmp_path / "pretrained"
    table = load_dataset("cgcnn", source="mirror", progress=False, verbose=False)
    frame = target_frame(table, PROP, n_max=60, seed=3)
    gs = build_graphs(frame, cgcnn_params(), cache=False, n_jobs=1, progress=False)
    y, sp = frame[PROP].to_numpy()[gs.source_index], split(len(gs), 0)
    names = []
    for s in (0, 1, 2):
        seed_everything(s)
        rec = fit(CGCNN(atom_fea_len=8, n_conv=1, h_fea_len=8), gs, y, sp, property=PROP, profile="smoke",
                  seed=s, runs_dir=runs, epochs=2, batch_size=8, num_threads=1, progress=False,
                  run_name=None if s == 0 else f"cgcnn_{PROP}_smoke_s0_e{s}")
        names.append(rec["run"])
    folder = pretrained.ship(names, {"name": "test", "description": "a tiny test recipe"}, runs_dir=runs,
                             root=ship_root)
    card = json.loads((folder / "card.json").read_text())
    assert folder.name == f"cgcnn_{PROP}"
    # the CLI's way: a profile's run and its members found by name, only the properties asked for
    again = pretrained.ship_profile("smoke", runs_dir=runs, root=tmp_path / "again", properties=[PROP])
    assert [p.name for p in again] == [folder.name]
    assert json.loads((again[0] / "card.json").read_text())["ensemble_test"] == card["ensemble_test"]
    assert pretrained.ship_profile("smoke", runs_dir=runs, root=tmp_path / "none", properties=["band_gap"]) == []
    with pytest.raises(ValueError, match="unknown properties"):
        pretrained.ship_profile("smoke", runs_dir=runs, root=tmp_path / "none", properties=["voltage"])
    assert [m["checkpoint"] for m in card["members"]] == ["s0.pt", "s1.pt", "s2.pt"]
    assert card["ensemble_test"]["n"] == len(sp["test"]) and card["sigma_scale"] > 0
    assert card["split_seed"] == 0 and (folder / "card.md").read_text().startswith("# ")
    monkeypatch.setattr(pretrained, "PRETRAINED", ship_root)
    assert pretrained.resolve("formation_energy") == folder  # an alias of the property
    assert pretrained.available()["members"].tolist() == [3]
    ids = list(gs.material_ids[:4])
    _write_cifs(tmp_path / "cifs", ids, [frame.structure[i] for i in gs.source_index[:4]])
    files = [tmp_path / "cifs" / f"{m}.cif" for m in ids]
    by_name = predict(None, files, model="formation_energy", device="cpu")
    by_ckpt = predict([folder / "s0.pt", folder / "s1.pt", folder / "s2.pt"], files, device="cpu")
    sig = "formation_energy_per_atom σ [eV/atom]"
    np.testing.assert_allclose(by_name[COL], by_ckpt[COL], rtol=1e-12)
    np.testing.assert_allclose(by_name[sig], card["sigma_scale"] * by_ckpt[sig], rtol=1e-9)
    with pytest.raises(Exception, match="no shipped model 'gcn_gap'"):
        predict(None, files, model="gcn_gap")
