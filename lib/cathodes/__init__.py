"""The battery chapter (08_cathodes): electrode voltages, energy models, relaxations, hulls and a cathode screen.

Modules, from the physics up:

- :mod:`lib.cathodes.electrodes`: insertion electrodes through pymatgen (voltage, capacities, specific
  energy) from the two states' energies; MP's electrode pairs and their match to the mirror.
- :mod:`lib.cathodes.potentials`: *energy models* behind one interface (structures in, total energies out,
  relaxed structures where the model can): a universal interatomic potential (CHGNet) and the GNN
  formation-energy ensembles of this compendium.
- :mod:`lib.cathodes.relax`: batched relaxations (ASE FIRE + cell filter, the model called once per step
  for all structures), cached on disk atomically, resumable, every failure flagged with its reason.
- :mod:`lib.cathodes.hull`: energies above the convex hull (pymatgen ``PhaseDiagram``) on one consistent
  energy scale: the mirror's DFT formation energies, or an energy model's energies of the mirror's phases.
- :mod:`lib.cathodes.benchmark`: the electrode benchmark (DFT consistency, ML voltages, outliers, the
  leak-free group split).
- :mod:`lib.cathodes.candidates`: prototypes and substituted candidates (the generator).
- :mod:`lib.cathodes.screen`: scoring and ranking candidates, the funnel, the known cathodes.
- :mod:`lib.cathodes.plots`: the chapter's figures.

Nothing is imported here, so ``import lib.cathodes.electrodes`` stays light.
"""
