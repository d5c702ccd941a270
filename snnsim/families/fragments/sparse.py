"""Sparse kernels (numba) for the lateral layer: S2's time steps and the published
one-image-at-a-time Hebbian training, on the active bits and non-zero weights only.

The inputs of S2 are binary and sparse (a line activates ~3 % of the 4 x 32 x 32 S1 bits),
of each feature's K alternative cells only the one picked at t = 0 can fire, and W is
sparse (the published network: 1.2 % of its entries are non-zero). So

    s_t[f, p] = sum over active inputs (d, q) and non-zero W[c, d, o] with c = c*(f, p),
                q = p + o - r, of W[c, d, o]

visits (active inputs) x (non-zero weights of the input) terms instead of the dense
convolution's C (F + C) k^2 H W; the cell choice at t = 0 counts the same over [W > 0] for
all C cells. The Hebbian update of one image

    U[c, d, o] = 1/N sum_p (3 y_c(p) x_d(p + o - r) - y_c(p) - x_d(p + o - r))

is positive only where a cell and an input are active together, so after max(U, 0) and the
min-max scaling (min 0 unless every entry is positive) only those co-active entries of W
change: W <- clip(W + lr U / max U, 0, 1). Weights never decrease, so the non-zero weights
per input channel (`index`, `length`) and per cell (`nonzero`, the cell choice's |W > 0|)
are kept up to date by appending.

Every quantity follows the published code operation for operation, in W's dtype (float32
as published, or float64): supports summed in float64 (exact, in any order, for float32
weights >= 2^-23; the Hebbian steps are >= lr / (H W)) and rounded once to W's dtype;
fold-back, normalisation, exponent, threshold, the update and the clipping in W's dtype.
A training pass over n images is exactly n batches of one image of the published code.
The dense reference (`LateralLayer.run_reference`, `LateralLayer.hebbian_update`) agrees
with it to rounding (tests).
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def typed(value, like):
    """`value` as a scalar of the array `like`'s dtype (float32 arithmetic for float32 W)."""
    out = np.empty(1, like.dtype)
    out[0] = value
    return out[0]


@njit(cache=True, nogil=True)
def active_bits(maps):
    """(channel, row, column) int32 arrays of the non-zero entries of maps [C, H, W]."""
    n_channels, height, width = maps.shape
    count = 0
    for c in range(n_channels):
        for i in range(height):
            for j in range(width):
                if maps[c, i, j] != 0:
                    count += 1
    channel = np.empty(count, np.int32)
    row = np.empty(count, np.int32)
    column = np.empty(count, np.int32)
    n = 0
    for c in range(n_channels):
        for i in range(height):
            for j in range(width):
                if maps[c, i, j] != 0:
                    channel[n], row[n], column[n] = c, i, j
                    n += 1
    return channel, row, column


@njit(cache=True, nogil=True)
def add_entry(index, length, nonzero, cells, c, d, ky, kx, n_in, k):
    """Append the non-zero W[c, d, ky, kx] to input channel d's list: (feature, alternative,
    row offset r - ky, column offset r - kx, flat position in W)."""
    m = length[d]
    r = k // 2
    index[d, m, 0] = c // cells
    index[d, m, 1] = c % cells
    index[d, m, 2] = r - ky
    index[d, m, 3] = r - kx
    index[d, m, 4] = ((c * n_in + d) * k + ky) * k + kx
    length[d] = m + 1
    nonzero[c] += 1


@njit(cache=True, nogil=True)
def nonzero_weights(weight, cells):
    """(index [Cin, C k k, 5] int32, length [Cin] int32, nonzero [C] int64): the non-zero
    W[:, d] in index[d, :length[d]] (`add_entry`), and |W_c > 0| per cell."""
    n_out, n_in, k, _ = weight.shape
    index = np.empty((n_in, n_out * k * k, 5), np.int32)
    length = np.zeros(n_in, np.int32)
    nonzero = np.zeros(n_out, np.int64)
    for d in range(n_in):
        for c in range(n_out):
            for ky in range(k):
                for kx in range(k):
                    if weight[c, d, ky, kx] > 0:
                        add_entry(index, length, nonzero, cells, c, d, ky, kx, n_in, k)
    return index, length, nonzero


@njit(cache=True, nogil=True)
def select_cells(ff_d, ff_y, ff_x, n_features, height, width, index, length, nonzero, cells):
    """The t = 0 cell choice [F, H, W] (0..K-1) for the active S1 bits (ff_d, ff_y, ff_x):
    argmax over a of 3 conv(ff, [W > 0])[f K + a] - |W_{f K + a} > 0| (first on ties; the
    published mean match minus the same sum of inputs for every cell). Where no active bit
    reaches, every match is 0 and the cell with the fewest weights wins."""
    n_out = n_features * cells
    match = np.zeros((height, width, n_out), np.int32)
    reached = np.zeros((height, width), np.bool_)
    for n in range(len(ff_d)):
        d, qy, qx = ff_d[n], ff_y[n], ff_x[n]
        for m in range(length[d]):
            py, px = qy + index[d, m, 2], qx + index[d, m, 3]
            if 0 <= py < height and 0 <= px < width:
                match[py, px, index[d, m, 0] * cells + index[d, m, 1]] += 1
                reached[py, px] = True
    choice = np.empty((n_features, height, width), np.int32)
    for f in range(n_features):
        fewest = 0
        for a in range(1, cells):
            if nonzero[f * cells + a] < nonzero[f * cells + fewest]:
                fewest = a
        for i in range(height):
            for j in range(width):
                if not reached[i, j]:
                    choice[f, i, j] = fewest
                    continue
                best_cell = 0
                best = 3 * match[i, j, f * cells] - nonzero[f * cells]
                for a in range(1, cells):
                    score = 3 * match[i, j, f * cells + a] - nonzero[f * cells + a]
                    if score > best:
                        best = score
                        best_cell = a
                choice[f, i, j] = best_cell
    return choice


@njit(cache=True, nogil=True)
def accumulate(support, in_d, in_y, in_x, sign, index, length, choice, flat_weight, height,
               width):
    """support[f, p] += sign W[c*(f, p), d, q - p + r] for the inputs (d, q) listed: the
    chosen cells' support from these active inputs through the non-zero weights."""
    for n in range(len(in_d)):
        d, qy, qx = in_d[n], in_y[n], in_x[n]
        for m in range(length[d]):
            py, px = qy + index[d, m, 2], qx + index[d, m, 3]
            if 0 <= py < height and 0 <= px < width:
                f = index[d, m, 0]
                if choice[f, py, px] == index[d, m, 1]:
                    support[f, py, px] += sign * flat_weight[index[d, m, 4]]


@njit(cache=True, nogil=True)
def run_steps(ff, weight, index, length, nonzero, cells, gamma, threshold, limit, fold_back,
              uniforms, bernoulli, fired, choice, supports, want_supports):
    """S2's T time steps on binary S1 maps ff [F, H, W] (uint8). Writes the cell choice
    choice [F, H, W] (int32), fired [T, F, H, W] (uint8: whether feature f's chosen cell
    fired at p) and, if want_supports, its normalised supports supports [T, F, H, W].
    `uniforms` [T, C, H, W] are the Bernoulli draws (cell c = f K + choice)."""
    n_features, height, width = ff.shape
    eps = typed(1e-10, weight)
    limit_ = typed(limit, weight)
    half = typed(0.5, weight)
    zero = typed(0.0, weight)
    one = typed(1.0, weight)
    theta = typed(threshold, weight)
    ff_d, ff_y, ff_x = active_bits(ff)
    choice[:] = select_cells(ff_d, ff_y, ff_x, n_features, height, width, index, length,
                             nonzero, cells)
    flat_weight = weight.reshape(weight.size)
    value = np.zeros((n_features, height, width), weight.dtype)
    # the S1 part of the support is the same at every step (choice fixed after t = 0); the
    # recurrent part follows the cells that switch on or off. float64 sums of float32
    # weights are exact, so the order of the additions does not matter.
    support_ff = np.zeros((n_features, height, width), np.float64)
    accumulate(support_ff, ff_d, ff_y, ff_x, 1.0, index, length, choice, flat_weight,
               height, width)
    support_rec = np.zeros((n_features, height, width), np.float64)
    previous = np.zeros((n_features, height, width), np.uint8)
    on_d = np.empty(n_features * height * width, np.int32)
    on_y = np.empty_like(on_d)
    on_x = np.empty_like(on_d)
    off_d = np.empty_like(on_d)
    off_y = np.empty_like(on_d)
    off_x = np.empty_like(on_d)
    for t in range(len(gamma)):
        if t > 0:
            n_on = 0
            n_off = 0
            for f in range(n_features):
                for i in range(height):
                    for j in range(width):
                        now = fired[t - 1, f, i, j]
                        if now != previous[f, i, j]:
                            c = n_features + f * cells + choice[f, i, j]
                            if now:
                                on_d[n_on], on_y[n_on], on_x[n_on] = c, i, j
                                n_on += 1
                            else:
                                off_d[n_off], off_y[n_off], off_x[n_off] = c, i, j
                                n_off += 1
                            previous[f, i, j] = now
            accumulate(support_rec, on_d[:n_on], on_y[:n_on], on_x[:n_on], 1.0, index,
                       length, choice, flat_weight, height, width)
            accumulate(support_rec, off_d[:n_off], off_y[:n_off], off_x[:n_off], -1.0, index,
                       length, choice, flat_weight, height, width)
        exponent = typed(gamma[t], weight)
        # s^gamma >= theta is decided without the power where s is clearly on one side of
        # theta^(1 / gamma) (margin 1e-4 relative, far above the power's rounding error)
        cut = threshold ** (1.0 / gamma[t])
        clear = not bernoulli and gamma[t] >= 0.1
        below, above = cut * (1.0 - 1e-4), cut * (1.0 + 1e-4)
        for f in range(n_features):
            peak = zero
            for i in range(height):
                for j in range(width):
                    value[f, i, j] = support_ff[f, i, j] + support_rec[f, i, j]  # W's dtype
                    v = value[f, i, j]
                    if fold_back and v > limit_:
                        v = limit_ - half * (v - limit_)
                    value[f, i, j] = v
                    peak = max(peak, v)
            scale = eps + peak
            for i in range(height):
                for j in range(width):
                    s = value[f, i, j] / scale
                    if want_supports:
                        supports[t, f, i, j] = s
                    fired[t, f, i, j] = 0
                    if s <= 0:   # p = 0: never fires (theta > 0, uniforms >= 0)
                        continue
                    if clear and s < below:
                        continue
                    if clear and s > above:
                        fired[t, f, i, j] = 1
                        continue
                    p = s ** exponent
                    if bernoulli:
                        fire = uniforms[t, f * cells + choice[f, i, j], i, j] < min(p, one)
                    else:
                        fire = p >= theta
                    if fire:
                        fired[t, f, i, j] = 1


@njit(cache=True, nogil=True)
def median_cells(fired, choice, cells):
    """The active cells (c, row, column) of the lower median over time: the chosen cell of
    feature f at p fired on at least T - (T - 1) // 2 of the T steps (4 of 6, 2 of 2)."""
    n_steps, n_features, height, width = fired.shape
    need = n_steps - (n_steps - 1) // 2
    y = np.zeros((n_features, height, width), np.uint8)
    for f in range(n_features):
        for i in range(height):
            for j in range(width):
                count = 0
                for t in range(n_steps):
                    count += fired[t, f, i, j]
                y[f, i, j] = 1 if count >= need else 0
    f_list, y_list, x_list = active_bits(y)
    c_list = np.empty_like(f_list)
    for n in range(len(f_list)):
        c_list[n] = f_list[n] * cells + choice[f_list[n], y_list[n], x_list[n]]
    return c_list, y_list, x_list


@njit(cache=True, nogil=True)
def hebbian_step(ff, y_c, y_y, y_x, weight, index, length, nonzero, cells, learning_rate,
                 negative_correlation, both):
    """One image's published update, in place: W <- clip(W + lr U+ / max U+, 0, 1) (module
    docstring) for S1 bits ff [F, H, W] and the median cells (y_c, y_y, y_x). `both`
    [C, F + C, k, k] int32 is a zeroed scratch array and is left zeroed."""
    n_features, height, width = ff.shape
    n_out, n_in, k, _ = weight.shape
    r = k // 2
    n_positions = typed(height * width, weight)
    zero = typed(0.0, weight)
    one = typed(1.0, weight)
    ff_d, ff_y, ff_x = active_bits(ff)
    n_x = len(ff_d) + len(y_c)
    x_d = np.empty(n_x, np.int32)
    x_y = np.empty(n_x, np.int32)
    x_x = np.empty(n_x, np.int32)
    x_d[:len(ff_d)] = ff_d
    x_y[:len(ff_d)] = ff_y
    x_x[:len(ff_d)] = ff_x
    x_d[len(ff_d):] = y_c + n_features
    x_y[len(ff_d):] = y_y
    x_x[len(ff_d):] = y_x
    # sum_p x_d(p + o - r) over the positions p inside the image
    x_count = np.zeros((n_in, k, k), np.int32)
    for n in range(n_x):
        for ky in range(k):
            py = x_y[n] - ky + r
            if py < 0 or py >= height:
                continue
            for kx in range(k):
                px = x_x[n] - kx + r
                if 0 <= px < width:
                    x_count[x_d[n], ky, kx] += 1
    y_count = np.zeros(n_out, np.int32)
    for n in range(len(y_c)):
        y_count[y_c[n]] += 1
    # co-activations sum_p y_c(p) x_d(p + o - r): the touched entries, listed once
    touched = np.empty((len(y_c) * n_x, 4), np.int32)
    n_touched = 0
    for m in range(len(y_c)):
        o, py, px = y_c[m], y_y[m], y_x[m]
        for n in range(n_x):
            ky = x_y[n] - py + r
            kx = x_x[n] - px + r
            if 0 <= ky < k and 0 <= kx < k:
                d = x_d[n]
                if both[o, d, ky, kx] == 0:
                    touched[n_touched, 0] = o
                    touched[n_touched, 1] = d
                    touched[n_touched, 2] = ky
                    touched[n_touched, 3] = kx
                    n_touched += 1
                both[o, d, ky, kx] += 1
    update = np.empty(n_touched, weight.dtype)
    high = zero
    low = typed(np.inf, weight)
    n_positive = 0
    for e in range(n_touched):
        o, d, ky, kx = touched[e, 0], touched[e, 1], touched[e, 2], touched[e, 3]
        if negative_correlation:
            update[e] = 3 * both[o, d, ky, kx] - y_count[o] - x_count[d, ky, kx]
        else:
            update[e] = both[o, d, ky, kx]
        both[o, d, ky, kx] = 0
        u = max(update[e] / n_positions, zero)
        update[e] = u
        if u > 0:
            n_positive += 1
            high = max(high, u)
            low = min(low, u)
    if n_positive < weight.size:
        low = zero   # an untouched or non-positive entry holds the minimum, 0
    scale = (high - low) + typed(1e-10, weight)
    rate = typed(learning_rate, weight)
    for e in range(n_touched):
        u = update[e]
        if u <= 0:
            continue
        o, d, ky, kx = touched[e, 0], touched[e, 1], touched[e, 2], touched[e, 3]
        old = weight[o, d, ky, kx]
        new = min(max(old + rate * ((u - low) / scale), zero), one)
        weight[o, d, ky, kx] = new
        if old <= 0 < new:
            add_entry(index, length, nonzero, cells, o, d, ky, kx, n_in, k)


@njit(cache=True, nogil=True)
def run_images(ff, weight, cells, gamma, threshold, limit, fold_back, uniforms, bernoulli,
               fired, choice, supports, want_supports):
    """`run_steps` on each of the images ff [B, F, H, W] (fixed weights): fired
    [B, T, F, H, W], choice [B, F, H, W], supports [B, T, F, H, W] (if want_supports),
    uniforms [B, T, C, H, W] (if bernoulli)."""
    index, length, nonzero = nonzero_weights(weight, cells)
    for b in range(ff.shape[0]):
        run_steps(ff[b], weight, index, length, nonzero, cells, gamma, threshold, limit,
                  fold_back, uniforms[b if bernoulli else 0], bernoulli, fired[b], choice[b],
                  supports[b if want_supports else 0], want_supports)


@njit(cache=True, nogil=True)
def train_images(ff, weight, cells, gamma, threshold, limit, fold_back, learning_rate,
                 negative_correlation, uniforms, bernoulli):
    """The published training on images ff [B, F, H, W] one after the other: per image the
    T steps with the current W, the lower median y and the update of W (in place).
    uniforms [B, T, C, H, W]: the Bernoulli draws (if bernoulli)."""
    n_images, n_features, height, width = ff.shape
    index, length, nonzero = nonzero_weights(weight, cells)
    fired = np.zeros((len(gamma), n_features, height, width), np.uint8)
    choice = np.zeros((n_features, height, width), np.int32)
    unused = np.zeros((1, 1, 1, 1), weight.dtype)
    both = np.zeros(weight.shape, np.int32)
    for b in range(n_images):
        run_steps(ff[b], weight, index, length, nonzero, cells, gamma, threshold, limit,
                  fold_back, uniforms[b if bernoulli else 0], bernoulli, fired, choice,
                  unused, False)
        y_c, y_y, y_x = median_cells(fired, choice, cells)
        hebbian_step(ff[b], y_c, y_y, y_x, weight, index, length, nonzero, cells,
                     learning_rate, negative_correlation, both)
