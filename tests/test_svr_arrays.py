"""The SOAP-SVR is saved as data (arrays + JSON), never as a pickle: a file from elsewhere cannot run code,
and the arrays predict what the fitted sklearn model predicts."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import scipy.sparse as sps

from lib.svr import SVR_FORMAT, fit_svr, load_svr, svr_model_path
from lib.train import Normalizer


def _data(sparse: bool, n: int = 120, f: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = sps.random(n, f, density=0.05, format="csr", random_state=seed) * 3.0
    y = np.asarray(X[:, :20].sum(axis=1)).ravel() + rng.normal(0, 0.1, n) - 1.0
    return (X if sparse else X.toarray()), y


@pytest.mark.parametrize("sparse", [True, False])
@pytest.mark.parametrize("kernel", ["rbf", "linear", "poly", "sigmoid"])
def test_saved_arrays_predict_like_the_fitted_model(tmp_path, sparse, kernel):
    X, y = _data(sparse)
    split = {"train": np.arange(90), "test": np.arange(90, 120)}
    rec, model = fit_svr(X, y, split, property="band_gap", kernel=kernel, profile="t", runs_dir=tmp_path,
                         return_model=True, unit="eV", C=3.0 if kernel != "sigmoid" else 0.5)
    path = svr_model_path(rec["run"], tmp_path)
    assert path.suffix == ".npz" and path.name.endswith(".svr.npz") and rec["checkpoint"] == path.name
    blob = load_svr(path)
    assert blob["format"] == SVR_FORMAT and blob["target"] == "band_gap" and blob["unit"] == "eV"
    assert blob["record"]["n_support"] == rec["n_support"] and "test_predictions" not in blob["record"]
    norm = Normalizer.from_dict(blob["normalizer"])
    ours = norm.denorm(blob["model"].predict(X))
    theirs = norm.denorm(model.predict(X))
    assert rec["n_support"] >= 5  # a model with something in it
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10)  # eV
    np.testing.assert_allclose(ours[90:], rec["test_predictions"]["y_pred"], rtol=0, atol=1e-10)
    assert np.ptp(ours) > 0.1  # not a constant


def test_pickles_are_never_opened(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    old = tmp_path / "soap_svr_band_gap_t_s0.svr.pkl"
    old.write_bytes(pickle.dumps({"format": "compendium-svr/1", "model": Evil()}))
    with pytest.raises(ValueError, match="pickled SVR of an older version: it is not opened"):
        load_svr(old)
    # an .npz whose arrays are pickled objects: numpy refuses them (allow_pickle=False)
    evil_npz = tmp_path / "evil.svr.npz"
    with open(evil_npz, "wb") as fh:
        np.savez(fh, meta=np.array([Evil()], dtype=object), sv_data=np.zeros(1))
    with pytest.raises(ValueError, match="not a SOAP-SVR saved by lib.svr.fit_svr"):
        load_svr(evil_npz)
    assert not marker.exists()
    # and a file that is no SVR at all
    (tmp_path / "junk.svr.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="not a SOAP-SVR"):
        load_svr(tmp_path / "junk.svr.npz")
