// GPU implementation of the run_* launches of kernel_threads.h: the thread bodies as CUDA
// kernels (kernels_emulated.cpp runs the same launch grid on the host).
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "kernel_threads.h"

namespace snn_cuda {
namespace {

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

template <typename T>
__global__ void forward_kernel(const snn::ForwardArgs<T> a) {
    extern __shared__ __align__(16) unsigned char shared_bytes[];  // times, then index
    __shared__ int n_finite;
    const int64_t b = blockIdx.x;
    T* times = a.scratch_times ? a.scratch_times + b * a.n_in : reinterpret_cast<T*>(shared_bytes);
    int* index = a.scratch_times ? a.scratch_index + b * a.n_in : reinterpret_cast<int*>(times + a.n_in);
    if (threadIdx.x == 0) {
        n_finite = 0;
    }
    __syncthreads();
    const int64_t placed = snn::forward_rank_inputs(a, b, threadIdx.x, blockDim.x, times, index);
    if (placed > 0) {
        atomicAdd(&n_finite, static_cast<int>(placed));
    }
    __syncthreads();
    snn::forward_walk_outputs(a, b, threadIdx.x, blockDim.x, static_cast<int64_t>(n_finite),
                              times, index);
}

template <typename T>
__global__ void gradient_scale_kernel(const snn::BackwardArgs<T> a) {
    const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx < a.batch * a.n_out) {
        snn::backward_gradient_scale(a, idx);
    }
}

template <typename T>
__global__ void weight_gradient_kernel(const snn::BackwardArgs<T> a) {
    const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx < a.n_in * a.n_out) {
        snn::backward_weight_partial(a, idx, blockIdx.y);
    }
}

template <typename T>
__global__ void input_gradient_kernel(const snn::BackwardArgs<T> a) {
    const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx < a.batch * a.n_in) {
        snn::backward_input_gradient(a, idx);
    }
}

template <typename T>
__global__ void lambertw_kernel(const T* x, T* out, int64_t n) {
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < n;
         idx += stride) {
        out[idx] = snn::lambertw0(x[idx]);
    }
}

cudaStream_t as_stream(const LaunchArg& launch) {
    return reinterpret_cast<cudaStream_t>(launch.stream);
}

}  // namespace

const char* implementation() { return "cuda"; }

template <typename T>
void run_forward(const LaunchArg& launch, const snn::ForwardArgs<T>& a) {
    DeviceGuard guard(launch.device);
    forward_kernel<T><<<static_cast<unsigned int>(a.batch),
                        snn::forward_block_threads(a.n_in, a.n_out), a.shared_bytes,
                        as_stream(launch)>>>(a);
    check(cudaGetLastError(), "forward kernel launch");
}

template <typename T>
void run_backward(const LaunchArg& launch, const snn::BackwardArgs<T>& a) {
    DeviceGuard guard(launch.device);
    const cudaStream_t stream = as_stream(launch);
    constexpr int threads = snn::THREADS_PER_BLOCK;
    gradient_scale_kernel<T><<<snn::blocks_for(a.batch * a.n_out, threads), threads, 0,
                               stream>>>(a);
    check(cudaGetLastError(), "gradient scale kernel launch");
    const dim3 weight_grid(snn::blocks_for(a.n_in * a.n_out, threads),
                           static_cast<unsigned int>(a.n_chunks));
    weight_gradient_kernel<T><<<weight_grid, threads, 0, stream>>>(a);
    check(cudaGetLastError(), "weight gradient kernel launch");
    input_gradient_kernel<T><<<snn::blocks_for(a.batch * a.n_in, threads), threads, 0,
                               stream>>>(a);
    check(cudaGetLastError(), "input gradient kernel launch");
}

template <typename T>
void run_lambertw(const LaunchArg& launch, const T* x, T* out, int64_t n) {
    DeviceGuard guard(launch.device);
    constexpr int threads = snn::THREADS_PER_BLOCK;
    lambertw_kernel<T><<<snn::blocks_for(n < (1 << 24) ? n : (1 << 24), threads), threads, 0,
                         as_stream(launch)>>>(x, out, n);
    check(cudaGetLastError(), "lambertw kernel launch");
}

SNN_INSTANTIATE_RUNS(float)
SNN_INSTANTIATE_RUNS(double)

std::string runtime_problem() {
    int count = 0;
    const cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
        cudaGetLastError();  // clear the error so later calls start clean
        return cudaGetErrorString(status);
    }
    if (count == 0) {
        return "the CUDA runtime sees no device";
    }
    return "";
}

}  // namespace snn_cuda
