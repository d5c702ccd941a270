// pybind11 face of kernels.h, compiled twice (setup.py): linked with kernels.cu as
// `backends.cuda._snnsim_cuda`, and with kernels_emulated.cpp as `backends.cuda._snnsim_host`;
// SNN_MODULE_NAME is the module's name.
//
// Takes pointers, strides and the stream as integers (from torch on the Python side), so
// neither torch headers nor a CUDA build of torch are needed to compile it.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <tuple>

#include "kernels.h"
#include "spike_math.h"

namespace py = pybind11;

namespace {

using Matrix = std::tuple<std::uintptr_t, std::int64_t, std::int64_t>;
using Neurons = std::tuple<std::uintptr_t, std::uintptr_t, std::uintptr_t, double, double, double>;
using Launch = std::tuple<int, int, std::uintptr_t>;

snn_cuda::MatrixArg matrix(const Matrix& m) {
    return {std::get<0>(m), std::get<1>(m), std::get<2>(m)};
}

snn_cuda::NeuronArg neurons(const Neurons& n) {
    return {std::get<0>(n), std::get<1>(n), std::get<2>(n),
            std::get<3>(n), std::get<4>(n), std::get<5>(n)};
}

snn_cuda::LaunchArg launch(const Launch& l) {
    return {std::get<0>(l), std::get<1>(l), std::get<2>(l)};
}

}  // namespace

#ifndef SNN_MODULE_NAME
#error "compile with -DSNN_MODULE_NAME=<module name>"
#endif

PYBIND11_MODULE(SNN_MODULE_NAME, m) {
    m.doc() = "Kernels of the snnsim `cuda` backend (use backends.cuda, not this module).";
    m.attr("IMPLEMENTATION") = snn_cuda::implementation();
    m.attr("MAX_SHARED_BYTES") = snn_cuda::MAX_SHARED_BYTES;
    m.attr("EQUAL") = snn::EQUAL;
    m.attr("DOUBLE") = snn::DOUBLE;
    m.attr("GENERAL") = snn::GENERAL;
    m.attr("MIN_SLOPE_FRACTION") = snn::MIN_SLOPE_FRACTION;
    m.attr("NEWTON_MAX_ITERATIONS") = snn::NEWTON_MAX_ITERATIONS;
    m.def(
        "forward",
        [](const Launch& l, const Matrix& t_in, const Matrix& w, std::int64_t batch,
           std::int64_t n_in, std::int64_t n_out, const Neurons& n, int regime,
           std::uintptr_t t_out, std::uintptr_t scratch_times, std::uintptr_t scratch_index) {
            py::gil_scoped_release release;
            snn_cuda::forward(launch(l), matrix(t_in), matrix(w), batch, n_in, n_out, neurons(n),
                              regime, t_out, scratch_times, scratch_index);
        },
        "forward(launch, t_in, w, batch, n_in, n_out, neurons, regime, t_out, scratch_times, "
        "scratch_index): launch = (bits, device, stream), a matrix = (pointer, stride0, "
        "stride1), neurons = (tau_m, tau_s, drive pointers or 0, and their shared values)");
    m.def(
        "backward",
        [](const Launch& l, const Matrix& t_in, const Matrix& w, const Matrix& t_out,
           const Matrix& grad_t_out, std::int64_t batch, std::int64_t n_in, std::int64_t n_out,
           const Neurons& n, double max_dw_norm, std::uintptr_t scale, std::int64_t n_chunks,
           std::uintptr_t weight_partials, std::uintptr_t grad_t_in) {
            py::gil_scoped_release release;
            snn_cuda::backward(launch(l), matrix(t_in), matrix(w), matrix(t_out),
                               matrix(grad_t_out), batch, n_in, n_out, neurons(n), max_dw_norm,
                               scale, n_chunks, weight_partials, grad_t_in);
        },
        "backward(launch, t_in, w, t_out, grad_t_out, batch, n_in, n_out, neurons, "
        "max_dw_norm, scale, n_chunks, weight_partials, grad_t_in); max_dw_norm < 0: off");
    m.def(
        "lambertw",
        [](const Launch& l, std::uintptr_t x, std::uintptr_t out, std::int64_t n) {
            py::gil_scoped_release release;
            snn_cuda::lambertw(launch(l), x, out, n);
        },
        "lambertw(launch, x, out, n): out[i] = W0(x[i]) for n contiguous values");
    m.def("runtime_problem", &snn_cuda::runtime_problem,
          "'' when the CUDA runtime sees a device, else the reason it does not");
}
