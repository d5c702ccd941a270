"""Net Fragments (Sager et al.): fixed line detectors (S1, `line_features`), a lateral layer
of alternative cells trained by a Hebbian rule (S2, `lateral`), the `straight_lines` data,
the `line_completion` task and its published evaluation grid, the plots, and the
commands `import-netfragments` and `line-eval`."""
from snnsim.families.fragments import commands, data, evaluation, layers, plots, task  # noqa: F401
