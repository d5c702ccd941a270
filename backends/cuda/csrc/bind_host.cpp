// Host build of spike_math.h: `backends.cuda._snnsim_host`.
//
// The same per-neuron functions the CUDA kernels run, called from plain loops on numpy
// arrays, so that machines without a GPU test the kernels' arithmetic against the
// `torch` and `cpu` backends. Not a backend itself: serial and unoptimised.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "spike_math.h"

namespace py = pybind11;

namespace {

using ParamArray = py::array_t<double, py::array::c_style | py::array::forcecast>;

template <typename T>
snn::Matrix<T> matrix(const py::array& a, const char* name) {
    if (a.ndim() != 2) {
        throw py::value_error(std::string(name) + " must be 2-D, got " +
                              std::to_string(a.ndim()) + " dimensions");
    }
    const auto item = static_cast<py::ssize_t>(sizeof(T));
    if (a.strides(0) % item != 0 || a.strides(1) % item != 0) {
        throw py::value_error(std::string(name) + " has strides that are not whole elements");
    }
    return {static_cast<const T*>(a.data()), a.strides(0) / item, a.strides(1) / item};
}

// Per-neuron parameters in precision T; `storage` keeps the converted arrays alive.
template <typename T>
snn::NeuronParams<T> neuron_params(const ParamArray& tau_m, const ParamArray& tau_s,
                                   const ParamArray& drive, py::ssize_t n_out,
                                   std::vector<std::vector<T>>& storage) {
    const ParamArray* arrays[3] = {&tau_m, &tau_s, &drive};
    const T* pointers[3];
    T values[3];
    storage.resize(3);
    for (int p = 0; p < 3; ++p) {
        const ParamArray& a = *arrays[p];
        if (a.ndim() != 1 || (a.size() != 1 && a.size() != n_out)) {
            throw py::value_error("neuron parameter arrays must be 1-D of length 1 or " +
                                  std::to_string(n_out) + ", got size " +
                                  std::to_string(a.size()));
        }
        storage[p].assign(a.data(), a.data() + a.size());
        values[p] = storage[p][0];
        pointers[p] = a.size() == 1 ? nullptr : storage[p].data();
    }
    return {pointers[0], pointers[1], pointers[2], values[0], values[1], values[2]};
}

template <typename T>
py::array forward_typed(const py::array& t_in, const py::array& w, const ParamArray& tau_m,
                        const ParamArray& tau_s, const ParamArray& drive, int regime) {
    const snn::Matrix<T> t = matrix<T>(t_in, "t_in");
    const snn::Matrix<T> weights = matrix<T>(w, "w");
    const py::ssize_t batch = t_in.shape(0);
    const py::ssize_t n_in = t_in.shape(1);
    const py::ssize_t n_out = w.shape(1);
    if (w.shape(0) != n_in) {
        throw py::value_error("w must have t_in.shape[1] rows");
    }
    std::vector<std::vector<T>> storage;
    const snn::NeuronParams<T> params = neuron_params<T>(tau_m, tau_s, drive, n_out, storage);
    py::array_t<T> t_out({batch, n_out});
    T* out = t_out.mutable_data();
    {
        py::gil_scoped_release release;
        std::vector<int> index(static_cast<std::size_t>(n_in));
        std::vector<T> times(static_cast<std::size_t>(n_in));
        for (py::ssize_t b = 0; b < batch; ++b) {
            std::int64_t n_finite = 0;
            for (py::ssize_t i = 0; i < n_in; ++i) {
                if (t(b, i) != snn::infinity<T>()) {
                    index[n_finite++] = static_cast<int>(i);
                }
            }
            std::stable_sort(index.begin(), index.begin() + n_finite,
                             [&](int x, int y) { return t(b, x) < t(b, y); });
            for (std::int64_t k = 0; k < n_finite; ++k) {
                times[k] = t(b, index[k]);
            }
            for (py::ssize_t j = 0; j < n_out; ++j) {
                out[b * n_out + j] = snn::first_spike_time(
                    n_finite, times.data(), index.data(), weights.data + j * weights.stride1,
                    weights.stride0, params.tau_mem(j), params.tau_syn(j),
                    params.threshold_drive(j), regime);
            }
        }
    }
    return t_out;
}

template <typename T>
py::tuple backward_typed(const py::array& t_in, const py::array& w, const py::array& t_out,
                         const py::array& grad_t_out, const ParamArray& tau_m,
                         const ParamArray& tau_s, const ParamArray& drive, double max_dw_norm) {
    const snn::Matrix<T> t = matrix<T>(t_in, "t_in");
    const snn::Matrix<T> weights = matrix<T>(w, "w");
    const snn::Matrix<T> spikes = matrix<T>(t_out, "t_out");
    const snn::Matrix<T> grad = matrix<T>(grad_t_out, "grad_t_out");
    const py::ssize_t batch = t_in.shape(0);
    const py::ssize_t n_in = t_in.shape(1);
    const py::ssize_t n_out = w.shape(1);
    if (w.shape(0) != n_in || t_out.shape(0) != batch || t_out.shape(1) != n_out ||
        grad_t_out.shape(0) != batch || grad_t_out.shape(1) != n_out) {
        throw py::value_error("backward expects t_in[B, N], w[N, M], t_out[B, M], "
                              "grad_t_out[B, M]");
    }
    std::vector<std::vector<T>> storage;
    const snn::NeuronParams<T> params = neuron_params<T>(tau_m, tau_s, drive, n_out, storage);
    py::array_t<T> grad_t_in({batch, n_in});
    py::array_t<T> grad_w({n_in, n_out});
    T* gt = grad_t_in.mutable_data();
    T* gw = grad_w.mutable_data();
    {
        py::gil_scoped_release release;
        std::fill(gt, gt + batch * n_in, T(0));
        std::fill(gw, gw + n_in * n_out, T(0));
        for (py::ssize_t b = 0; b < batch; ++b) {
            for (py::ssize_t j = 0; j < n_out; ++j) {
                const T tau_m_j = params.tau_mem(j);
                const T tau_s_j = params.tau_syn(j);
                const T t_star = spikes(b, j);
                const snn::GradientScale<T> scale = snn::gradient_scale(
                    t.data + b * t.stride0, t.stride1, weights.data + j * weights.stride1,
                    weights.stride0, n_in, t_star, grad(b, j), tau_m_j, tau_s_j,
                    params.threshold_drive(j), static_cast<T>(max_dw_norm));
                if (scale.weight == T(0) && scale.input == T(0)) {
                    continue;
                }
                for (py::ssize_t i = 0; i < n_in; ++i) {
                    const T t_i = t(b, i);
                    if (t_i < t_star) {
                        T kernel, synaptic;
                        snn::psp(t_star - t_i, tau_m_j, tau_s_j, kernel, synaptic);
                        gw[i * n_out + j] += scale.weight * kernel;
                        gt[b * n_in + i] += scale.input * weights(i, j) * (synaptic - kernel);
                    }
                }
            }
        }
    }
    return py::make_tuple(grad_t_in, grad_w);
}

template <typename T>
py::array lambertw_typed(const py::array& x) {
    auto in = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(x);
    py::array_t<T> out(std::vector<py::ssize_t>(in.shape(), in.shape() + in.ndim()));
    const T* src = in.data();
    T* dst = out.mutable_data();
    for (py::ssize_t k = 0; k < in.size(); ++k) {
        dst[k] = snn::lambertw0(src[k]);
    }
    return out;
}

// 64 or 32 for a float64 or float32 array, else TypeError.
int float_bits(const py::array& a, const char* name) {
    if (a.dtype().is(py::dtype::of<double>())) {
        return 64;
    }
    if (a.dtype().is(py::dtype::of<float>())) {
        return 32;
    }
    throw py::type_error(std::string(name) + " must be float32 or float64, got " +
                         std::string(py::str(a.dtype())));
}

int common_bits(std::initializer_list<std::pair<const py::array*, const char*>> arrays) {
    int bits = 0;
    for (const auto& [array, name] : arrays) {
        const int b = float_bits(*array, name);
        if (bits != 0 && b != bits) {
            throw py::type_error("all arrays must share one dtype (float32 or float64)");
        }
        bits = b;
    }
    return bits;
}

}  // namespace

PYBIND11_MODULE(_snnsim_host, m) {
    m.doc() = "Host build of the snnsim CUDA kernels' per-neuron math, for testing without a GPU.";
    m.attr("EQUAL") = snn::EQUAL;
    m.attr("DOUBLE") = snn::DOUBLE;
    m.attr("GENERAL") = snn::GENERAL;
    m.attr("MIN_SLOPE_FRACTION") = snn::MIN_SLOPE_FRACTION;
    m.attr("NEWTON_MAX_ITERATIONS") = snn::NEWTON_MAX_ITERATIONS;
    m.def(
        "forward",
        [](const py::array& t_in, const py::array& w, const ParamArray& tau_m,
           const ParamArray& tau_s, const ParamArray& drive, int regime) {
            if (common_bits({{&t_in, "t_in"}, {&w, "w"}}) == 64) {
                return forward_typed<double>(t_in, w, tau_m, tau_s, drive, regime);
            }
            return forward_typed<float>(t_in, w, tau_m, tau_s, drive, regime);
        },
        py::arg("t_in"), py::arg("w"), py::arg("tau_m"), py::arg("tau_s"), py::arg("drive"),
        py::arg("regime"),
        "First spike times t_out[B, M] (+inf: none) of t_in[B, N], w[N, M]; computed in their "
        "dtype. tau_m, tau_s, drive: length 1 or M.");
    m.def(
        "backward",
        [](const py::array& t_in, const py::array& w, const py::array& t_out,
           const py::array& grad_t_out, const ParamArray& tau_m, const ParamArray& tau_s,
           const ParamArray& drive, double max_dw_norm) {
            if (common_bits({{&t_in, "t_in"}, {&w, "w"}, {&t_out, "t_out"},
                             {&grad_t_out, "grad_t_out"}}) == 64) {
                return backward_typed<double>(t_in, w, t_out, grad_t_out, tau_m, tau_s, drive,
                                              max_dw_norm);
            }
            return backward_typed<float>(t_in, w, t_out, grad_t_out, tau_m, tau_s, drive,
                                         max_dw_norm);
        },
        py::arg("t_in"), py::arg("w"), py::arg("t_out"), py::arg("grad_t_out"), py::arg("tau_m"),
        py::arg("tau_s"), py::arg("drive"), py::arg("max_dw_norm"),
        "(grad_t_in[B, N], grad_w[N, M]) for the loss gradient grad_t_out; max_dw_norm < 0: "
        "no clipping.");
    m.def(
        "lambertw",
        [](const py::array& x) {
            if (float_bits(x, "x") == 64) {
                return lambertw_typed<double>(x);
            }
            return lambertw_typed<float>(x);
        },
        py::arg("x"), "W0(x) elementwise (float32 or float64), NaN below -1/e.");
}
