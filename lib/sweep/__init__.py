"""The sweep behind `make all`: every notebook run of a profile, through papermill, in order, in parallel.

    python -m lib.sweep --profile quick                      # this machine: runs in parallel up to the cores
    python -m lib.sweep --profile quick --only 03,04 --properties band_gap --dry-run
    python -m lib.sweep --profile thesis --dask-scheduler tcp://host:8786   # every run a Dask task

A *run* is one execution of one notebook with its parameters; it writes one executed copy,
``results/notebooks/<name>.ipynb``, named by notebook, property, model/labelling, profile and seed
(``03_cgcnn_band_gap_quick_s0``, ``05_soap_svr_band_gap_quick_s0``, ``07_xgnn_band_gap_group_quick_s0``,
``01_fetch_quick``). :func:`plan` lists the runs of a profile; :func:`sweep` executes them in five
phases, each finished before the next starts:

    01_fetch -> 02_graphs -> 03_cgcnn, 04_megnet, 05_soap (each property, seed, model) -> 06 -> 07_xgnn

A run whose record exists (``results/runs/<model>_<property>_<profile>_s<seed>.json``, or
``results/xgnn/<property>_<labelling>_<profile>_s<seed>.json`` for 07) and whose executed copy is there,
finished, is skipped, so an interrupted sweep resumes where it stopped; a record without its executed copy
(`make test`'s nbval runs leave those) is run again, the notebook reusing the finished training, unless the
record is one of the archive's (records/: finished elsewhere). 01 and 02 (which have no record: they fill
caches) run while a run that reads them is still to do or their own executed copy is missing, and 06 always
runs (it only reads records). A failed run keeps
its executed notebook with the error and a log beside it (``results/notebooks/logs/<name>.log``);
the runs that need it are reported as blocked, everything else goes on, and the sweep ends with a
summary (also written to ``results/notebooks/sweep_<profile>.json``, and one line of it appended to
``results/notebooks/sweeps.jsonl``), with a non-zero exit status if any run failed. A stage whose
notebook is not there (yet) is reported as missing, not as a failure.

Each run is a papermill subprocess whose kernel gets ``OMP_NUM_THREADS`` (and the MKL/OpenBLAS/numexpr/
numba/loky equivalents) set to ``threads``, so ``jobs`` runs x ``threads`` threads never
oversubscribe the machine; on a Dask cluster the same function runs on the workers, in the project
checkout they share (``COMPENDIUM_ROOT``), and the records they write land in the same results/runs/.
"""

from lib.sweep.cli import main
from lib.sweep.execute import _LIVE, THREAD_VARS, Result, execute_run, run_env
from lib.sweep.plan import (
    FIXED_STAGES,
    NOTEBOOK_OUT,
    STATUSES,
    XGNN_ALWAYS,
    XGNN_LABELLINGS,
    Run,
    all_properties,
    phases,
    plan,
    stage_notebooks,
)
from lib.sweep.schedule import Summary, default_jobs, executed_copy_done, stale_records, sweep

__all__ = ["main", "Result", "execute_run", "run_env", "THREAD_VARS", "FIXED_STAGES", "NOTEBOOK_OUT",
           "STATUSES", "XGNN_ALWAYS", "XGNN_LABELLINGS", "Run", "all_properties", "phases", "plan",
           "stage_notebooks",
           "Summary", "default_jobs", "executed_copy_done", "stale_records", "sweep", "_LIVE"]
