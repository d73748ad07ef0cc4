"""The figures: the style and saving (``base``, whose names this package hands on), and one module per figure
family: ``data`` (01, SOAP sparsity), ``graphs`` (02), ``train`` (03-05), ``benchmark`` (06), ``xgnn`` (07).

    from lib import plots                      # plots.use_style(), plots.figure_file(...), plots.save(...)
    from lib.plots import train as plots_train # a family
"""

from lib.paths import figure_file  # figure names need no matplotlib: lib.xgnn names them too
from lib.plots.base import (
    PALETTE,
    STAMP_GID,
    STYLE,
    axis_label,
    corner_text,
    formula_label,
    save,
    stamp,
    target_label,
    unit_of,
    use_style,
)

__all__ = ["PALETTE", "STAMP_GID", "STYLE", "axis_label", "corner_text", "figure_file", "formula_label",
           "save", "stamp", "target_label", "unit_of", "use_style"]
