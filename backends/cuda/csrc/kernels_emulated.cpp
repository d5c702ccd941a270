// Host implementation of the run_* launches of kernel_threads.h: the launch grid of
// kernels.cu run serially on the CPU.
//
// Every kernel's blocks and threads are visited in loops, with the same thread bodies, the
// same threads per block and the same batch chunks as on the GPU; a forward block's shared
// memory is a host buffer and its barrier is the end of the loop over the block's threads.
// So the tests on machines without a GPU exercise everything the GPU runs but the hardware
// itself. Serial and unoptimised: a test fixture, not a backend. `device` and `stream` of
// the launch are ignored; every pointer is a host address.
#include <vector>

#include "kernel_threads.h"

namespace snn_cuda {

const char* implementation() { return "host emulation"; }

std::string runtime_problem() { return ""; }

template <typename T>
void run_forward(const LaunchArg&, const snn::ForwardArgs<T>& a) {
    const int threads = snn::forward_block_threads(a.n_in, a.n_out);
    std::vector<T> shared_times(a.scratch_times ? 0 : static_cast<std::size_t>(a.n_in));
    std::vector<int> shared_index(a.scratch_times ? 0 : static_cast<std::size_t>(a.n_in));
    for (int64_t b = 0; b < a.batch; ++b) {
        T* times = a.scratch_times ? a.scratch_times + b * a.n_in : shared_times.data();
        int* index = a.scratch_times ? a.scratch_index + b * a.n_in : shared_index.data();
        int64_t n_finite = 0;
        for (int thread = 0; thread < threads; ++thread) {
            n_finite += snn::forward_rank_inputs(a, b, thread, threads, times, index);
        }
        for (int thread = 0; thread < threads; ++thread) {
            snn::forward_walk_outputs(a, b, thread, threads, n_finite, times, index);
        }
    }
}

template <typename T>
void run_backward(const LaunchArg&, const snn::BackwardArgs<T>& a) {
    // Each pass runs to completion before the next, as kernels on one stream do.
    for (int64_t idx = 0; idx < a.batch * a.n_out; ++idx) {
        snn::backward_gradient_scale(a, idx);
    }
    for (int64_t chunk = 0; chunk < a.n_chunks; ++chunk) {
        for (int64_t idx = 0; idx < a.n_in * a.n_out; ++idx) {
            snn::backward_weight_partial(a, idx, chunk);
        }
    }
    for (int64_t idx = 0; idx < a.batch * a.n_in; ++idx) {
        snn::backward_input_gradient(a, idx);
    }
}

template <typename T>
void run_lambertw(const LaunchArg&, const T* x, T* out, int64_t n) {
    for (int64_t idx = 0; idx < n; ++idx) {
        out[idx] = snn::lambertw0(x[idx]);
    }
}

SNN_INSTANTIATE_RUNS(float)
SNN_INSTANTIATE_RUNS(double)

}  // namespace snn_cuda
