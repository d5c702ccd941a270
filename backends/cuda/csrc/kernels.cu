// CUDA kernels of the `cuda` backend: the per-neuron math of spike_math.h laid out
// over the GPU.
//
// forward:  one block per sample. The block ranks the sample's finite input times
//           (rank = number of earlier inputs, ties broken by index, i.e. a stable
//           sort) into shared memory once; then each thread walks the sorted inputs
//           for one or more output neurons.
// backward: three passes, each a plain loop without atomics so that results are
//           reproducible: (1) one thread per (sample, neuron) computes the
//           gradient scale (slope, max_dw_norm), (2) one thread per (input, neuron)
//           sums the weight gradient over a chunk of the batch, (3) one thread per
//           (sample, input) sums the input-time gradient over the neurons.
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "kernels.h"
#include "spike_math.h"

namespace snn_cuda {
namespace {

constexpr int THREADS_PER_BLOCK = 256;

template <typename T>
snn::Matrix<T> as_matrix(const MatrixArg& m) {
    return {reinterpret_cast<const T*>(m.data), m.stride0, m.stride1};
}

template <typename T>
snn::NeuronParams<T> as_params(const NeuronArg& n) {
    return {reinterpret_cast<const T*>(n.tau_m),   reinterpret_cast<const T*>(n.tau_s),
            reinterpret_cast<const T*>(n.drive),   static_cast<T>(n.tau_m_value),
            static_cast<T>(n.tau_s_value),         static_cast<T>(n.drive_value)};
}

void check(cudaError_t status, const char* what) {
    if (status != cudaSuccess) {
        throw std::runtime_error(std::string("snnsim cuda backend: ") + what + ": " +
                                 cudaGetErrorString(status));
    }
}

// Makes `device` current for the launches of one call and restores the caller's device.
class DeviceGuard {
  public:
    explicit DeviceGuard(int device) {
        check(cudaGetDevice(&previous_), "cudaGetDevice");
        if (device != previous_) {
            check(cudaSetDevice(device), "cudaSetDevice");
            switched_ = true;
        }
    }
    ~DeviceGuard() {
        if (switched_) {
            cudaSetDevice(previous_);
        }
    }
    DeviceGuard(const DeviceGuard&) = delete;
    DeviceGuard& operator=(const DeviceGuard&) = delete;

  private:
    int previous_ = 0;
    bool switched_ = false;
};

unsigned int blocks_for(std::int64_t n, int threads) {
    const std::int64_t blocks = (n + threads - 1) / threads;
    if (blocks > 0x7fffffff) {
        throw std::runtime_error("snnsim cuda backend: problem too large for one launch");
    }
    return static_cast<unsigned int>(blocks);
}

template <typename T>
__global__ void forward_kernel(snn::Matrix<T> t_in, snn::Matrix<T> w,
                               snn::NeuronParams<T> params, int regime, std::int64_t n_in,
                               std::int64_t n_out, T* t_out, T* scratch_times,
                               int* scratch_index) {
    extern __shared__ unsigned char shared_bytes[];
    __shared__ int n_finite;
    const std::int64_t b = blockIdx.x;
    T* times;
    int* index;
    if (scratch_times != nullptr) {
        times = scratch_times + b * n_in;
        index = scratch_index + b * n_in;
    } else {
        times = reinterpret_cast<T*>(shared_bytes);
        index = reinterpret_cast<int*>(times + n_in);
    }
    if (threadIdx.x == 0) {
        n_finite = 0;
    }
    __syncthreads();
    const T* row = t_in.data + b * t_in.stride0;
    int my_finite = 0;
    for (std::int64_t i = threadIdx.x; i < n_in; i += blockDim.x) {
        const T t = row[i * t_in.stride1];
        if (t == snn::infinity<T>()) {
            continue;
        }
        std::int64_t rank = 0;
        for (std::int64_t k = 0; k < n_in; ++k) {
            const T u = row[k * t_in.stride1];
            rank += (u < t) || (u == t && k < i);
        }
        times[rank] = t;
        index[rank] = static_cast<int>(i);
        ++my_finite;
    }
    if (my_finite > 0) {
        atomicAdd(&n_finite, my_finite);
    }
    __syncthreads();
    for (std::int64_t j = threadIdx.x; j < n_out; j += blockDim.x) {
        t_out[b * n_out + j] = snn::first_spike_time(
            static_cast<std::int64_t>(n_finite), times, index, w.data + j * w.stride1, w.stride0,
            params.tau_mem(j), params.tau_syn(j), params.threshold_drive(j), regime);
    }
}

template <typename T>
__global__ void gradient_scale_kernel(snn::Matrix<T> t_in, snn::Matrix<T> w,
                                      snn::Matrix<T> t_out, snn::Matrix<T> grad_t_out,
                                      snn::NeuronParams<T> params, T max_dw_norm,
                                      std::int64_t batch, std::int64_t n_in, std::int64_t n_out,
                                      T* scale_weight, T* scale_input) {
    const std::int64_t idx = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= batch * n_out) {
        return;
    }
    const std::int64_t b = idx / n_out;
    const std::int64_t j = idx % n_out;
    const snn::GradientScale<T> scale = snn::gradient_scale(
        t_in.data + b * t_in.stride0, t_in.stride1, w.data + j * w.stride1, w.stride0, n_in,
        t_out(b, j), grad_t_out(b, j), params.tau_mem(j), params.tau_syn(j),
        params.threshold_drive(j), max_dw_norm);
    scale_weight[idx] = scale.weight;
    scale_input[idx] = scale.input;
}

template <typename T>
__global__ void weight_gradient_kernel(snn::Matrix<T> t_in, snn::Matrix<T> t_out,
                                       const T* scale_weight, snn::NeuronParams<T> params,
                                       std::int64_t batch, std::int64_t n_in, std::int64_t n_out,
                                       std::int64_t rows_per_chunk, T* partials) {
    const std::int64_t idx = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= n_in * n_out) {
        return;
    }
    const std::int64_t i = idx / n_out;
    const std::int64_t j = idx % n_out;
    const T tau_m = params.tau_mem(j);
    const T tau_s = params.tau_syn(j);
    const std::int64_t first = blockIdx.y * rows_per_chunk;
    const std::int64_t last = first + rows_per_chunk < batch ? first + rows_per_chunk : batch;
    T sum = T(0);
    for (std::int64_t b = first; b < last; ++b) {
        const T scale = scale_weight[b * n_out + j];
        if (scale == T(0)) {
            continue;
        }
        const T t_star = t_out(b, j);
        const T t_i = t_in(b, i);
        if (t_i < t_star) {
            T kernel, synaptic;
            snn::psp(t_star - t_i, tau_m, tau_s, kernel, synaptic);
            sum += scale * kernel;
        }
    }
    partials[blockIdx.y * n_in * n_out + idx] = sum;
}

template <typename T>
__global__ void input_gradient_kernel(snn::Matrix<T> t_in, snn::Matrix<T> w, snn::Matrix<T> t_out,
                                      const T* scale_input, snn::NeuronParams<T> params,
                                      std::int64_t batch, std::int64_t n_in, std::int64_t n_out,
                                      T* grad_t_in) {
    const std::int64_t idx = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= batch * n_in) {
        return;
    }
    const std::int64_t b = idx / n_in;
    const std::int64_t i = idx % n_in;
    const T t_i = t_in(b, i);
    T sum = T(0);
    for (std::int64_t j = 0; j < n_out; ++j) {
        const T scale = scale_input[b * n_out + j];
        if (scale == T(0)) {
            continue;
        }
        const T t_star = t_out(b, j);
        if (t_i < t_star) {
            T kernel, synaptic;
            snn::psp(t_star - t_i, params.tau_mem(j), params.tau_syn(j), kernel, synaptic);
            sum += scale * w(i, j) * (synaptic - kernel);
        }
    }
    grad_t_in[idx] = sum;
}

template <typename T>
__global__ void lambertw_kernel(const T* x, T* out, std::int64_t n) {
    const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
    for (std::int64_t idx = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
         idx < n; idx += stride) {
        out[idx] = snn::lambertw0(x[idx]);
    }
}

template <typename T>
void launch_forward(cudaStream_t stream, const MatrixArg& t_in, const MatrixArg& w,
                    std::int64_t batch, std::int64_t n_in, std::int64_t n_out,
                    const NeuronArg& neurons, int regime, std::uintptr_t t_out,
                    std::uintptr_t scratch_times, std::uintptr_t scratch_index) {
    const std::int64_t shared = scratch_times ? 0 : n_in * (std::int64_t)(sizeof(T) + sizeof(int));
    if (shared > MAX_SHARED_BYTES) {
        throw std::runtime_error("snnsim cuda backend: forward needs scratch buffers for " +
                                 std::to_string(n_in) + " inputs");
    }
    if (batch > 0x7fffffff) {
        throw std::runtime_error("snnsim cuda backend: batch too large for one launch");
    }
    // Enough threads for the neurons, and for the sort where there are many more inputs.
    std::int64_t wanted = n_out > n_in / 4 ? n_out : n_in / 4;
    wanted = (wanted + 31) / 32 * 32;
    const int threads = static_cast<int>(wanted < 32 ? 32 : (wanted > 256 ? 256 : wanted));
    forward_kernel<T><<<static_cast<unsigned int>(batch), threads, shared, stream>>>(
        as_matrix<T>(t_in), as_matrix<T>(w), as_params<T>(neurons), regime, n_in, n_out,
        reinterpret_cast<T*>(t_out), reinterpret_cast<T*>(scratch_times),
        reinterpret_cast<int*>(scratch_index));
    check(cudaGetLastError(), "forward kernel launch");
}

template <typename T>
void launch_backward(cudaStream_t stream, const MatrixArg& t_in, const MatrixArg& w,
                     const MatrixArg& t_out, const MatrixArg& grad_t_out, std::int64_t batch,
                     std::int64_t n_in, std::int64_t n_out, const NeuronArg& neurons,
                     double max_dw_norm, std::uintptr_t scale, std::int64_t n_chunks,
                     std::uintptr_t weight_partials, std::uintptr_t grad_t_in) {
    if (n_chunks < 1 || n_chunks > 65535) {
        throw std::runtime_error("snnsim cuda backend: n_chunks must be in 1..65535");
    }
    const snn::NeuronParams<T> params = as_params<T>(neurons);
    T* scale_weight = reinterpret_cast<T*>(scale);
    T* scale_input = scale_weight + batch * n_out;
    gradient_scale_kernel<T><<<blocks_for(batch * n_out, THREADS_PER_BLOCK), THREADS_PER_BLOCK,
                               0, stream>>>(
        as_matrix<T>(t_in), as_matrix<T>(w), as_matrix<T>(t_out), as_matrix<T>(grad_t_out), params,
        static_cast<T>(max_dw_norm), batch, n_in, n_out, scale_weight, scale_input);
    check(cudaGetLastError(), "gradient scale kernel launch");
    const std::int64_t rows_per_chunk = (batch + n_chunks - 1) / n_chunks;
    const dim3 weight_grid(blocks_for(n_in * n_out, THREADS_PER_BLOCK),
                           static_cast<unsigned int>(n_chunks));
    weight_gradient_kernel<T><<<weight_grid, THREADS_PER_BLOCK, 0, stream>>>(
        as_matrix<T>(t_in), as_matrix<T>(t_out), scale_weight, params, batch, n_in, n_out,
        rows_per_chunk, reinterpret_cast<T*>(weight_partials));
    check(cudaGetLastError(), "weight gradient kernel launch");
    input_gradient_kernel<T><<<blocks_for(batch * n_in, THREADS_PER_BLOCK), THREADS_PER_BLOCK, 0,
                               stream>>>(
        as_matrix<T>(t_in), as_matrix<T>(w), as_matrix<T>(t_out), scale_input, params, batch,
        n_in, n_out, reinterpret_cast<T*>(grad_t_in));
    check(cudaGetLastError(), "input gradient kernel launch");
}

template <typename T>
void launch_lambertw(cudaStream_t stream, std::uintptr_t x, std::uintptr_t out, std::int64_t n) {
    const unsigned int blocks = blocks_for(n < (1 << 24) ? n : (1 << 24), THREADS_PER_BLOCK);
    lambertw_kernel<T><<<blocks, THREADS_PER_BLOCK, 0, stream>>>(
        reinterpret_cast<const T*>(x), reinterpret_cast<T*>(out), n);
    check(cudaGetLastError(), "lambertw kernel launch");
}

void check_bits(int bits) {
    if (bits != 32 && bits != 64) {
        throw std::invalid_argument("snnsim cuda backend: bits must be 32 or 64, got " +
                                    std::to_string(bits));
    }
}

}  // namespace

void forward(const LaunchArg& launch, const MatrixArg& t_in, const MatrixArg& w,
             std::int64_t batch, std::int64_t n_in, std::int64_t n_out, const NeuronArg& neurons,
             int regime, std::uintptr_t t_out, std::uintptr_t scratch_times,
             std::uintptr_t scratch_index) {
    check_bits(launch.bits);
    if (batch == 0 || n_out == 0) {
        return;
    }
    DeviceGuard guard(launch.device);
    const cudaStream_t stream = reinterpret_cast<cudaStream_t>(launch.stream);
    if (launch.bits == 64) {
        launch_forward<double>(stream, t_in, w, batch, n_in, n_out, neurons, regime, t_out,
                               scratch_times, scratch_index);
    } else {
        launch_forward<float>(stream, t_in, w, batch, n_in, n_out, neurons, regime, t_out,
                              scratch_times, scratch_index);
    }
}

void backward(const LaunchArg& launch, const MatrixArg& t_in, const MatrixArg& w,
              const MatrixArg& t_out, const MatrixArg& grad_t_out, std::int64_t batch,
              std::int64_t n_in, std::int64_t n_out, const NeuronArg& neurons,
              double max_dw_norm, std::uintptr_t scale, std::int64_t n_chunks,
              std::uintptr_t weight_partials, std::uintptr_t grad_t_in) {
    check_bits(launch.bits);
    if (batch == 0 || n_in == 0 || n_out == 0) {
        return;
    }
    DeviceGuard guard(launch.device);
    const cudaStream_t stream = reinterpret_cast<cudaStream_t>(launch.stream);
    if (launch.bits == 64) {
        launch_backward<double>(stream, t_in, w, t_out, grad_t_out, batch, n_in, n_out, neurons,
                                max_dw_norm, scale, n_chunks, weight_partials, grad_t_in);
    } else {
        launch_backward<float>(stream, t_in, w, t_out, grad_t_out, batch, n_in, n_out, neurons,
                               max_dw_norm, scale, n_chunks, weight_partials, grad_t_in);
    }
}

void lambertw(const LaunchArg& launch, std::uintptr_t x, std::uintptr_t out, std::int64_t n) {
    check_bits(launch.bits);
    if (n == 0) {
        return;
    }
    DeviceGuard guard(launch.device);
    const cudaStream_t stream = reinterpret_cast<cudaStream_t>(launch.stream);
    if (launch.bits == 64) {
        launch_lambertw<double>(stream, x, out, n);
    } else {
        launch_lambertw<float>(stream, x, out, n);
    }
}

std::string runtime_problem() {
    int count = 0;
    const cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
        cudaGetLastError();  // clear the sticky-free error so later calls start clean
        return cudaGetErrorString(status);
    }
    if (count == 0) {
        return "the CUDA runtime sees no device";
    }
    return "";
}

}  // namespace snn_cuda
