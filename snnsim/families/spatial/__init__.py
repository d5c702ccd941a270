"""Spatially embedded networks (Wolczyk et al., arXiv 1910.02776; FAMILIES.md section 3).

Neurons with learnable positions in the plane (`spatial_linear`, `spatial_conv2d`),
proximity and transport wiring costs (`costs.py`), several tasks offered to one network
(`spatial_tasks` data set, `spatial_multitask` task), the split into one
sub-network per task (published greedy, or by recorded per-task activity), recorded
per-task activity and the separation of the positions
(`analysis.py`), per-epoch cost and separation series (`metrics.py`), the positions
plot (`plots.py`) and the subcommands `record`, `plot`, `split`, `score` (`commands.py`).
"""
from . import commands, data, layers, metrics, plots, task  # noqa: F401  (registration)
