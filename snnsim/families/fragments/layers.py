"""The two layers of the Net Fragments model (Sager et al.): fixed line detectors (S1) and a
lateral layer of alternative cells trained by a Hebbian rule (S2).

Images and feature maps travel flattened, channel-major: a layer's input [B, C*H*W] is the
tensor [B, C, H, W]. S2 runs on the active bits by the sparse kernels of `sparse` (CPU,
numba); the dense path (`run_reference`: spectra or conv2d on whole batches) is their
reference and the path gradients take.

S1, `line_features` (four fixed 5x5 filters: vertical, "/", horizontal, "\\"):

    a_f = conv2d(image, F_f, "same")      F_f: +2 on the three line pixels through the
                                          centre, -1 on the flanking pixels, / 6
    threshold: y = [a > 0];  bernoulli: y ~ Bernoulli(clip(a, 0, 1));  relu: y = max(a, 0)

(`larger_weights`: centre +2, +1 on the two line neighbours, -0.5 around, not divided.)

S2, `lateral` (F features x K alternative cells = C channels; kernel k x k, r = k // 2):

    x_t   = [ff > 0.5 (eval) or ff > 0 (training) ;  z_{t-1}]   binary, F + C channels, z_{-1} = 0
    s_t   = conv2d(x_t, W, padding r)                              W in [0, 1], [C, F + C, k, k]
    t = 0: per feature and position the cell c* = argmax_c 3 conv(x_0, [W > 0])_c - |W_c > 0|
           (the mean over the kernel of pos - neg co-activation, pos = w x,
            neg = w (1 - x) + (1 - w) x); only c* may be active, for all later steps
    fold-back inhibition, m = support_factor * k:  s > m  ->  m - (s - m) / 2
    s_t <- mask * s_t / max over the feature's K cells x H x W
    z_t   = [s_t^gamma_t >= theta]   or   z_t ~ Bernoulli(clip(s_t, 0, 1)^gamma_t)

Hebbian rule after the T steps of one image (N = H W positions, x the unfolded [ff ; y]
patches, y the lower median over time of z), image after image as the published code:

    U[o, d] = 1/N sum_p (3 y_o(p) x_d(p) - y_o(p) - x_d(p))   (pos - neg; or y x without neg)
    U <- max(U, 0);  U <- (U - min U) / (max U - min U + 1e-10)
    W <- clip(W + lr U, 0, 1)       before the next image's steps

The published code convolves as an unfold followed by a 1x1 convolution; W here is that
weight [C, (F + C) k k, 1, 1] reshaped to [C, F + C, k, k] (unfold order channel, row,
column). The dense supports are products of spectra (FFT, float64; conv2d is their
reference); when the input requires a gradient (a trainable layer below), S2 runs the dense
path and the thresholds pass gradients straight through.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from snnsim.errors import ConfigError
from snnsim.families.fragments import sparse
from snnsim.layers import Layer, LayerContext, RunSettings
from snnsim.registry import LAYERS
from snnsim.schema import NUMBER, Field, non_negative, one_of, positive

N_FEATURES = 4
FILTERS = torch.tensor([
    [[0, -1, 0, -1, 0], [0, -1, 2, -1, 0], [0, -1, 2, -1, 0], [0, -1, 2, -1, 0],
     [0, -1, 0, -1, 0]],
    [[0, 0, -1, -1, 0], [0, -1, 0, 2, -1], [-1, 0, 2, 0, -1], [-1, 2, 0, -1, 0],
     [0, -1, -1, 0, 0]],
    [[0, 0, 0, 0, 0], [-1, -1, -1, -1, -1], [0, 2, 2, 2, 0], [-1, -1, -1, -1, -1],
     [0, 0, 0, 0, 0]],
    [[0, -1, -1, 0, 0], [-1, 2, 0, -1, 0], [-1, 0, 2, 0, -1], [0, -1, 0, 2, -1],
     [0, 0, -1, -1, 0]],
], dtype=torch.float32) / 6
LARGER_FILTERS = torch.tensor([
    [[-.5, -.5, 0, -.5, -.5], [0, -.5, 1, -.5, 0], [-.5, -.5, 2, -.5, -.5],
     [0, -.5, 1, -.5, 0], [-.5, -.5, 0, -.5, -.5]],
    [[-.5, 0, -.5, -.5, 0], [0, -.5, -.5, 1, -.5], [-.5, -.5, 2, -.5, -.5],
     [-.5, 1, -.5, -.5, 0], [0, -.5, -.5, 0, -.5]],
    [[-.5, 0, -.5, 0, -.5], [-.5, -.5, -.5, -.5, -.5], [0, 1, 2, 1, 0],
     [-.5, -.5, -.5, -.5, -.5], [-.5, 0, -.5, 0, -.5]],
    [[0, -.5, -.5, 0, -.5], [-.5, 1, -.5, -.5, 0], [-.5, -.5, 2, -.5, -.5],
     [0, -.5, -.5, 1, -.5], [-.5, 0, -.5, -.5, 0]],
], dtype=torch.float32)
S1_ACTIVATIONS = ("threshold", "bernoulli", "relu")
PUBLISHED_GAMMA = [1.2, 1.4, 1.6, 1.8, 2.0, 2.2]
EPS = 1e-10
BERNOULLI_CHUNK = 16  # images per training call with Bernoulli cells (their draws)
GRID = 2.0 ** 30  # FFT supports are snapped to multiples of 1 / GRID


def straight_through(hard: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """`hard` in the forward pass; d/d soft = 1 in the backward pass (only when needed)."""
    if not soft.requires_grad:
        return hard
    return hard + (soft - soft.detach())


def bernoulli(p: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Samples 1[u < p], u ~ U[0, 1) drawn on the CPU from `generator` (same on any device)."""
    u = torch.rand(p.shape, generator=generator, dtype=torch.float32)
    return (u.to(p.device) < p).to(p.dtype)


def _image_fields(**defaults) -> dict[str, Field]:
    return {
        "height": Field((int,), defaults.get("height", 32), positive, "an integer > 0"),
        "width": Field((int,), defaults.get("width", 32), positive, "an integer > 0"),
    }


LINE_FEATURE_FIELDS = {
    "type": Field((str,), "line_features"),
    **_image_fields(),
    "activation": Field((str,), "threshold", one_of(*S1_ACTIVATIONS), ", ".join(S1_ACTIVATIONS)),
    "larger_weights": Field((bool,), False),
    "filter_noise": Field(NUMBER, 0.0, non_negative,
                          "a number >= 0 (std of Gaussian noise added to the fixed filters)"),
    "trainable": Field((bool,), False),
}


def _channels(n_inputs: int, height: int, width: int, what: str) -> int:
    if n_inputs % (height * width):
        raise ConfigError(f"{what}: {n_inputs} inputs are not a whole number of "
                          f"{height} x {width} maps (set height/width)")
    return n_inputs // (height * width)


@LAYERS.register
class LineFeatures(Layer):
    """S1: four fixed oriented line filters on a single-channel image (module docstring).

    Output [B, 4 H W], channel-major (vertical, "/", horizontal, "\\"). The filters are a
    buffer (a parameter with `trainable: true`; the threshold then passes gradients
    straight through). `filter_noise` perturbs them by N(0, filter_noise^2) from the run's
    seeded generator (0, the published model, keeps them exact).
    """

    type_name = "line_features"
    config_fields = LINE_FEATURE_FIELDS
    kind = "rate"
    example_entry: ClassVar[dict] = {
        "type": "line_features", "height": 1, "width": 5, "filter_noise": 0.05}

    def __init__(self, n_inputs: int, entry: dict, context: LayerContext):
        self.height, self.width = entry["height"], entry["width"]
        if _channels(n_inputs, self.height, self.width, "line_features") != 1:
            raise ConfigError(f"line_features: expected a single-channel image of "
                              f"{self.height} x {self.width} = {self.height * self.width} "
                              f"inputs, got {n_inputs}")
        super().__init__(n_inputs, {"size": N_FEATURES * self.height * self.width})
        self.activation = entry["activation"]
        self.generator = context.generator
        filters = (LARGER_FILTERS if entry["larger_weights"] else FILTERS).clone()
        if entry["filter_noise"]:
            filters += entry["filter_noise"] * torch.randn(filters.shape,
                                                           generator=context.generator)
        filters = filters[:, None]
        if entry["trainable"]:
            self.filters = nn.Parameter(filters)
        else:
            self.register_buffer("filters", filters)

    def pre_activation(self, x: torch.Tensor) -> torch.Tensor:
        """a = conv2d(image, filters, "same") [B, 4, H, W]."""
        image = x.reshape(-1, 1, self.height, self.width).to(self.filters.dtype)
        return F.conv2d(image, self.filters, padding=2)

    def forward(self, x: torch.Tensor, backend=None, settings: RunSettings | None = None):
        a = self.pre_activation(x)
        if self.activation == "relu":
            y = torch.relu(a)
        elif self.activation == "threshold":
            y = straight_through((a > 0).to(a.dtype), a)
        else:
            y = straight_through(bernoulli(a.clamp(0, 1), self.generator), a)
        return y.flatten(1).to(x.dtype)


LATERAL_FIELDS = {
    "type": Field((str,), "lateral"),
    **_image_fields(),
    "alternative_cells": Field((int,), 10, positive, "an integer > 0"),
    "kernel_size": Field((int,), 11, lambda v: v > 0 and v % 2 == 1,
                         "an odd integer > 0 (the lateral kernel is centred on the cell)"),
    "timesteps": Field((int,), 6, positive, "an integer > 0"),
    "output": Field((str,), "threshold", one_of("threshold", "bernoulli"),
                    "threshold, bernoulli"),
    "threshold": Field(NUMBER, 0.5, lambda v: 0 < v < 1, "a number in (0, 1)"),
    "gamma": Field((list,), PUBLISHED_GAMMA, lambda v: len(v) > 0 and all(
        isinstance(g, (int, float)) and not isinstance(g, bool) and g > 0 for g in v),
        "a list of exponents > 0, one per time step"),
    "support_factor": Field(NUMBER, 1.3, positive, "a number > 0"),
    "fold_back": Field((bool,), True),
    "learning_rate": Field(NUMBER, 0.2, non_negative, "a number >= 0"),
    "negative_correlation": Field((bool,), True),
    "init_noise": Field(NUMBER, 0.0, lambda v: 0 <= v <= 1,
                        "a number in [0, 1] (uniform noise added to the identity init)"),
    "input_threshold": Field(NUMBER, 0.5, lambda v: 0 <= v < 1,
                             "a number in [0, 1) (binarises the input at evaluation)"),
}


@LAYERS.register
class LateralLayer(Layer):
    """S2: K alternative cells per input feature with learnt lateral connections (module
    docstring). Input [B, F H W] (S1), output [B, F K H W]: the binary cells of the last
    time step, channel c = f K + alternative. The weights are a buffer `weight`
    [F K, F + F K, k, k] in [0, 1] that only the Hebbian `local_update` changes.
    """

    type_name = "lateral"
    config_fields = LATERAL_FIELDS
    kind = "rate"
    example_entry: ClassVar[dict] = {
        "type": "lateral", "height": 1, "width": 5, "alternative_cells": 2, "kernel_size": 3,
        "timesteps": 2, "gamma": [1.0, 2.0], "init_noise": 0.3}

    def __init__(self, n_inputs: int, entry: dict, context: LayerContext):
        self.height, self.width = entry["height"], entry["width"]
        self.n_features = _channels(n_inputs, self.height, self.width, "lateral")
        self.cells = entry["alternative_cells"]
        self.n_out = self.n_features * self.cells
        super().__init__(n_inputs, {"size": self.n_out * self.height * self.width})
        self.entry = dict(entry)
        self.kernel = entry["kernel_size"]
        self.generator = context.generator
        k, r = self.kernel, self.kernel // 2
        weight = torch.zeros(self.n_out, self.n_features + self.n_out, k, k)
        cells = torch.arange(self.n_out)
        weight[cells, cells // self.cells, r, r] = 1.0        # feature f -> its K cells
        weight[cells, self.n_features + cells, r, r] = 1.0    # each cell -> itself
        if entry["init_noise"]:
            weight += entry["init_noise"] * torch.rand(weight.shape, generator=context.generator)
            weight.clamp_(0, 1)
        self.register_buffer("weight", weight)
        self._spectra: dict = {}           # weight spectra, recomputed when a weight changes

    @classmethod
    def check_entry(cls, entry: dict, where: str) -> None:
        if len(entry["gamma"]) != entry["timesteps"]:
            raise ConfigError(f"{where}: gamma has {len(entry['gamma'])} exponents but "
                              f"timesteps = {entry['timesteps']}; give one per step")

    # -- supports --------------------------------------------------------------------------

    def kernel_weight(self, binary: bool = False) -> torch.Tensor:
        """W, or [W > 0] (the cell selection's binarised weights)."""
        return (self.weight > 0).to(self.weight.dtype) if binary else self.weight

    def _spectrum(self, binary: bool, size: int) -> torch.Tensor:
        """conj(rfft2(W or [W > 0])) in float64, laid out [freq, Cin, C]; recomputed when the
        weight changes (in-place updates bump its version)."""
        key = (binary, self.weight.data_ptr(), self.weight._version, size, self.weight.device)
        cache = self._spectra.get(binary)
        if cache is None or cache[0] != key:
            spectrum = torch.fft.rfft2(self.kernel_weight(binary).double(), s=(size, size))
            cache = (key, spectrum.conj().flatten(2).permute(2, 1, 0).contiguous())
            self._spectra[binary] = cache
        return cache[1]

    def support(self, x: torch.Tensor, binary: bool = False) -> torch.Tensor:
        """conv2d(x, W or [W > 0], padding r) [B, C, H, W] (cross-correlation, "same").

        Computed as a product of spectra in float64 (one [B, Cin] x [Cin, C] product per
        frequency, zero padding to H + 2r so nothing wraps; error ~1e-13), snapped to the
        grid 2^-30 and rounded to float32: sums that lie on the grid (0, integers, halves:
        saturated weights) come out exact, others within 2^-31 of the exact sum. With a gradient to pass (a trainable layer below) it runs conv2d instead.
        """
        r = self.kernel // 2
        weight = self.kernel_weight(binary)
        if x.requires_grad:
            return F.conv2d(x.to(weight.dtype), weight, padding=r)
        size = max(self.height, self.width) + 2 * r
        spectrum = self._spectrum(binary, size)                            # [f, Cin, C]
        batch = x.shape[0]
        xs = torch.fft.rfft2(x.double(), s=(size, size))                    # [B, Cin, L, L']
        prod = torch.bmm(xs.flatten(2).permute(2, 0, 1).contiguous(), spectrum)  # [f, B, C]
        full = torch.fft.irfft2(prod.permute(1, 2, 0).reshape(
            batch, weight.shape[0], size, size // 2 + 1), s=(size, size))
        full = torch.roll(full, shifts=(r, r), dims=(2, 3))[:, :, :self.height, :self.width]
        return (torch.round(full * GRID) / GRID).to(weight.dtype)

    def select_cells(self, x0: torch.Tensor) -> torch.Tensor:
        """One-hot [B, C, H, W]: per feature and position the alternative cell with the
        best mean match 3 conv(x0, [W > 0]) - |W > 0| (ties: the first cell)."""
        match = torch.round(self.support(x0.detach(), binary=True))
        score = 3 * match - (self.weight > 0).sum((1, 2, 3))[:, None, None]
        score = score.reshape(-1, self.n_features, self.cells, self.height, self.width)
        best = score.argmax(2, keepdim=True)
        mask = torch.arange(self.cells, device=x0.device)[:, None, None] == best
        return mask.reshape(-1, self.n_out, self.height, self.width)

    # -- dynamics --------------------------------------------------------------------------

    def binarise_input(self, ff: torch.Tensor) -> torch.Tensor:
        """S1 activity as S2 sees it: > 0 while training (as the published training loop
        does), > input_threshold otherwise."""
        cut = 0.0 if self.training else self.entry["input_threshold"]
        return straight_through((ff > cut).to(self.weight.dtype), ff.to(self.weight.dtype))

    def run(self, ff: torch.Tensor, threshold: float | None = None,
            gamma: list[float] | None = None, supports: bool = True
            ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """All time steps on binary S1 maps ff [B, F, H, W]: (z [T, B, C, H, W] binary,
        s [T, B, C, H, W] the normalised supports, or None unless `supports`). `threshold`
        and `gamma` override the layer's (evaluation grids). Runs the sparse kernels
        (`run_chosen`) unless a gradient has to pass, then the dense reference
        `run_reference`."""
        if ff.requires_grad:
            return self.run_reference(ff, threshold, gamma)
        fired, choice, values = self.run_chosen(ff, threshold, gamma, supports)
        z = self.expand_chosen(fired, choice).to(ff.device)
        return z, self.expand_chosen(values, choice).to(ff.device) if supports else None

    def run_chosen(self, ff: torch.Tensor, threshold: float | None = None,
                   gamma: list[float] | None = None, supports: bool = False
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The T steps by the sparse kernels (`sparse.run_images`, the published steps on
        the active bits; CPU) as the chosen cell of each feature: (fired [B, T, F, H, W]
        uint8, choice [B, F, H, W] the alternative picked at t = 0, normalised supports
        [B, T, F, H, W] or None), on the CPU."""
        e = self.entry
        threshold = e["threshold"] if threshold is None else threshold
        gamma = np.asarray(e["gamma"] if gamma is None else gamma, dtype=np.float64)
        n_steps = len(gamma)
        bits = (ff.detach() > 0.5).to(torch.uint8).cpu().numpy()
        inverse = None
        if e["output"] == "threshold":   # deterministic: each distinct S1 map once
            bits, inverse = distinct_maps(bits)
        batch = len(bits)
        weight = self.weight.detach().cpu().contiguous().numpy()
        shape = (batch, n_steps, self.n_features, self.height, self.width)
        fired = np.zeros(shape, np.uint8)
        choice = np.zeros((batch, self.n_features, self.height, self.width), np.int32)
        values = np.zeros(shape if supports else (1,) * 5, weight.dtype)
        sparse.run_images(bits, weight, self.cells, gamma, threshold,
                          e["support_factor"] * self.kernel, e["fold_back"],
                          self._uniforms(batch, n_steps, per_image=False),
                          e["output"] == "bernoulli", fired, choice, values, supports)
        result = (fired, choice, values if supports else None)
        if inverse is not None:
            result = tuple(None if a is None else a[inverse.reshape(-1)] for a in result)
        return tuple(None if a is None else torch.from_numpy(a) for a in result)

    def expand_chosen(self, per_feature: torch.Tensor, choice: torch.Tensor) -> torch.Tensor:
        """[B, T, F, H, W] values of each feature's chosen cell -> [T, B, C, H, W] in the
        layer's dtype, 0 at the cells not chosen."""
        batch, n_steps = per_feature.shape[:2]
        cells = torch.zeros(batch, n_steps, self.n_features, self.cells, self.height,
                            self.width, dtype=self.weight.dtype)
        index = choice.long()[:, None, :, None].expand(-1, n_steps, -1, -1, -1, -1)
        cells.scatter_(3, index, per_feature[:, :, :, None].to(cells.dtype))
        return cells.reshape(batch, n_steps, self.n_out, self.height,
                             self.width).transpose(0, 1)

    def _uniforms(self, batch: int, n_steps: int, per_image: bool) -> np.ndarray:
        """The Bernoulli draws [B, T, C, H, W] from the run's generator, in the order of the
        dense reference: one [B, C, H, W] tensor per step, or (per_image: the published
        training loop) one [1, C, H, W] per step and image. Empty for threshold cells."""
        if self.entry["output"] != "bernoulli":
            return np.zeros((1, 1, 1, 1, 1), np.float32)
        shape = (self.n_out, self.height, self.width)
        if per_image:
            return torch.stack([torch.stack([
                torch.rand((1, *shape), generator=self.generator, dtype=torch.float32)[0]
                for _ in range(n_steps)]) for _ in range(batch)]).numpy()
        return torch.stack([torch.rand((batch, *shape), generator=self.generator,
                                       dtype=torch.float32)
                            for _ in range(n_steps)], 1).numpy()

    def run_reference(self, ff: torch.Tensor, threshold: float | None = None,
                      gamma: list[float] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """`run` by dense supports (spectra or conv2d, `support`) on whole batches: the
        reference the sparse kernels are tested against, and the path gradients take."""
        e = self.entry
        threshold = e["threshold"] if threshold is None else threshold
        gamma = e["gamma"] if gamma is None else gamma
        batch = ff.shape[0]
        z = torch.zeros(batch, self.n_out, self.height, self.width, dtype=self.weight.dtype,
                        device=ff.device)
        limit = e["support_factor"] * self.kernel
        steps, supports, mask = [], [], None
        for t in range(len(gamma)):
            x = torch.cat([ff, z], 1)
            s = self.support(x)
            if mask is None:
                mask = self.select_cells(x)
            if e["fold_back"]:
                s = torch.where(s > limit, limit - 0.5 * (s - limit), s)
            s = s * mask
            peak = s.reshape(batch, self.n_features, -1).amax(2)
            s = s / (EPS + peak.repeat_interleave(self.cells, 1)[:, :, None, None])
            base = s.clamp(min=EPS if s.requires_grad else 0)  # finite gradients at 0
            p = base ** gamma[t]
            if e["output"] == "bernoulli":
                hard = bernoulli(p.clamp(max=1), self.generator)
            else:
                hard = (p >= threshold).to(p.dtype)
            z = straight_through(hard, p)
            steps.append(z)
            supports.append(s)
        return torch.stack(steps), torch.stack(supports)

    def forward(self, x: torch.Tensor, backend=None, settings: RunSettings | None = None):
        ff = self.binarise_input(x.reshape(-1, self.n_features, self.height, self.width))
        if ff.requires_grad:
            last = self.run_reference(ff)[0][-1]
        else:
            fired, choice, _ = self.run_chosen(ff)
            last = self.expand_chosen(fired[:, -1:], choice)[0]
        return last.flatten(1).to(device=x.device, dtype=x.dtype)

    # -- learning --------------------------------------------------------------------------

    def hebbian_update(self, ff: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The summed per-sample updates U [C, Cin, k, k] (module docstring) for binary S1
        maps ff [B, F, H, W] and cell activity y [B, C, H, W], densely: the reference of the
        sparse `sparse.hebbian_step` (training applies it image by image, B = 1).

        sum_p y_o(p) x_d(p) adds, for every active cell, the k x k input patch around it;
        sum_p x_d(p) (patch entries inside the image) comes from an integral image.
        """
        k, r, h, w = self.kernel, self.kernel // 2, self.height, self.width
        batch, cin = len(y), self.n_features + self.n_out
        x = torch.cat([ff, y], 1)
        padded = F.pad(x, (r, r, r, r))
        b, o, py, px = y.nonzero(as_tuple=True)
        offsets = torch.arange(k, device=y.device)
        patches = padded[b[:, None, None, None], torch.arange(cin, device=y.device)[:, None, None],
                         (py[:, None] + offsets)[:, None, :, None],
                         (px[:, None] + offsets)[:, None, None, :]]       # [Ny, Cin, k, k]
        both = torch.zeros(batch * self.n_out, cin * k * k, dtype=y.dtype, device=y.device)
        both.index_add_(0, b * self.n_out + o, patches.reshape(len(b), -1))
        both = both.view(batch, self.n_out, cin * k * k)                   # sum_p y x
        n_positions = h * w
        if self.entry["negative_correlation"]:
            integral = F.pad(x.cumsum(2).cumsum(3), (1, 0, 1, 0))        # [B, Cin, H+1, W+1]
            low_y = (offsets - r).clamp(min=0)
            high_y = (h + offsets - r).clamp(max=h)
            low_x = (offsets - r).clamp(min=0)
            high_x = (w + offsets - r).clamp(max=w)
            corner = lambda ys, xs: integral[:, :, ys][:, :, :, xs]
            x_count = (corner(high_y, high_x) - corner(low_y, high_x)
                       - corner(high_y, low_x) + corner(low_y, low_x))   # [B, Cin, k, k]
            y_count = y.sum((2, 3))[:, :, None]
            update = (3 * both - y_count - x_count.reshape(batch, 1, -1)) / n_positions
        else:
            update = both / n_positions
        update = update.clamp(min=0)
        low = update.amin((1, 2), keepdim=True)
        high = update.amax((1, 2), keepdim=True)
        return ((update - low) / (high - low + EPS)).sum(0).reshape(self.weight.shape)

    def local_update(self, layer_input: torch.Tensor, layer_output: torch.Tensor) -> None:
        """The published training on this batch's images one after the other (each as a
        batch of one image, as the published code): per image the T steps with the
        current weights, y the lower median over time, W <- clip(W + lr U, 0, 1) (module
        docstring; `sparse.train_images`). The batch size changes nothing but the weights
        the forward pass (the reported loss) used; Bernoulli cells draw anew here, one
        [1, C, H, W] per step and image, as the published loop."""
        e = self.entry
        if e["learning_rate"] == 0:
            return
        ff = self.binarise_input(layer_input.detach().reshape(
            -1, self.n_features, self.height, self.width))
        bits = (ff > 0.5).to(torch.uint8).cpu().numpy()
        weight = self.weight.detach().cpu().contiguous().numpy()
        gamma = np.asarray(e["gamma"], dtype=np.float64)
        chunk = len(bits) if e["output"] == "threshold" else BERNOULLI_CHUNK
        for first in range(0, len(bits), chunk):
            images = bits[first:first + chunk]
            sparse.train_images(images, weight, self.cells, gamma, e["threshold"],
                                e["support_factor"] * self.kernel, e["fold_back"],
                                e["learning_rate"], e["negative_correlation"],
                                self._uniforms(len(images), len(gamma), per_image=True),
                                e["output"] == "bernoulli")
        with torch.no_grad():
            if weight.ctypes.data != self.weight.data_ptr():
                self.weight.copy_(torch.from_numpy(weight))
            else:
                self.weight.add_(0.0)  # bumps the version: cached spectra are recomputed

    def merged(self, z: torch.Tensor) -> torch.Tensor:
        """Max over the alternative cells: [..., C, H, W] -> [..., F, H, W]."""
        shape = z.shape[:-3] + (self.n_features, self.cells, self.height, self.width)
        return z.reshape(shape).amax(-3)


def distinct_maps(bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct maps of bits [B, ...] (uint8), index of each map among them [B])."""
    first: dict[bytes, int] = {}
    inverse = np.array([first.setdefault(row.tobytes(), len(first))
                        for row in np.packbits(bits.reshape(len(bits), -1), axis=1)])
    order = np.zeros(len(first), dtype=np.int64)
    order[inverse] = np.arange(len(bits))
    return bits[order], inverse


def lower_median(steps: torch.Tensor) -> torch.Tensor:
    """Lower median over time (dim 0) of binary maps: 1 where active on at least
    T - (T - 1) // 2 of the T steps (4 of 6, 2 of 2), as torch.median."""
    count = steps.sum(0)
    n = steps.shape[0]
    return (count >= n - (n - 1) // 2).to(steps.dtype)
