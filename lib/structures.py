"""Crystal structures in a fast array form (lattice, fractional coordinates, atomic numbers).

pymatgen's ``Structure`` is the lingua franca, but building, pickling and parsing thousands of them is
slow (a CIF parse costs ~10 ms). The compendium parses each structure once into a :class:`Crystal`,
stores those arrays in the processed tables, and builds graphs and descriptors from them. Convert
with :meth:`Crystal.from_structure` / :meth:`Crystal.to_structure` whenever pymatgen is wanted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Crystal:
    """An ordered periodic crystal.

    lattice: (3, 3) float64, rows are the lattice vectors in Å.
    frac_coords: (n, 3) float64 fractional coordinates.
    numbers: (n,) int64 atomic numbers.
    """

    lattice: np.ndarray
    frac_coords: np.ndarray
    numbers: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "lattice", np.asarray(self.lattice, dtype=np.float64).reshape(3, 3))
        object.__setattr__(self, "frac_coords", np.asarray(self.frac_coords, dtype=np.float64).reshape(-1, 3))
        object.__setattr__(self, "numbers", np.asarray(self.numbers, dtype=np.int64).reshape(-1))
        if len(self.numbers) != len(self.frac_coords):
            raise ValueError(f"{len(self.numbers)} atomic numbers for {len(self.frac_coords)} sites")
        if len(self.numbers) == 0:
            raise ValueError("a crystal needs at least one site")

    def __len__(self) -> int:
        return len(self.numbers)

    @property
    def cart_coords(self) -> np.ndarray:
        """(n, 3) Cartesian coordinates in Å."""
        return self.frac_coords @ self.lattice

    @property
    def volume(self) -> float:
        """Cell volume in Å³."""
        return float(abs(np.linalg.det(self.lattice)))

    @property
    def formula(self) -> str:
        """Reduced formula, e.g. 'LiCoO2'."""
        return self.to_structure().composition.reduced_formula

    def __repr__(self) -> str:
        return f"Crystal({len(self)} sites, Z={sorted(set(self.numbers.tolist()))}, V={self.volume:.1f} Å³)"

    def to_structure(self):
        """The pymatgen ``Structure`` of this crystal."""
        from pymatgen.core import Lattice, Structure

        return Structure(Lattice(self.lattice), self.numbers.tolist(), self.frac_coords)

    @classmethod
    def from_structure(cls, structure) -> "Crystal":
        """From a pymatgen ``Structure``; a clear error for partial occupancies (not representable)."""
        if not structure.is_ordered:
            raise ValueError(
                f"{structure.composition.formula} has partial occupancies; order it first "
                "(e.g. pymatgen's OrderDisorderedStructureTransformation) or drop it"
            )
        return cls(structure.lattice.matrix, structure.frac_coords, [s.specie.Z for s in structure])
