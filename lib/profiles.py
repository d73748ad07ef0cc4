"""Run scales (smoke, quick, thesis), defined once: every notebook and the sweep read them from here."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Profile:
    """The numbers that set the scale of a run; ``None`` means "all of it"."""

    name: str
    n_max: int | None  # structures per property after subsampling (None: the full dataset)
    epochs: int  # training epochs of the GNNs and the SOAP MLP
    seeds_gnn: tuple[int, ...]  # seeds (random splits) of CGCNN and MEGNet
    seeds_soap: tuple[int, ...]  # seeds of SOAP-SVR and SOAP-MLP
    n_soap_max: int | None  # structures per property for the SOAP models
    xgnn_per_class: int  # XGNN explanations per class
    xgnn_epochs: int  # XGNN generator training steps (in hundreds of rollouts)
    recipe: str = "thesis"  # the training recipe of the GNNs (lib.recipes): "thesis" or "best"
    holdout: str | None = None  # structures kept out of every split (lib.data.holdout), e.g. "electrodes"
    ensemble: tuple[int, ...] = ()  # more initial seeds trained on each CGCNN run's split: a seed ensemble
    ensemble_properties: tuple[str, ...] | None = None  # the properties that get one (None: all)

    def ensemble_seeds(self, property: str) -> tuple[int, ...]:
        """The extra seeds of ``property``'s seed ensemble in this profile (empty: none)."""
        if self.ensemble_properties is not None and property not in self.ensemble_properties:
            return ()
        return tuple(self.ensemble)

    def as_dict(self) -> dict:
        """Plain dict for run records."""
        return asdict(self)


PROFILES: dict[str, Profile] = {
    # seconds to a few minutes: CI, tests, nbval
    "smoke": Profile("smoke", n_max=300, epochs=2, seeds_gnn=(0,), seeds_soap=(0,),
                     n_soap_max=200, xgnn_per_class=5, xgnn_epochs=1, ensemble=(1, 2)),
    # a laptop: every table and figure within about an hour on 2 cores, on subsamples. Sized from a measured
    # sweep: n_max 1,500 and 10 epochs took 17 min (1,972 s of runs, GNN training time ~ n x epochs); 4,000
    # and 15 epochs is ~4x the GNN work. The SOAP models get the same subsample, so Table 6 compares the
    # four models on the same training-set size.
    "quick": Profile("quick", n_max=4000, epochs=15, seeds_gnn=(0, 1, 2), seeds_soap=(0, 1),
                     n_soap_max=4000, xgnn_per_class=50, xgnn_epochs=5),
    # the thesis's protocol: full data, 30 epochs, 10 seeds for the GNNs, 2 for SOAP
    "thesis": Profile("thesis", n_max=None, epochs=30, seeds_gnn=tuple(range(10)), seeds_soap=(0, 1),
                      n_soap_max=None, xgnn_per_class=150, xgnn_epochs=20),
    # beyond the thesis: the recipe study's winner (lib.recipes) on the full data, without the structures of
    # the MP insertion electrodes (so 08_cathodes' electrode benchmark is leak-free), 3 seeds for ensembles;
    # its models are the ones shipped in pretrained/. 20 epochs: what 2 CPU cores train for seven properties and
    # two 3-seed ensembles in one working session (~20 min per full-split run on one thread); the cosine schedule
    # adapts to the budget. With a GPU, raise it (the 120-epoch GPU run reached 0.0505 eV/atom).
    "best": Profile("best", n_max=None, epochs=20, seeds_gnn=(0,), seeds_soap=(0, 1), n_soap_max=None,
                    xgnn_per_class=150, xgnn_epochs=20, recipe="best", holdout="electrodes", ensemble=(1, 2),
                    ensemble_properties=("formation_energy_per_atom", "band_gap")),
    # the best recipe with a GPU's budget: 120 epochs of the same split and holdout (the 120-epoch run
    # reached 0.0505 eV/atom on one model); trained on a lent GPU (python -m lib.sweep.direct) or, resumable,
    # on the CPU, and shipped in pretrained/ where it beats the best profile's models
    "long": Profile("long", n_max=None, epochs=120, seeds_gnn=(0,), seeds_soap=(0, 1), n_soap_max=None,
                    xgnn_per_class=150, xgnn_epochs=20, recipe="best", holdout="electrodes", ensemble=(1, 2),
                    ensemble_properties=("formation_energy_per_atom", "band_gap")),
}


def get_profile(name: str | Profile) -> Profile:
    """The profile of that name; a clear error naming the known ones otherwise."""
    if isinstance(name, Profile):
        return name
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}") from None


#: profiles whose outputs test the pipeline and are no result: their figures and tables say so
PIPELINE_TESTS = ("smoke",)


def not_a_result(profile: str | Profile | None) -> str | None:
    """The warning every figure and table of a pipeline-test profile carries (``None`` for the others):
    'smoke profile: 200–300 crystals, 2 epochs — a test of the pipeline, not a result'."""
    if profile is None:
        return None
    name = profile.name if isinstance(profile, Profile) else str(profile)
    if name not in PIPELINE_TESTS:
        return None
    p = PROFILES.get(name)
    if p is None:
        return f"{name} profile: a test of the pipeline, not a result"
    sizes = sorted({n for n in (p.n_soap_max, p.n_max) if n is not None})
    crystals = "–".join(f"{n:,}" for n in sizes) + " crystals, " if sizes else ""
    return (f"{name} profile: {crystals}{p.epochs} epoch{'s' if p.epochs != 1 else ''} — "
            "a test of the pipeline, not a result")
