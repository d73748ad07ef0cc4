"""The battery chapter (08_cathodes): electrode voltages, energy models, relaxations, hulls, a cathode screen.

Data flows one way, stage by stage (each module imports only the ones above it):

1. **structures**: :mod:`lib.data.electrodes` (every MP pair with both structures),
   :mod:`lib.cathodes.candidates` (prototypes, every known framework and substituted candidates: the
   generator);
2. **energies**: :mod:`lib.cathodes.relax` (batched relaxations and static energies, cached on disk and
   archived in records/relax/ through :mod:`lib.cathodes.archive`, the one archive mechanism of every
   cache), :mod:`lib.cathodes.potentials` (the energy models behind one protocol, ``EnergyModel``:
   the universal potentials whose weights ship in their wheels and the GNN formation-energy ensembles; and
   ``potential_pair_table``, a pair table's energies from a model);
3. **hull**: :mod:`lib.cathodes.hull` (energies above the convex hull on one energy scale, pymatgen's
   ``PhaseDiagram``), :mod:`lib.cathodes.stability` (one hull per chemical system holding every phase of the
   structure sources on one potential's scale, both states' E_hull, oxygen release, volume change);
4. **electrodes**: :mod:`lib.cathodes.electrodes` (pure physics through pymatgen's ``InsertionElectrode``:
   energies and cells in, voltages, capacities and volume changes out), :mod:`lib.cathodes.curves` (voltage
   curves from intermediate orderings), :mod:`lib.cathodes.mobility` (migration barriers by NEB);
5. **scoring and the funnel**: :mod:`lib.cathodes.screen` (scoring, ranking, the known cathodes),
   :mod:`lib.cathodes.funnel` (the GNN stage, the potential's stage judged on both states, O2 and volume by
   ``Criteria``, where each candidate left), :mod:`lib.cathodes.finalists` (the top of the ranking: voltage
   curves and barriers);
6. **defaults**: :mod:`lib.cathodes.defaults` (which potential gives each ion's voltages, from the benchmark).

Hanging off that line, never feeding back into it: :mod:`lib.cathodes.routes` (every route to a voltage on
every MP pair, one long table), :mod:`lib.cathodes.metrics` (MAE per ion with intervals over chemical systems,
paired differences), :mod:`lib.cathodes.experiment` (routes against measured voltages, on MP's pairs and on
pairs built from every structure source), :mod:`lib.cathodes.rediscovery` (the blind rediscovery benchmark
over the every-framework generator of :mod:`lib.cathodes.candidates`),
:mod:`lib.cathodes.benchmark` (the DFT consistency, outliers, the leak-free GNN split and its trainings),
:mod:`lib.cathodes.correction` (the learned correction of a potential's voltage),
:mod:`lib.cathodes.voltage_gnn` (a CGCNN on both states of a pair), :mod:`lib.cathodes.voltage_eval` (both
voltage models on grouped and random splits of all of MP's pairs: exclusions, archived runs, statistics,
shipping), :mod:`lib.cathodes.voltage_model` (the shipped voltage models and their use) and
:mod:`lib.cathodes.voltage_train` (the 451-pair training of earlier rounds, and built charged states); the figures in :mod:`lib.cathodes.plots`,
:mod:`lib.cathodes.plots_funnel` and :mod:`lib.plots.cathodes`.

Nothing is imported here, so ``import lib.cathodes.electrodes`` stays light.
"""
