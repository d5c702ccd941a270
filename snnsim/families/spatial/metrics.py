"""Per-epoch series of spatial runs: the wiring costs and the separation of positions.

    proximity_cost, transport_cost   P and Tr (unweighted, `task.wiring_costs`) over the
                                     task's cost layers
    separation                       mean silhouette of the positions by the task each
                                     unit serves (greedy assignment, `analysis.py`)
"""
from __future__ import annotations

import torch

from snnsim.registry import METRICS, MetricCallback

from .analysis import greedy_assignment, is_spatial_run, separation, spatial_chain
from .task import wiring_costs


@torch.no_grad()
def _compute(trainer) -> dict[str, float]:
    task = trainer.task
    layers = spatial_chain(trainer.network)
    proximity, transport = wiring_costs(layers, task.cost_layers, task.norm)
    score, _ = separation(layers, greedy_assignment(layers, task.n_tasks))
    return {"proximity_cost": float(proximity), "transport_cost": float(transport),
            "separation": score}


METRICS.register(MetricCallback("spatial_costs", is_spatial_run, _compute))
