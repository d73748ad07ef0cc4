"""Hostile input end to end: a generated corpus of >= 100 bad CIFs and >= 30 broken id_prop.csv lines
through the folder source, lib.predict (function and CLI) and a one-epoch fit on what survives.

Every bad structure must be refused with one of the reasons it may have (tests/hostile.py), every good
one must be read with its formula, and nothing may raise."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hostile import GRAPH, hostile_cifs, hostile_id_prop

from lib import data
from lib.structures import (
    Crystal,
    StructureError,
    crystal_from_arrays,
    parse_cif,
    parse_optimade,
    parse_structure_dict,
)
from lib.validate import REASONS, check_arrays, check_many, closest_pair, current_limits, set_limits

PROP = "band_gap"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The hostile CIFs written as a CGCNN folder with a hostile id_prop.csv."""
    folder = tmp_path_factory.mktemp("hostile")
    cases = hostile_cifs(seed=0)
    for c in cases:
        (folder / f"{c.name}.cif").write_text(c.text, encoding="utf-8")
    lines, line_reasons, need_cif = hostile_id_prop([c.name for c in cases])
    good = next(c for c in cases if c.expect is None)
    for mid in need_cif:  # a good structure, so that the line is what is wrong
        (folder / f"{mid}.cif").write_text(good.text, encoding="utf-8")
    (folder / "id_prop.csv").write_bytes(("\ufeff" + "\n".join(lines) + "\n").encode("utf-8")
                                         + b"\xff\xfebinary,1.0\n")  # a BOM, and bytes that are no UTF-8
    return folder, cases, line_reasons, need_cif


def test_corpus_is_big_enough(corpus):
    _, cases, line_reasons, _ = corpus
    bad = [c for c in cases if c.expect is not None]
    assert len(bad) >= 100 and len(line_reasons) >= 30
    assert len({r for c in bad for r in c.expect}) >= 12  # many kinds of trouble, not one
    assert set().union(*(c.expect for c in bad)) - {GRAPH} <= set(REASONS)


def test_folder_source_gives_every_bad_input_a_reason(corpus, tmp_path):
    folder, cases, line_reasons, _ = corpus
    df = data.load_dataset("hostile", source="folder", path=folder, target=PROP, cache_dir=tmp_path,
                           progress=False, verbose=False)
    rej = df.attrs["rejected"]
    reasons = rej.groupby("material_id")["reason"].agg(set).to_dict()
    kept = set(df["material_id"])
    by_name = {c.name: c for c in cases}
    for c in cases:
        if c.expect is None or c.expect == {GRAPH}:  # good, or a valid crystal that only graphs refuse
            assert c.name in kept, (c.name, reasons.get(c.name))
        else:
            assert c.name not in kept, f"{c.name} was read although it is bad"
            assert len(reasons.get(c.name, set()) & c.expect) == 1, (c.name, reasons.get(c.name), c.expect)
    # good ones are read as what they are (the formula), with their value from id_prop.csv
    for _, row in df.iterrows():
        c = by_name[row["material_id"]]
        if c.formula is not None:
            assert row["structure"].formula == c.formula
        assert row[PROP] == pytest.approx(0.1 * ([x.name for x in cases].index(c.name) + 1), abs=5e-4)
    assert len(df) == sum(c.expect is None or c.expect == {GRAPH} for c in cases)
    # the broken id_prop.csv lines: each reported with its reason, by id, or by line number when the id
    # cannot name a file
    by_line = rej[rej["material_id"].str.startswith("id_prop.csv line")]
    for mid, reason in line_reasons.items():
        if reason in ("bad id", "no material id") or mid == ",,":
            continue
        assert reason in reasons.get(mid, set()), (mid, reason, reasons.get(mid))
        assert mid not in kept or reason == "duplicated id"  # the first of duplicated ids is kept
    n_by_line = sum(r in ("bad id", "no material id") or m == ",," for m, r in line_reasons.items())
    assert len(by_line) == n_by_line
    assert Counter(by_line["reason"]) == Counter(r for m, r in line_reasons.items()
                                                 if r in ("bad id", "no material id") or m == ",,")
    assert all(d.startswith("id_prop.csv line ") for d in by_line["detail"])
    assert "no structure" in reasons["\ufffd\ufffdbinary"]  # undecodable bytes: replaced, then no file
    counts = Counter(rej["reason"])
    assert sum(df.attrs["drops"].values()) == len(rej)
    assert counts["atoms too close"] >= 10 and counts["unknown element"] >= 13 and counts["bad lattice"] >= 14


def test_predict_and_fit_on_the_survivors(corpus, tmp_path, capsys):
    """One epoch of a tiny CGCNN on what the folder source keeps, then predictions for every file."""
    from lib.graphs import build_graphs, cgcnn_params
    from lib.models.cgcnn import CGCNN
    from lib.predict import main, predict, predict_crystals
    from lib.records import load_checkpoint
    from lib.train import fit, seed_everything

    folder, cases, line_reasons, need_cif = corpus
    df = data.load_dataset("hostile", source="folder", path=folder, target=PROP, cache_dir=tmp_path / "p",
                           progress=False, verbose=False)
    gs = build_graphs(df, cgcnn_params(), cache=False, n_jobs=1, progress=False, verbose=False)
    isolated = {c.name for c in cases if c.expect == {GRAPH}}
    assert set(gs.report["dropped_ids"]) == isolated  # dropped, each listed by id
    y = df[PROP].to_numpy()[gs.source_index]
    seed_everything(0)
    rec = fit(CGCNN(atom_fea_len=8, n_conv=1, h_fea_len=8), gs, y, data.split(len(gs), 0), property=PROP,
              profile="fuzz", runs_dir=tmp_path / "runs", epochs=1, batch_size=16, num_threads=1,
              progress=False)
    assert np.isfinite(rec["test_mae"])
    ckpt = load_checkpoint(tmp_path / "runs" / f"{rec['run']}.pt", "cpu")

    files = [folder / f"{c.name}.cif" for c in cases]
    out = predict(ckpt, files)
    col = ckpt.column
    assert len(out) == len(cases)
    for c in cases:
        row = out[out["id"] == c.name].iloc[0]  # a CIF file's id: its name without .cif
        if c.expect is None:
            assert row["error"] == "" and np.isfinite(row[col]), (c.name, row["error"])
        else:
            assert row["error"] != "" and np.isnan(row[col]), c.name
            if c.expect == {GRAPH}:
                assert "no neighbour within 8 Å" in row["error"]
            else:
                assert any(r in row["error"] for r in c.expect), (c.name, row["error"], sorted(c.expect))
    # the CLI on the folder (id_prop.csv names the files, hostile ids included): no traceback
    assert main([str(tmp_path / "runs" / f"{rec['run']}.pt"), str(folder), "--out",
                 str(tmp_path / "pred.csv")]) == 0
    cli = pd.read_csv(tmp_path / "pred.csv", keep_default_na=False)
    good = {c.name for c in cases if c.expect is None}
    assert set(cli.loc[cli["error"] == "", "id"]) == good | set(need_cif)
    assert len(cli) == len(cases) + len(line_reasons) + 1  # one row per non-blank line (+ the binary one)
    assert "could not be" in capsys.readouterr().err
    # crystals made in code are checked too
    bad = [Crystal(np.eye(3) * 4, [[0, 0, 0]], [0]), Crystal(np.eye(3) * 4, [[0, 0, 0]], [150]),
           Crystal(np.full((3, 3), np.nan), [[0, 0, 0]], [8]),
           Crystal(np.eye(3) * 4, [[0, 0, 0], [0, 0, 0.01]], [8, 8])]
    vals, errs = predict_crystals(ckpt, bad + [df["structure"].iloc[0]])
    assert all(e.startswith("invalid structure") for e in errs[:4]) and errs[4] == ""
    assert np.isnan(vals[:4]).all() and np.isfinite(vals[4])


# ----------------------------------------------------------------------------------------------
# the checks themselves
# ----------------------------------------------------------------------------------------------


def _reason(fn, *args) -> str | None:
    try:
        fn(*args)
    except StructureError as exc:
        return exc.reason
    return None


def test_every_source_path_is_checked():
    cube = np.eye(3) * 4.0
    # exact arrays (snapshots), a pymatgen dict (MP API), OPTIMADE, pymatgen Structure: the same rules
    assert _reason(crystal_from_arrays, cube, [[0, 0, 0], [0, 0, 0.0001]], [8, 8]) == "atoms too close"
    assert _reason(crystal_from_arrays, cube, [[0, 0, 0]], [0]) == "unknown element"
    assert _reason(crystal_from_arrays, cube, [[0, 0, 0]], [2.5]) == "unknown element"
    assert _reason(crystal_from_arrays, cube, [[0, 0, 0]], [101]) == "unsupported element"
    assert _reason(crystal_from_arrays, np.full((3, 3), np.nan), [[0, 0, 0]], [8]) == "bad lattice"
    assert _reason(crystal_from_arrays, np.diag([4, 4, 0.0]), [[0, 0, 0]], [8]) == "bad lattice"
    assert _reason(crystal_from_arrays, cube, [[np.inf, 0, 0]], [8]) == "bad coordinates"
    assert _reason(crystal_from_arrays, cube, [[0, 0]], [8]) == "bad structure"
    assert _reason(crystal_from_arrays, cube, [[1e6, 0, 0]], [8]) == "bad coordinates"
    assert _reason(crystal_from_arrays, np.eye(3) * 40, [[0, 0, 0]], [8]) == "too large"
    assert crystal_from_arrays(cube, [[0, 0, 0], [0.5, 0.5, 0.5]], [11, 17]).volume == pytest.approx(64.0)
    site = {"species": [{"element": "O", "occu": 1}], "abc": [0, 0, 0]}
    d = {"lattice": {"matrix": cube.tolist()}, "sites": [site, dict(site, abc=[0, 0, 0.01])]}
    assert _reason(parse_structure_dict, d) == "atoms too close"
    d["sites"] = [{"species": [{"element": "O", "occu": -0.5}], "abc": [0, 0, 0]}]
    assert _reason(parse_structure_dict, d) == "bad occupancy"
    d["sites"] = [{"species": [{"element": "Xx", "occu": 1}], "abc": [0, 0, 0]}]
    assert _reason(parse_structure_dict, d) == "unknown element"
    opt = {"lattice_vectors": cube.tolist(), "cartesian_site_positions": [[0, 0, 0], [0, 0, 0.2]],
           "species_at_sites": ["O", "O"], "species": [{"name": "O", "chemical_symbols": ["O"],
                                                       "concentration": [1.0]}]}
    assert _reason(parse_optimade, opt) == "atoms too close"
    opt["cartesian_site_positions"] = [[0, 0, 0]]
    assert _reason(parse_optimade, opt) == "bad structure"  # 1 position for 2 sites
    from pymatgen.core import Lattice, Structure
    from pymatgen.core.periodic_table import DummySpecies

    close = Structure(Lattice.cubic(4), ["O", "O"], [[0, 0, 0], [0, 0, 0.02]])
    assert _reason(Crystal.from_structure, close) == "atoms too close"
    assert _reason(Crystal.from_structure, Structure(Lattice.cubic(4), [DummySpecies("Xx")], [[0, 0, 0]])) \
        == "unknown element"


def test_limits_can_be_raised(monkeypatch):
    many = "\n".join(f"  C  C{k}  1  {k % 11 / 11:.6f}  {k // 11 % 11 / 11:.6f}  {k // 121 / 10:.6f}  1"
                     for k in range(1001))
    head = ("data_big\n_cell_length_a 14\n_cell_length_b 14\n_cell_length_c 13\n_cell_angle_alpha 90\n"
            "_cell_angle_beta 90\n_cell_angle_gamma 90\nloop_\n _symmetry_equiv_pos_site_id\n"
            " _symmetry_equiv_pos_as_xyz\n  1  'x, y, z'\nloop_\n _atom_site_type_symbol\n _atom_site_label\n"
            " _atom_site_symmetry_multiplicity\n _atom_site_fract_x\n _atom_site_fract_y\n"
            " _atom_site_fract_z\n"
            " _atom_site_occupancy\n")
    assert _reason(parse_cif, head + many) == "too large"
    monkeypatch.setenv("COMPENDIUM_MAX_ATOMS", "2000")
    assert current_limits().max_atoms == 2000
    assert len(parse_cif(head + many)) == 1001
    monkeypatch.delenv("COMPENDIUM_MAX_ATOMS")
    old = set_limits(max_atoms=5000, min_distance=0.2)
    try:
        assert current_limits().max_atoms == 5000 and old.max_atoms == 1000
        assert crystal_from_arrays(np.eye(3) * 4, [[0, 0, 0], [0, 0, 0.075]], [8, 8]) is not None  # 0.3 Å
    finally:
        set_limits()
    assert current_limits() == old
    with pytest.raises(TypeError, match="unknown limit"):
        set_limits(max_atom=3)


def test_check_many_agrees_with_check_arrays_one_by_one():
    """The vectorised table check flags exactly the crystals the one-by-one check refuses, same reasons."""
    rng = np.random.default_rng(7)
    crystals = []
    for k in range(400):
        n = int(rng.integers(1, 30))
        lat = np.diag(rng.uniform(2.5, 9.0, 3)) + rng.normal(0, 0.8, (3, 3))
        if k % 37 == 0:
            lat[2] = lat[0] + lat[1] * 1e-3  # nearly flat
        if k % 53 == 0:
            lat[1, 1] = np.nan
        z = rng.integers(1, 104, n) if k % 11 == 0 else rng.integers(1, 95, n)
        crystals.append(Crystal(lat, rng.random((n, 3)), z))
    crystals.append(Crystal([[1, 0, 0], [0, 1, 0], [40, 40, 0.05]], [[0, 0, 0]], [8]))  # thin, needs LLL
    crystals.append(Crystal([[3, 0, 0], [0, 3, 0], [30, 30, 3]], [[0, 0, 0], [0.5, 0.5, 0.5]], [8, 8]))
    many = check_many(crystals)
    one = []
    for c in crystals:
        try:
            check_arrays(c.lattice, c.frac_coords, c.numbers)
            one.append(None)
        except StructureError as exc:
            one.append((exc.reason, str(exc)))
    assert [None if e is None else (e.reason, str(e)) for e in many] == one
    assert 50 < sum(e is not None for e in one) < 380  # both kinds occur
    # closest_pair against a brute-force search over 5x5x5 images
    for c in crystals[:60]:
        if not np.isfinite(c.lattice).all() or abs(np.linalg.det(c.lattice)) < 1e-3:
            continue
        img = np.array([[i, j, k] for i in range(-2, 3) for j in range(-2, 3) for k in range(-2, 3)])
        d = c.frac_coords[None, :, None, :] - c.frac_coords[:, None, None, :] + img[None, None]
        dist = np.linalg.norm(d @ c.lattice, axis=-1)
        n = len(c)
        dist[np.arange(n), np.arange(n), 62] = np.inf  # the atom itself (image 0, 0, 0)
        best = closest_pair(c.lattice, c.frac_coords, dist.min() + 0.5)  # thin cells: LLL, then a search
        assert best is not None and best[0] == pytest.approx(dist.min(), abs=1e-9)
        assert closest_pair(c.lattice, c.frac_coords, dist.min() - 1e-6) is None
