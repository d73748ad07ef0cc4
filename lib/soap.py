"""SOAP descriptors (dscribe) of crystals, as sparse rows, computed in parallel and cached on disk.

The thesis's non-graph baselines describe each crystal by one averaged SOAP power spectrum
(Bartók, Kondor & Csányi, PRB 87, 184115 (2013); De et al., PCCP 18, 13754 (2016)) computed with
dscribe: cutoff 5 Å, ``n_max`` 1 radial function, ``l_max`` 2, periodic, and the site average taken
*inside* the power spectrum (dscribe's ``average="inner"``):

    p^{Z1 Z2}_{n n' l} = sum_m (1/N sum_i c^{i,Z1}_{nlm}) (1/N sum_i c^{i,Z2}_{n'lm})

One block of ``n_max^2 (l_max + 1)`` entries (3 here) per pair of species (``n_max (n_max+1)/2
(l_max+1)`` on the diagonal), for every pair of the dataset's species: with ~87 elements that is
~11,000 features, of which a crystal with k elements fills only its own k(k+1)/2 pairs (about 13
nonzeros on average on the CGCNN data). So the rows are kept sparse from dscribe (``sparse=True``,
a ``sparse.COO``) to scipy CSR, and the SVR works on CSR directly (libsvm's sparse kernel).

A matrix of rows is cached under ``data/soap/`` keyed by the SOAP parameters, the species list, the
dscribe version and a digest of every crystal's arrays, so a changed parameter or structure never
reads a stale cache; a cache of a larger set (e.g. the whole dataset) also serves any subset of it.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
import scipy.sparse as sps
import torch
from ase import Atoms
from joblib import Parallel, delayed
from tqdm.auto import tqdm

from lib import models
from lib.data.table import split
from lib.models.soap_mlp import SoapMLP
from lib.paths import DATA, atomic_path
from lib.structures import Crystal
from lib.svr import fit_svr
from lib.train import fit, seed_everything

SOAP_CACHE = DATA / "soap"


@dataclass(frozen=True)
class SoapParams:
    """dscribe SOAP settings; the defaults are the thesis's (r_cut 5 Å, n_max 1, l_max 2, inner average)."""

    r_cut: float = 5.0
    n_max: int = 1
    l_max: int = 2
    sigma: float = 1.0  # width of the atomic Gaussians (dscribe's default; the thesis kept it)
    rbf: str = "gto"
    average: str = "inner"
    periodic: bool = True

    def as_dict(self) -> dict:
        """Plain dict, for run records and cache keys."""
        return asdict(self)


def crystal_to_atoms(crystal: Crystal):
    """``ase.Atoms`` straight from a Crystal's arrays (cell = lattice rows, scaled positions, pbc)."""
    return Atoms(numbers=crystal.numbers, cell=crystal.lattice, scaled_positions=crystal.frac_coords, pbc=True)


def dataset_species(crystals: Sequence[Crystal]) -> list[int]:
    """Sorted atomic numbers of every element present in ``crystals`` (the SOAP species list)."""
    if len(crystals) == 0:
        raise ValueError("no crystals given: the species list would be empty")
    return sorted({int(z) for c in crystals for z in np.unique(c.numbers)})


def make_soap(species: Sequence[int], params: SoapParams = SoapParams()):
    """The dscribe ``SOAP`` descriptor with sparse output for ``species``."""
    from dscribe.descriptors import SOAP  # here: dscribe (and its numba) takes seconds to import

    return SOAP(
        species=[int(z) for z in species], r_cut=params.r_cut, n_max=params.n_max, l_max=params.l_max,
        sigma=params.sigma, rbf=params.rbf, average=params.average, periodic=params.periodic, sparse=True,
    )


def n_features(species: Sequence[int], params: SoapParams = SoapParams()) -> int:
    """Length of the SOAP vector for that species list."""
    return int(make_soap(species, params).get_number_of_features())


def pair_columns(soap, numbers: Sequence[int] | np.ndarray) -> np.ndarray:
    """Sorted column indices of the blocks of every species pair in ``numbers`` (``get_location``)."""
    zs = sorted({int(z) for z in np.asarray(numbers).reshape(-1)})
    cols = [np.arange(soap.get_location((a, b)).start, soap.get_location((a, b)).stop)
            for i, a in enumerate(zs) for b in zs[i:]]
    return np.unique(np.concatenate(cols))


# ----------------------------------------------------------------------------- computing


def _coo_to_csr(x) -> sps.csr_matrix:
    """dscribe's output (``sparse.COO`` of shape (F,) or (n, F)) as a float64 CSR matrix (n, F)."""
    if hasattr(x, "to_scipy_sparse"):  # sparse.COO
        m = (x.reshape((1, -1)) if x.ndim == 1 else x).to_scipy_sparse()
    else:
        m = sps.coo_matrix(np.atleast_2d(x))
    out = sps.csr_matrix(m, dtype=np.float64)
    out.sum_duplicates()
    out.eliminate_zeros()
    return out


def _soap_chunk(arrays: list[tuple[np.ndarray, np.ndarray, np.ndarray]], species: list[int],
                params: SoapParams, labels: list[str]) -> sps.csr_matrix:
    """Rows of one chunk (runs in a worker process; arrays travel, not ase objects)."""
    soap = make_soap(species, params)
    rows = []
    for (lat, frac, num), label in zip(arrays, labels, strict=True):
        try:
            rows.append(_coo_to_csr(soap.create(crystal_to_atoms(Crystal(lat, frac, num)))))
        except Exception as err:  # dscribe's messages do not name the structure
            raise ValueError(f"SOAP failed for {label}: {err}") from err
    return sps.vstack(rows, format="csr")


def compute_soap(
    crystals: Sequence[Crystal],
    species: Sequence[int],
    params: SoapParams = SoapParams(),
    n_jobs: int | None = None,
    chunk_size: int = 250,
    progress: bool = True,
    labels: Sequence[str] | None = None,
) -> sps.csr_matrix:
    """SOAP rows of ``crystals``, (n, n_features) CSR float64, computed in ``n_jobs`` processes.

    ``n_jobs`` None: every core from 2,000 crystals on, one process below (start-up costs more).

    ``labels`` (e.g. material ids) name a structure in error messages. No caching here: see
    :func:`soap_features`.
    """
    species = [int(z) for z in species]
    labels = list(labels) if labels is not None else [f"structure #{i}" for i in range(len(crystals))]
    known = set(species)
    bad = [(lab, sorted(set(c.numbers.tolist()) - known)) for c, lab in zip(crystals, labels, strict=True)
           if not set(c.numbers.tolist()) <= known]
    if bad:
        raise ValueError(f"{len(bad)} structure(s) have elements outside the SOAP species list, e.g. "
                         f"{bad[0][0]} with Z={bad[0][1]}; build the species list from the whole dataset "
                         "(dataset_species) and pass it")
    nf = n_features(species, params)
    if len(crystals) == 0:
        return sps.csr_matrix((0, nf))
    arrays = [(c.lattice, c.frac_coords, c.numbers) for c in crystals]
    starts = range(0, len(arrays), chunk_size)
    jobs = [(arrays[s:s + chunk_size], species, params, labels[s:s + chunk_size]) for s in starts]
    if n_jobs is None:  # worker start-up (~4 s: imports) only pays off for a few thousand crystals
        n_jobs = (os.cpu_count() or 1) if len(arrays) >= 2000 else 1
    bar = tqdm(total=len(arrays), desc="SOAP", unit="crystal", disable=not progress)
    parts = []
    if n_jobs == 1 or len(jobs) == 1:
        for job in jobs:
            parts.append(_soap_chunk(*job))
            bar.update(parts[-1].shape[0])
    else:
        par = Parallel(n_jobs=n_jobs, return_as="generator")
        for part in par(delayed(_soap_chunk)(*job) for job in jobs):
            parts.append(part)
            bar.update(part.shape[0])
    bar.close()
    out = sps.vstack(parts, format="csr")
    if out.shape != (len(crystals), nf):
        raise RuntimeError(f"SOAP matrix of shape {out.shape}, expected {(len(crystals), nf)}")
    return out


# ----------------------------------------------------------------------------- caching


def crystal_digests(crystals: Sequence[Crystal]) -> np.ndarray:
    """(n,) 16-byte digests of each crystal's arrays (lattice, fractional coordinates, numbers)."""
    out = np.empty(len(crystals), dtype="S16")
    for i, c in enumerate(crystals):
        h = hashlib.blake2b(digest_size=16)
        for a in (c.lattice, c.frac_coords, c.numbers):
            h.update(np.ascontiguousarray(a).tobytes())
        out[i] = h.digest()
    return out


def params_key(species: Sequence[int], params: SoapParams = SoapParams()) -> str:
    """Hash of everything that shapes a SOAP row but the structure: parameters, species, dscribe version."""
    blob = json.dumps({"params": params.as_dict(), "species": [int(z) for z in species],
                       "dscribe": version("dscribe"), "format": 1}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def cache_path(crystals: Sequence[Crystal], species: Sequence[int], params: SoapParams = SoapParams(),
               cache_dir: str | Path | None = None) -> Path:
    """Where the SOAP rows of exactly these crystals (in this order) are cached."""
    rows = hashlib.sha256(crystal_digests(crystals).tobytes()).hexdigest()[:12]
    return Path(cache_dir or SOAP_CACHE) / f"soap_{params_key(species, params)}_{rows}.npz"


def _sidecar(path: Path, suffix: str) -> Path:
    """``soap_<k>_<r>.npz`` -> ``soap_<k>_<r><suffix>`` (the row digests, the metadata)."""
    return path.with_name(path.name.removesuffix(".npz") + suffix)


def _atomic_save(path: Path, X: sps.csr_matrix, digests: np.ndarray, meta: dict) -> None:
    # matrix first, digests second: a cache is only trusted when its .rows.npy is there
    for suffix, write in ((".npz", lambda f: sps.save_npz(f, X, compressed=True)),
                          (".rows.npy", lambda f: np.save(f, digests)),
                          (".json", lambda f: f.write(json.dumps(meta, indent=1).encode()))):
        with atomic_path(_sidecar(path, suffix)) as tmp, open(tmp, "wb") as f:
            write(f)


def _from_superset(digests: np.ndarray, pkey: str, cache_dir: Path) -> sps.csr_matrix | None:
    """Rows sliced out of a cached larger matrix with the same parameters, if one holds them all."""
    for rows_file in sorted(cache_dir.glob(f"soap_{pkey}_*.rows.npy")):
        npz = rows_file.with_name(rows_file.name.removesuffix(".rows.npy") + ".npz")
        if not npz.exists():
            continue
        have = np.load(rows_file)
        if len(have) < len(digests):
            continue
        pos = {d: i for i, d in enumerate(have.tolist())}
        try:
            idx = np.fromiter((pos[d] for d in digests.tolist()), dtype=np.int64, count=len(digests))
        except KeyError:
            continue
        return sps.load_npz(npz).tocsr()[idx]
    return None


def soap_features(
    crystals: Sequence[Crystal],
    species: Sequence[int] | None = None,
    params: SoapParams = SoapParams(),
    cache: bool = True,
    cache_dir: str | Path | None = None,
    n_jobs: int | None = None,
    progress: bool = True,
    labels: Sequence[str] | None = None,
) -> sps.csr_matrix:
    """SOAP rows of ``crystals`` (n, n_features) CSR, read from the cache or computed and cached.

    ``species``: the dataset's element list (default: the elements of ``crystals``; pass the whole
    dataset's list so a subset's rows have the full dataset's layout). The cache is keyed by
    :func:`params_key` and the crystals' digests; a cached superset (same key) is sliced instead of
    recomputing.
    """
    species = dataset_species(crystals) if species is None else [int(z) for z in species]
    if not cache:
        return compute_soap(crystals, species, params, n_jobs=n_jobs, progress=progress, labels=labels)
    cache_dir = Path(cache_dir or SOAP_CACHE)
    digests = crystal_digests(crystals)
    path = cache_path(crystals, species, params, cache_dir)
    rows_file = _sidecar(path, ".rows.npy")
    try:  # a damaged cache (a disk full, a killed copy) is computed again, not fatal on every run
        if path.exists() and rows_file.exists() and np.array_equal(np.load(rows_file), digests):
            return sps.load_npz(path).tocsr()
        if cache_dir.exists():
            hit = _from_superset(digests, params_key(species, params), cache_dir)
            if hit is not None:
                return hit
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        warnings.warn(f"recomputing SOAP rows: unreadable cache under {cache_dir} "
                      f"({type(exc).__name__}: {exc})", stacklevel=2)
    X = compute_soap(crystals, species, params, n_jobs=n_jobs, progress=progress, labels=labels)
    meta = {"params": params.as_dict(), "species": species, "n": len(crystals), "n_features": X.shape[1],
            "nnz": int(X.nnz)}
    _atomic_save(path, X, digests, meta)
    return X


def frame_features(
    frame,
    dataset,
    params: SoapParams = SoapParams(),
    whole_dataset: bool = False,
    **kwargs,
) -> sps.csr_matrix:
    """SOAP rows of a target frame (``lib.data.target_frame``) with the whole ``dataset``'s species list.

    ``whole_dataset``: compute (or read) every row of ``dataset`` once and slice the frame's rows out of
    that cache, so all properties share one computation (the thesis profile); otherwise only the
    frame's rows are computed (a subsample: smoke, quick). ``kwargs`` go to :func:`soap_features`.
    """
    species = dataset_species(list(dataset["structure"]))
    if whole_dataset:
        soap_features(list(dataset["structure"]), species, params, labels=list(dataset["material_id"]), **kwargs)
    return soap_features(list(frame["structure"]), species, params, labels=list(frame["material_id"]), **kwargs)


# ----------------------------------------------------------------------------- the SOAP-MLP's data


class SoapSet:
    """SOAP rows as a dataset for ``lib.train.fit``: ``batch(indices)`` densifies just those rows.

    X : (n, F) scipy sparse matrix, kept sparse.
    material_ids : optional (n,) ids, copied into the run record's test predictions.
    params : what ``fit`` records as the featurisation (SOAP parameters and species).
    sparse_batches : batches as sparse COO tensors (the model's first layer is then a sparse product,
        ~1.8x faster a step on the full data than densifying 256 x 11,484 floats), or dense tensors.
    """

    def __init__(self, X: sps.spmatrix, material_ids: Sequence[str] | None = None, params: dict | None = None,
                 sparse_batches: bool = True):
        self.X = sps.csr_matrix(X, dtype=np.float32)
        self.X.sort_indices()
        self.material_ids = list(material_ids) if material_ids is not None else None
        self.params = params
        self.sparse_batches = sparse_batches

    def __len__(self) -> int:
        return self.X.shape[0]

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    def batch(self, indices):
        """Rows ``indices`` as a (B, F) float32 ``torch.Tensor``, sparse COO or dense (has ``.to(device)``)."""
        rows = self.X[np.asarray(indices)]
        if not self.sparse_batches:
            return torch.from_numpy(rows.toarray())
        coo = rows.tocoo()  # from sorted CSR: row-major, no duplicates, i.e. coalesced
        ij = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
        return torch.sparse_coo_tensor(ij, torch.from_numpy(coo.data), coo.shape, check_invariants=False,
                                       is_coalesced=True)


def fit_soap_mlp(
    X: sps.spmatrix,
    y: np.ndarray,
    split: dict[str, np.ndarray],
    *,
    h_fea_len: int = 128,
    n_h: int = 1,
    material_ids: Sequence[str] | None = None,
    soap_params: SoapParams | None = None,
    species: Sequence[int] | None = None,
    config=None,
    property: str = "target",
    seed: int = 0,
    profile="custom",
    **fit_kwargs,
) -> dict:
    """Train a :class:`~lib.models.soap_mlp.SoapMLP` on SOAP rows with ``lib.train.fit``; its run record.

    ``split``: 80:10:10 ``{"train", "val", "test"}``. Everything else (``epochs``, ``lr``, ``runs_dir``,
    ``content_hash``...) goes to :func:`lib.train.fit`; the model is seeded with ``seed`` first.
    """
    featurisation = {"descriptor": "soap", **(soap_params or SoapParams()).as_dict(),
                     "species": [int(z) for z in species] if species is not None else None}
    data = SoapSet(X, material_ids, params=featurisation)
    seed_everything(seed)
    model = SoapMLP(data.n_features, h_fea_len=h_fea_len, n_h=n_h)
    return fit(model, data, np.asarray(y, dtype=np.float64), split, config, property=property, seed=seed,
               profile=profile, model_name=models.get("soap_mlp").name, **fit_kwargs)


def fit_baseline(
    model: str,
    X: sps.spmatrix,
    y: np.ndarray,
    *,
    seed: int = 0,
    profile="custom",
    property: str = "target",
    material_ids: Sequence[str] | None = None,
    soap_params: SoapParams | None = None,
    species: Sequence[int] | None = None,
    content_hash: str | None = None,
    **kwargs,
) -> dict:
    """Fit one SOAP baseline, ``model`` "svr" (80:20 split) or "mlp" (80:10:10), on its ``lib.data.split``.

    The MLP trains for the profile's ``epochs`` unless ``epochs=`` is given; other ``kwargs`` go to
    :func:`lib.svr.fit_svr` or :func:`fit_soap_mlp` (``lib.train.fit``). Returns the run record.
    """
    featurisation = {"descriptor": "soap", **(soap_params or SoapParams()).as_dict(),
                     "species": [int(z) for z in species] if species is not None else None}
    y = np.asarray(y, dtype=np.float64)
    common = dict(property=property, seed=seed, profile=profile, material_ids=material_ids,
                  content_hash=content_hash)
    if model == "svr":
        return fit_svr(X, y, split(len(y), seed, fractions=(0.8, 0.2)), featurisation=featurisation,
                       **common, **kwargs)
    if model == "mlp":
        if "epochs" not in kwargs and hasattr(profile, "epochs"):
            kwargs["epochs"] = profile.epochs
        return fit_soap_mlp(X, y, split(len(y), seed), soap_params=soap_params, species=species,
                            **common, **kwargs)
    raise ValueError(f"unknown SOAP model {model!r}; use 'svr' or 'mlp'")


# ----------------------------------------------------------------------------- summaries


def sparsity(X: sps.spmatrix) -> dict:
    """Size and sparsity of a SOAP matrix: n, n_features, mean/min/max nonzeros per row, density, MB."""
    X = sps.csr_matrix(X)
    nnz = np.diff(X.indptr)
    n, f = X.shape
    return {"n": int(n), "n_features": int(f), "nnz_mean": float(nnz.mean()) if n else 0.0,
            "nnz_min": int(nnz.min()) if n else 0, "nnz_max": int(nnz.max()) if n else 0,
            "density": float(X.nnz / max(1, n * f)),
            "csr_mb": (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 1e6,
            "dense_mb": n * f * 8 / 1e6}


__all__ = ["SoapParams", "SOAP_CACHE", "crystal_to_atoms", "dataset_species", "make_soap", "n_features",
           "pair_columns", "compute_soap", "soap_features", "crystal_digests", "params_key", "cache_path",
           "sparsity", "frame_features", "SoapSet", "fit_soap_mlp", "fit_baseline",]
