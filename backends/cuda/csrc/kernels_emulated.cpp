// Host implementation of kernels.h: the launch grid of kernels.cu run serially on the CPU.
//
// Every kernel's blocks and threads are visited in loops, with the same thread bodies
// (kernel_threads.h), the same threads per block and the same batch chunks as on the GPU;
// a forward block's shared memory is a host buffer and its barrier is the end of the loop
// over the block's threads. So the tests on machines without a GPU exercise everything
// the GPU runs but the hardware itself. Serial and unoptimised: a test fixture, not a backend.
#include <vector>

#include "kernel_threads.h"

namespace snn_cuda {

const char* implementation() { return "host emulation"; }

void forward(const LaunchArg& launch, const MatrixArg& t_in, const MatrixArg& w,
             std::int64_t batch, std::int64_t n_in, std::int64_t n_out, const NeuronArg& neurons,
             int regime, std::uintptr_t t_out, std::uintptr_t scratch_times,
             std::uintptr_t scratch_index) {
    snn::with_precision(launch.bits, [&](auto zero) {
        using T = decltype(zero);
        const snn::ForwardArgs<T> a = snn::forward_args<T>(
            t_in, w, batch, n_in, n_out, neurons, regime, t_out, scratch_times, scratch_index);
        if (batch == 0 || n_out == 0) {
            return;
        }
        const int threads = snn::forward_block_threads(n_in, n_out);
        std::vector<T> shared_times(a.scratch_times ? 0 : static_cast<std::size_t>(n_in));
        std::vector<int> shared_index(a.scratch_times ? 0 : static_cast<std::size_t>(n_in));
        for (std::int64_t b = 0; b < batch; ++b) {
            T* times = a.scratch_times ? a.scratch_times + b * n_in : shared_times.data();
            int* index = a.scratch_times ? a.scratch_index + b * n_in : shared_index.data();
            std::int64_t n_finite = 0;
            for (int thread = 0; thread < threads; ++thread) {
                n_finite += snn::forward_rank_inputs(a, b, thread, threads, times, index);
            }
            for (int thread = 0; thread < threads; ++thread) {
                snn::forward_walk_outputs(a, b, thread, threads, n_finite, times, index);
            }
        }
    });
}

void backward(const LaunchArg& launch, const MatrixArg& t_in, const MatrixArg& w,
              const MatrixArg& t_out, const MatrixArg& grad_t_out, std::int64_t batch,
              std::int64_t n_in, std::int64_t n_out, const NeuronArg& neurons,
              double max_dw_norm, std::uintptr_t scale, std::int64_t n_chunks,
              std::uintptr_t weight_partials, std::uintptr_t grad_t_in) {
    snn::with_precision(launch.bits, [&](auto zero) {
        using T = decltype(zero);
        const snn::BackwardArgs<T> a = snn::backward_args<T>(
            t_in, w, t_out, grad_t_out, batch, n_in, n_out, neurons, max_dw_norm, scale, n_chunks,
            weight_partials, grad_t_in);
        if (batch == 0 || n_in == 0 || n_out == 0) {
            return;
        }
        // Each pass runs to completion before the next, as kernels on one stream do.
        for (std::int64_t idx = 0; idx < batch * n_out; ++idx) {
            snn::backward_gradient_scale(a, idx);
        }
        for (std::int64_t chunk = 0; chunk < n_chunks; ++chunk) {
            for (std::int64_t idx = 0; idx < n_in * n_out; ++idx) {
                snn::backward_weight_partial(a, idx, chunk);
            }
        }
        for (std::int64_t idx = 0; idx < batch * n_in; ++idx) {
            snn::backward_input_gradient(a, idx);
        }
    });
}

void lambertw(const LaunchArg& launch, std::uintptr_t x, std::uintptr_t out, std::int64_t n) {
    snn::with_precision(launch.bits, [&](auto zero) {
        using T = decltype(zero);
        const T* in = reinterpret_cast<const T*>(x);
        T* result = reinterpret_cast<T*>(out);
        for (std::int64_t idx = 0; idx < n; ++idx) {
            result[idx] = snn::lambertw0(in[idx]);
        }
    });
}

std::string runtime_problem() { return ""; }

}  // namespace snn_cuda
