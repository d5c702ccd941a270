"""The published line-completion evaluation of a Net Fragments network (Sager et al.).

For each rotated evaluation line (data set `straight_lines`, split "test"):

* baseline: the S2 cells of the last time step, merged over the alternative cells (max),
  for the intact line without noise: b [4, H, W];
* a run with n pixels removed at the line centre and exactly int(p * 4 H W) randomly
  chosen S1 feature bits flipped (f -> 1 - f; noise on the features, not the image):
  the merged last-step cells z [4, H, W]. Then

      noise_reduction = fraction of the flipped bits where z differs from the flipped value
      accuracy        = 1 - mean |z - b|
      recall          = 1 - mean over b > 0 of |z - b|
      precision       = 1 - mean over z > 0 of |z - b|
      reconstruction  = 1 - mean |z - b| over the removed pixels (all 4 features) where b > 0

  averaged over the lines. As in the published code, noise_reduction is 0 without noise
  and reconstruction is 0 for a line whose removed pixels hold no active baseline cell
  (so 0 without interruption).

The grid runs every (noise, interruption) pair in one batch of lines per pair. The flips
are the published evaluation's own: for every pair a generator seeded with 1 and one
torch.randperm(4 H W) per line, in line order (the first int(p 4 H W) entries flip), so
the published network's table comes out digit for digit and every network sees the same
noise; `noise_seed` draws others (the spread over draws is the figures' noise).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from snnsim.families.fragments.data import draw_line, evaluation_lines, interrupt
from snnsim.families.fragments.layers import LateralLayer, LineFeatures
from snnsim.results import write_rows_csv

NOISE_LEVELS = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
INTERRUPTIONS = tuple(range(8))
COLUMNS = ("noise", "line_interrupt", "noise_reduction", "reconstruction", "accuracy",
           "precision", "recall")
CSV_NAME = "net_fragments_eval.csv"
PUBLISHED_NOISE_SEED = 1  # the published evaluation: torch.manual_seed(1), then the flips
PUBLISHED = {  # theta 0.5, gamma 1.2 -> 2.2 (FAMILIES.md section 2)
    "noise": {0.01: (0.978, 0.904, 0.914), 0.05: (0.973, 0.675, 0.706),
              0.10: (0.972, 0.491, 0.501), 0.20: (0.962, 0.353, 0.226)},
    "reconstruction": (0.594, 0.629, 0.625, 0.430, 0.283, 0.172, 0.058),
}


def fragment_layers(network) -> tuple[LineFeatures, LateralLayer]:
    """The S1 and S2 layers of a network (the first `line_features`, the first `lateral`)."""
    layers = [layer for _, layer in network.named_layers()]
    s1 = next((layer for layer in layers if isinstance(layer, LineFeatures)), None)
    s2 = next((layer for layer in layers if isinstance(layer, LateralLayer)), None)
    if s1 is None or s2 is None:
        raise ValueError("the line-completion evaluation needs a network with a "
                         "'line_features' layer followed by a 'lateral' layer")
    return s1, s2


def flip_features(ff: torch.Tensor, noise: float, generator: torch.Generator
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """(noisy ff, mask): exactly int(noise * numel) bits of each sample's ff [B, ...]
    flipped to 1 - f, the first int(noise * numel) of one torch.randperm(numel) per sample
    from `generator` (the published evaluation's draw)."""
    flat = ff.flatten(1)
    n_flips = int(noise * flat.shape[1])
    mask = torch.zeros(flat.shape, dtype=torch.bool)
    for sample in range(len(flat)):
        mask[sample, torch.randperm(flat.shape[1], generator=generator)[:n_flips]] = True
    mask = mask.to(ff.device)
    return torch.where(mask, 1.0 - flat, flat).view_as(ff), mask.view_as(ff)


def _masked_l1(a: torch.Tensor, b: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """Per sample mean |a - b| over `where` (NaN where empty)."""
    where = where.flatten(1).to(a.dtype)
    return ((a - b).abs().flatten(1) * where).sum(1) / where.sum(1)


@torch.no_grad()
def run_lines(s1: LineFeatures, s2: LateralLayer, images: torch.Tensor,
              threshold: float | None = None, gamma: list[float] | None = None,
              noise: float = 0.0, generator: torch.Generator | None = None) -> dict:
    """S1 and S2 on images [B, H, W] (evaluation mode), optionally with feature noise:
    {"ff": S1 output [B, 4, H, W], "mask": flipped bits or None, "merged": the last step
    merged over the alternative cells [B, 4, H, W], "features": every step merged
    [T, B, 4, H, W]}, on the CPU."""
    was = (s1.training, s2.training)
    s1.eval()
    s2.eval()
    try:
        ff = s1(images.reshape(len(images), -1).to(s2.weight.device)).view(
            len(images), s2.n_features, s2.height, s2.width).cpu()
        mask = None
        if noise > 0:
            ff, mask = flip_features(ff, noise, generator)
        fired, _, _ = s2.run_chosen(s2.binarise_input(ff), threshold, gamma)
    finally:
        s1.train(was[0])
        s2.train(was[1])
    features = fired.transpose(0, 1).to(s2.weight.dtype)
    return {"ff": ff, "mask": mask, "features": features, "merged": features[-1]}


def line_metrics(result: dict, baseline: torch.Tensor, removed: torch.Tensor) -> dict:
    """The protocol's metrics (module docstring), averaged over the lines. `removed`
    [B, H, W] marks the removed pixels."""
    z = result["merged"].float().cpu()
    b = baseline.float().cpu()
    out = {}
    if result["mask"] is not None:
        mask = result["mask"].cpu()
        flipped = result["ff"].cpu().float()
        differs = (z != flipped) & mask
        out["noise_reduction"] = float((differs.flatten(1).sum(1)
                                        / mask.flatten(1).sum(1).clamp(min=1)).mean())
    else:
        out["noise_reduction"] = 0.0
    out["accuracy"] = float(1 - (z - b).abs().flatten(1).mean(1).mean())
    out["recall"] = float(np.nanmean((1 - _masked_l1(z, b, b > 0)).numpy()))
    out["precision"] = float(np.nanmean((1 - _masked_l1(z, b, z > 0)).numpy()))
    gap = removed[:, None].expand_as(b) & (b > 0)
    per_line = torch.nan_to_num(1 - _masked_l1(z, b, gap), nan=0.0)
    out["reconstruction"] = float(per_line.mean())
    return out


def evaluation_grid(trainer, noises=NOISE_LEVELS, gaps=INTERRUPTIONS,
                    threshold: float | None = None, gamma: list[float] | None = None,
                    n_lines: int | None = None, noise_seed: int = PUBLISHED_NOISE_SEED
                    ) -> list[dict]:
    """One row per (noise, interruption) pair: the COLUMNS of the published protocol, on
    the run's evaluation lines (θ and γ: the layer's unless given). The flips of every pair
    come from a generator seeded with `noise_seed`, one permutation per line in order: with
    the default 1 exactly the published evaluation's draws (it ran each point as a fresh
    process after torch.manual_seed(1)), so the same bits flip for every network."""
    s1, s2 = fragment_layers(trainer.network)
    options = trainer.config["data"] if trainer.config["dataset"] == "straight_lines" else {}
    size = options.get("size", s2.height)
    lines = evaluation_lines(n_lines or options.get("n_eval", 60), size)
    intact = np.stack([draw_line(line, size) for line in lines])
    baseline = run_lines(s1, s2, torch.from_numpy(intact), threshold, gamma)["merged"]
    rows = []
    for gap in gaps:
        broken = np.stack([interrupt(image, line, gap) for image, line in zip(intact, lines)])
        removed = torch.from_numpy(broken != intact)
        for noise in noises:
            generator = torch.Generator().manual_seed(noise_seed)
            result = run_lines(s1, s2, torch.from_numpy(broken), threshold, gamma,
                               noise, generator)
            rows.append({"noise": noise, "line_interrupt": gap,
                         **line_metrics(result, baseline, removed)})
    return rows


def write_csv(rows: list[dict], path: Path) -> Path:
    return write_rows_csv(path, [{key: (f"{row[key]:.6g}" if isinstance(row[key], float)
                                        else row[key]) for key in COLUMNS} for row in rows],
                          COLUMNS)


def format_table(rows: list[dict]) -> str:
    """The grid as a text table (one line per pair) with the published figures beside."""
    head = (f"{'noise':>6} {'gap':>3} {'noise_red':>9} {'recon':>6} {'acc':>6} {'prec':>6} "
            f"{'recall':>6}   published (noise_red/recall/precision | recon)")
    lines = [head]
    for row in rows:
        published = ""
        if row["line_interrupt"] == 0 and row["noise"] in PUBLISHED["noise"]:
            published = "{:.3f}/{:.3f}/{:.3f}".format(*PUBLISHED["noise"][row["noise"]])
        elif row["noise"] == 0 and 1 <= row["line_interrupt"] <= 7:
            published = f"{PUBLISHED['reconstruction'][row['line_interrupt'] - 1]:.3f}"
        lines.append(f"{row['noise']:>6.3f} {row['line_interrupt']:>3d} "
                     f"{row['noise_reduction']:>9.4f} {row['reconstruction']:>6.3f} "
                     f"{row['accuracy']:>6.4f} {row['precision']:>6.3f} {row['recall']:>6.3f}"
                     f"   {published}")
    return "\n".join(lines)


def run_grid(trainer, threshold: float | None = None, gamma: list[float] | None = None,
             n_lines: int | None = None, noise_seed: int = PUBLISHED_NOISE_SEED) -> list[dict]:
    """Run the grid and print it as a table (with its time); the rows."""
    start = time.perf_counter()
    rows = evaluation_grid(trainer, threshold=threshold, gamma=gamma, n_lines=n_lines,
                           noise_seed=noise_seed)
    print(format_table(rows))
    print(f"line-completion grid: {len(rows)} points in {time.perf_counter() - start:.1f} s")
    return rows


def write_grid(trainer, path: Path, threshold: float | None = None,
               gamma: list[float] | None = None, n_lines: int | None = None,
               noise_seed: int = PUBLISHED_NOISE_SEED) -> list[dict]:
    """Run the grid, print it and write it as CSV to `path`; the rows."""
    rows = run_grid(trainer, threshold, gamma, n_lines, noise_seed)
    write_csv(rows, path)
    print(f"written to {path}")
    return rows
