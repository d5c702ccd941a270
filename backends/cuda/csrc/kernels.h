// Host-side entry points of the kernels, free of CUDA and torch types so that the
// pybind11 bindings (bind_kernels.cpp) compile with the plain C++ compiler. Defined in
// kernels.cpp on top of two implementations of the launches: kernels.cu on the GPU
// (`_snnsim_cuda`), and kernels_emulated.cpp, the same launch grid run serially on the
// host (`_snnsim_host`, where every pointer is a host address and `device` and `stream`
// are ignored).
//
// Pointers are device addresses passed as integers (torch's Tensor.data_ptr()), strides
// are in elements, `stream` is a cudaStream_t as an integer (torch's
// Stream.cuda_stream) and `bits` (32 or 64) selects float or double. Every function
// launches asynchronously on `stream` and throws std::runtime_error on a CUDA error.
#pragma once

#include <cstdint>
#include <string>

namespace snn_cuda {

struct MatrixArg {
    std::uintptr_t data;
    std::int64_t stride0;
    std::int64_t stride1;
};

// Per-neuron arrays on the device (0: use the shared value instead).
struct NeuronArg {
    std::uintptr_t tau_m;
    std::uintptr_t tau_s;
    std::uintptr_t drive;
    double tau_m_value;
    double tau_s_value;
    double drive_value;
};

struct LaunchArg {
    int bits;
    int device;
    std::uintptr_t stream;
};

// Dynamic shared memory a forward block may use for its sorted inputs: the 48 KiB a block
// gets without opting in, less 1 KiB for the kernel's static shared variables (the launch
// fails if static + dynamic exceed 48 KiB). A layer with more inputs than fit passes
// global scratch buffers instead.
constexpr std::int64_t MAX_SHARED_BYTES = 47 * 1024;

// t_out[b, j] (contiguous [batch, n_out]); scratch_times/scratch_index ([batch, n_in],
// 0 when the inputs fit in shared memory).
void forward(const LaunchArg& launch, const MatrixArg& t_in, const MatrixArg& w,
             std::int64_t batch, std::int64_t n_in, std::int64_t n_out, const NeuronArg& neurons,
             int regime, std::uintptr_t t_out, std::uintptr_t scratch_times,
             std::uintptr_t scratch_index);

// grad_t_in (contiguous [batch, n_in]) and weight_partials (contiguous [n_chunks, n_in,
// n_out], to be summed over the first axis); scale is workspace for 2 * batch * n_out values.
void backward(const LaunchArg& launch, const MatrixArg& t_in, const MatrixArg& w,
              const MatrixArg& t_out, const MatrixArg& grad_t_out, std::int64_t batch,
              std::int64_t n_in, std::int64_t n_out, const NeuronArg& neurons,
              double max_dw_norm, std::uintptr_t scale, std::int64_t n_chunks,
              std::uintptr_t weight_partials, std::uintptr_t grad_t_in);

// out[i] = W0(x[i]) for n contiguous values.
void lambertw(const LaunchArg& launch, std::uintptr_t x, std::uintptr_t out, std::int64_t n);

// "cuda" or "host emulation".
const char* implementation();

// "" when the CUDA runtime sees at least one device, else why not.
std::string runtime_problem();

}  // namespace snn_cuda
