// The entry points of kernels.h, shared by both builds: check the arguments, pick the
// precision and hand a non-empty problem to the implementation's run_* (kernels.cu on the
// GPU, kernels_emulated.cpp on the host).
#include "kernel_threads.h"

namespace snn_cuda {

void forward(const LaunchArg& launch, const MatrixArg& t_in, const MatrixArg& w,
             std::int64_t batch, std::int64_t n_in, std::int64_t n_out, const NeuronArg& neurons,
             int regime, std::uintptr_t t_out, std::uintptr_t scratch_times,
             std::uintptr_t scratch_index) {
    snn::with_precision(launch.bits, [&](auto zero) {
        using T = decltype(zero);
        const snn::ForwardArgs<T> a = snn::forward_args<T>(
            t_in, w, batch, n_in, n_out, neurons, regime, t_out, scratch_times, scratch_index);
        if (batch > 0 && n_out > 0) {
            run_forward<T>(launch, a);
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
        if (batch > 0 && n_in > 0 && n_out > 0) {
            run_backward<T>(launch, a);
        }
    });
}

void lambertw(const LaunchArg& launch, std::uintptr_t x, std::uintptr_t out, std::int64_t n) {
    snn::with_precision(launch.bits, [&](auto zero) {
        using T = decltype(zero);
        if (n > 0) {
            run_lambertw<T>(launch, reinterpret_cast<const T*>(x), reinterpret_cast<T*>(out), n);
        }
    });
}

}  // namespace snn_cuda
