// What one thread of each kernel does, as a function of its place in the launch grid.
//
// kernels.cu launches these bodies on the GPU; kernels_emulated.cpp runs the very same
// launch grid (same blocks, same threads per block, same batch chunks) in loops on the
// host, so that machines without a GPU test the kernels' indexing, strides, shared-memory
// sort and chunked reductions, and not only the per-neuron math of spike_math.h.
//
// forward:  one block per sample. Phase 1: the block's threads rank the sample's finite
//           input times (rank = number of earlier inputs, ties broken by index, i.e. a
//           stable sort) into the block's buffer (shared memory, or global scratch for
//           layers with too many inputs). Phase 2, after a barrier: each thread walks the
//           sorted inputs for output neurons thread, thread + threads, ...
// backward: three passes, each a plain loop without atomics so that results are
//           reproducible: (1) one thread per (sample, neuron) computes the gradient scale
//           (slope, max_dw_norm); (2) one thread per (input, neuron) and batch chunk sums
//           the weight gradient over the chunk's samples (the caller sums the chunks);
//           (3) one thread per (sample, input) sums the input-time gradient over neurons.
#pragma once

#include <stdexcept>
#include <string>

#include "kernels.h"
#include "spike_math.h"

namespace snn {

constexpr int THREADS_PER_BLOCK = 256;  // of every kernel but the forward one

// Threads of a forward block: enough for the output neurons, and for the sort where there
// are many more inputs than neurons; a multiple of the warp size in [32, 256].
inline int forward_block_threads(int64_t n_in, int64_t n_out) {
    int64_t wanted = n_out > n_in / 4 ? n_out : n_in / 4;
    wanted = (wanted + 31) / 32 * 32;
    return static_cast<int>(wanted < 32 ? 32 : (wanted > 256 ? 256 : wanted));
}

// Blocks of `threads` covering n items, checked against the grid limit.
inline unsigned int blocks_for(int64_t n, int threads) {
    const int64_t blocks = (n + threads - 1) / threads;
    if (blocks > 0x7fffffff) {
        throw std::runtime_error("snnsim cuda backend: " + std::to_string(n) +
                                 " threads need more than the 2147483647 blocks of one launch");
    }
    return static_cast<unsigned int>(blocks);
}

// Calls run(T(0)) with T = double for bits 64 and float for bits 32.
template <class Run>
void with_precision(int bits, Run&& run) {
    if (bits == 64) {
        run(0.0);
    } else if (bits == 32) {
        run(0.0f);
    } else {
        throw std::invalid_argument("snnsim cuda backend: bits must be 32 or 64, got " +
                                    std::to_string(bits));
    }
}

template <typename T>
Matrix<T> as_matrix(const snn_cuda::MatrixArg& m) {
    return {reinterpret_cast<const T*>(m.data), m.stride0, m.stride1};
}

template <typename T>
NeuronParams<T> as_params(const snn_cuda::NeuronArg& n) {
    return {reinterpret_cast<const T*>(n.tau_m),   reinterpret_cast<const T*>(n.tau_s),
            reinterpret_cast<const T*>(n.drive),   static_cast<T>(n.tau_m_value),
            static_cast<T>(n.tau_s_value),         static_cast<T>(n.drive_value)};
}

// --- forward ------------------------------------------------------------------------------

template <typename T>
struct ForwardArgs {
    Matrix<T> t_in;  // [batch, n_in]
    Matrix<T> w;     // [n_in, n_out]
    NeuronParams<T> params;
    int regime;
    int64_t batch;
    int64_t n_in;
    int64_t n_out;
    T* t_out;              // contiguous [batch, n_out]
    T* scratch_times;      // [batch, n_in], or null: the block's shared memory
    int* scratch_index;    // [batch, n_in], or null: the block's shared memory
    int64_t shared_bytes;  // dynamic shared memory per block (0 with scratch buffers)
};

template <typename T>
ForwardArgs<T> forward_args(const snn_cuda::MatrixArg& t_in, const snn_cuda::MatrixArg& w,
                            int64_t batch, int64_t n_in, int64_t n_out,
                            const snn_cuda::NeuronArg& neurons, int regime, uintptr_t t_out,
                            uintptr_t scratch_times, uintptr_t scratch_index) {
    if ((scratch_times == 0) != (scratch_index == 0)) {
        throw std::invalid_argument("snnsim cuda backend: pass both scratch buffers or neither");
    }
    const int64_t shared =
        scratch_times ? 0 : n_in * static_cast<int64_t>(sizeof(T) + sizeof(int));
    if (batch > 0 && n_out > 0 && shared > snn_cuda::MAX_SHARED_BYTES) {  // else no launch
        throw std::runtime_error("snnsim cuda backend: forward needs scratch buffers for " +
                                 std::to_string(n_in) + " inputs (a sort buffer of " +
                                 std::to_string(shared) + " bytes, more than the " +
                                 std::to_string(snn_cuda::MAX_SHARED_BYTES) +
                                 " of shared memory a block may use)");
    }
    if (batch > 0x7fffffff) {
        throw std::runtime_error("snnsim cuda backend: batch of " + std::to_string(batch) +
                                 " samples is more than the 2147483647 blocks of one launch");
    }
    return {as_matrix<T>(t_in),
            as_matrix<T>(w),
            as_params<T>(neurons),
            regime,
            batch,
            n_in,
            n_out,
            reinterpret_cast<T*>(t_out),
            reinterpret_cast<T*>(scratch_times),
            reinterpret_cast<int*>(scratch_index),
            shared};
}

// Phase 1 for thread `thread` of `n_threads` in the block of sample b: writes each of its
// finite inputs to its rank in the sorted times/index buffers; returns how many it placed.
template <typename T>
SNN_HD int64_t forward_rank_inputs(const ForwardArgs<T>& a, int64_t b, int64_t thread,
                                   int64_t n_threads, T* times, int* index) {
    const T* row = a.t_in.data + b * a.t_in.stride0;
    const int64_t stride = a.t_in.stride1;
    int64_t placed = 0;
    for (int64_t i = thread; i < a.n_in; i += n_threads) {
        const T t = row[i * stride];
        if (!(t < infinity<T>())) {
            continue;  // silent (+inf); NaN too, so that it cannot take a rank
        }
        int64_t rank = 0;
        for (int64_t k = 0; k < a.n_in; ++k) {
            const T u = row[k * stride];
            rank += (u < t) || (u == t && k < i);
        }
        times[rank] = t;
        index[rank] = static_cast<int>(i);
        ++placed;
    }
    return placed;
}

// Phase 2 for thread `thread` of `n_threads` in the block of sample b: the first spike times
// of output neurons thread, thread + n_threads, ... from the n_finite sorted inputs.
template <typename T>
SNN_HD void forward_walk_outputs(const ForwardArgs<T>& a, int64_t b, int64_t thread,
                                 int64_t n_threads, int64_t n_finite, const T* times,
                                 const int* index) {
    for (int64_t j = thread; j < a.n_out; j += n_threads) {
        a.t_out[b * a.n_out + j] = first_spike_time(
            n_finite, times, index, a.w.data + j * a.w.stride1, a.w.stride0,
            a.params.tau_mem(j), a.params.tau_syn(j), a.params.threshold_drive(j), a.regime);
    }
}

// --- backward -----------------------------------------------------------------------------

template <typename T>
struct BackwardArgs {
    Matrix<T> t_in;        // [batch, n_in]
    Matrix<T> w;           // [n_in, n_out]
    Matrix<T> t_out;       // [batch, n_out]
    Matrix<T> grad_t_out;  // [batch, n_out]
    NeuronParams<T> params;
    T max_dw_norm;  // < 0: no clipping
    int64_t batch;
    int64_t n_in;
    int64_t n_out;
    int64_t n_chunks;        // of the batch, for the weight gradient
    int64_t rows_per_chunk;  // samples per chunk (the last may have fewer)
    T* scale_weight;         // workspace, contiguous [batch, n_out]
    T* scale_input;          // workspace, contiguous [batch, n_out]
    T* weight_partials;      // contiguous [n_chunks, n_in, n_out]
    T* grad_t_in;            // contiguous [batch, n_in]
};

template <typename T>
BackwardArgs<T> backward_args(const snn_cuda::MatrixArg& t_in, const snn_cuda::MatrixArg& w,
                              const snn_cuda::MatrixArg& t_out,
                              const snn_cuda::MatrixArg& grad_t_out, int64_t batch, int64_t n_in,
                              int64_t n_out, const snn_cuda::NeuronArg& neurons,
                              double max_dw_norm, uintptr_t scale, int64_t n_chunks,
                              uintptr_t weight_partials, uintptr_t grad_t_in) {
    if (n_chunks < 1 || n_chunks > 65535) {
        throw std::invalid_argument("snnsim cuda backend: n_chunks must be in 1..65535, got " +
                                    std::to_string(n_chunks));
    }
    T* scale_weight = reinterpret_cast<T*>(scale);
    return {as_matrix<T>(t_in),
            as_matrix<T>(w),
            as_matrix<T>(t_out),
            as_matrix<T>(grad_t_out),
            as_params<T>(neurons),
            static_cast<T>(max_dw_norm),
            batch,
            n_in,
            n_out,
            n_chunks,
            (batch + n_chunks - 1) / n_chunks,
            scale_weight,
            scale_weight + batch * n_out,
            reinterpret_cast<T*>(weight_partials),
            reinterpret_cast<T*>(grad_t_in)};
}

// Pass 1, thread idx in [0, batch * n_out): the gradient scales of (sample b, neuron j).
template <typename T>
SNN_HD void backward_gradient_scale(const BackwardArgs<T>& a, int64_t idx) {
    const int64_t b = idx / a.n_out;
    const int64_t j = idx % a.n_out;
    const GradientScale<T> scale = gradient_scale(
        a.t_in.data + b * a.t_in.stride0, a.t_in.stride1, a.w.data + j * a.w.stride1,
        a.w.stride0, a.n_in, a.t_out(b, j), a.grad_t_out(b, j), a.params.tau_mem(j),
        a.params.tau_syn(j), a.params.threshold_drive(j), a.max_dw_norm);
    a.scale_weight[idx] = scale.weight;
    a.scale_input[idx] = scale.input;
}

// Pass 2, thread idx in [0, n_in * n_out) of batch chunk `chunk`: the chunk's part of
// d loss / d w[i, j] = sum_b scale_weight[b, j] K(t*_bj - t_bi) over causal inputs.
template <typename T>
SNN_HD void backward_weight_partial(const BackwardArgs<T>& a, int64_t idx, int64_t chunk) {
    const int64_t i = idx / a.n_out;
    const int64_t j = idx % a.n_out;
    const T tau_m = a.params.tau_mem(j);
    const T tau_s = a.params.tau_syn(j);
    const int64_t first = chunk * a.rows_per_chunk;
    const int64_t last = first + a.rows_per_chunk < a.batch ? first + a.rows_per_chunk : a.batch;
    T sum = T(0);
    for (int64_t b = first; b < last; ++b) {
        const T scale = a.scale_weight[b * a.n_out + j];
        if (scale == T(0)) {
            continue;
        }
        const T t_star = a.t_out(b, j);
        const T t_i = a.t_in(b, i);
        if (t_i < t_star) {
            T kernel, synaptic;
            psp(t_star - t_i, tau_m, tau_s, kernel, synaptic);
            sum += scale * kernel;
        }
    }
    a.weight_partials[chunk * a.n_in * a.n_out + idx] = sum;
}

// Pass 3, thread idx in [0, batch * n_in): d loss / d t[b, i] =
// sum_j scale_input[b, j] w[i, j] (e^{-(t*-t_i)/tau_s} - K(t* - t_i)) over neurons it reaches.
template <typename T>
SNN_HD void backward_input_gradient(const BackwardArgs<T>& a, int64_t idx) {
    const int64_t b = idx / a.n_in;
    const int64_t i = idx % a.n_in;
    const T t_i = a.t_in(b, i);
    T sum = T(0);
    for (int64_t j = 0; j < a.n_out; ++j) {
        const T scale = a.scale_input[b * a.n_out + j];
        if (scale == T(0)) {
            continue;
        }
        const T t_star = a.t_out(b, j);
        if (t_i < t_star) {
            T kernel, synaptic;
            psp(t_star - t_i, a.params.tau_mem(j), a.params.tau_syn(j), kernel, synaptic);
            sum += scale * a.w(i, j) * (synaptic - kernel);
        }
    }
    a.grad_t_in[idx] = sum;
}

}  // namespace snn

namespace snn_cuda {

// Runs a kernel's launch grid: defined, for float and double, by kernels.cu on the GPU and
// by kernels_emulated.cpp on the host. kernels.cpp calls them with checked arguments and a
// non-empty problem only.
template <typename T>
void run_forward(const LaunchArg& launch, const snn::ForwardArgs<T>& a);
template <typename T>
void run_backward(const LaunchArg& launch, const snn::BackwardArgs<T>& a);
template <typename T>
void run_lambertw(const LaunchArg& launch, const T* x, T* out, int64_t n);

// The explicit instantiations each implementation provides, for T = float and double.
#define SNN_INSTANTIATE_RUNS(T)                                                    \
    template void run_forward<T>(const LaunchArg&, const snn::ForwardArgs<T>&);   \
    template void run_backward<T>(const LaunchArg&, const snn::BackwardArgs<T>&); \
    template void run_lambertw<T>(const LaunchArg&, const T*, T*, int64_t);

}  // namespace snn_cuda
