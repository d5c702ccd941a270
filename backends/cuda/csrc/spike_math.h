// The per-neuron math of a LIF layer with exponential synapses, written once for the
// kernels' thread bodies (kernel_threads.h), which run on the GPU (kernels.cu) and, for
// the tests, on the host (kernels_emulated.cpp).
//
// The equations are those of backends/torch_backend.py (its module docstring):
// the membrane in units of g_L, V'(t) = sum_i w_i K(t - t_i), must reach the
// drive c = g_L (theta - E_L). Walking the sorted inputs, the state just after
// input k is (D, U) = (V'(t_k), I(t_k)); over s in [0, t_{k+1} - t_k]
//
//     V'(t_k + s) = D e^{-s/tau_m} + U K(s).
//
// A crossing is solved only where V' reaches c at the end of the interval or at
// its interior peak: Lambert W0 for tau_m = tau_s, a quadratic in e^{-s/tau_m}
// for tau_m = 2 tau_s, safeguarded Newton otherwise. Gradients follow from the
// implicit function theorem at V'(t*) = c with the slope floored at
// MIN_SLOPE_FRACTION * c / tau_m.
//
// Every branch and every max/min mirrors backends/cpu.py (Python's max(a, b) keeps a
// unless b > a, so NaNs propagate the same way), so that these kernels agree with the
// cpu and torch backends to rounding; except the general-regime root, found as in
// backends/torch_backend.py (safeguarded Newton from the end of the bracket), which the
// cpu backend reaches (to rounding) in fewer steps by Halley iterations from a Lambert W
// start (backends/cpu.py, _general_crossing).
#pragma once

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define SNN_HD __host__ __device__ __forceinline__
#else
#define SNN_HD inline
#endif

namespace snn {

constexpr int EQUAL = 0;    // tau_m == tau_s
constexpr int DOUBLE = 1;   // tau_m == 2 tau_s
constexpr int GENERAL = 2;  // any other ratio
constexpr int NEWTON_MAX_ITERATIONS = 100;
constexpr double MIN_SLOPE_FRACTION = 1e-9;

// Overloads that pick the float or double routine on host and device alike.
SNN_HD double m_exp(double x) { return exp(x); }
SNN_HD float m_exp(float x) { return expf(x); }
SNN_HD double m_expm1(double x) { return expm1(x); }
SNN_HD float m_expm1(float x) { return expm1f(x); }
SNN_HD double m_log(double x) { return log(x); }
SNN_HD float m_log(float x) { return logf(x); }
SNN_HD double m_log1p(double x) { return log1p(x); }
SNN_HD float m_log1p(float x) { return log1pf(x); }
SNN_HD double m_sqrt(double x) { return sqrt(x); }
SNN_HD float m_sqrt(float x) { return sqrtf(x); }
SNN_HD double m_abs(double x) { return fabs(x); }
SNN_HD float m_abs(float x) { return fabsf(x); }

// Python's max and min: the first argument wins ties and NaN comparisons.
template <typename T>
SNN_HD T py_max(T a, T b) { return b > a ? b : a; }
template <typename T>
SNN_HD T py_min(T a, T b) { return b < a ? b : a; }

template <typename T>
SNN_HD T infinity() { return static_cast<T>(INFINITY); }
template <typename T>
SNN_HD T not_a_number() { return static_cast<T>(NAN); }

// Precision-dependent constants.
template <typename T>
struct Precision;

template <>
struct Precision<double> {
    SNN_HD static double inv_e_hi() { return 0.36787944117144233; }  // 1/e rounded
    SNN_HD static double inv_e_lo() { return -1.2428753672788363e-17; }  // 1/e - inv_e_hi
    SNN_HD static double newton_tolerance() { return 4e-16; }  // relative step that stops Newton
    SNN_HD static double tiny() { return 1e-300; }
};

template <>
struct Precision<float> {
    SNN_HD static float inv_e_hi() { return 0.36787945f; }
    SNN_HD static float inv_e_lo() { return -9.149755e-09f; }
    SNN_HD static float newton_tolerance() { return 2.4e-7f; }
    SNN_HD static float tiny() { return 1e-30f; }
};

// A read-only matrix with element strides (torch and numpy views need not be contiguous).
template <typename T>
struct Matrix {
    const T* data;
    int64_t stride0;
    int64_t stride1;
    SNN_HD T operator()(int64_t row, int64_t column) const {
        return data[row * stride0 + column * stride1];
    }
};

// Per-neuron parameters: an array with one value per neuron, or (null) one shared value.
template <typename T>
struct NeuronParams {
    const T* tau_m;
    const T* tau_s;
    const T* drive;
    T tau_m_value;
    T tau_s_value;
    T drive_value;
    SNN_HD T tau_mem(int64_t j) const { return tau_m ? tau_m[j] : tau_m_value; }
    SNN_HD T tau_syn(int64_t j) const { return tau_s ? tau_s[j] : tau_s_value; }
    SNN_HD T threshold_drive(int64_t j) const { return drive ? drive[j] : drive_value; }
};

// W0(x), the principal branch of Lambert W, as snnsim/lambertw.py::lambertw_scalar:
// the branch-point series near -1/e, else Winitzki's or the asymptotic guess, then
// Halley steps. NaN below -1/e.
template <typename T>
SNN_HD T lambertw0(T x) {
    if (x != x) {
        return x;
    }
    if (x == infinity<T>()) {
        return x;
    }
    const T inv_e_hi = Precision<T>::inv_e_hi();
    if (x < -inv_e_hi) {
        return not_a_number<T>();
    }
    const T p = m_sqrt(T(2.0 * 2.718281828459045) * py_max((x + inv_e_hi) + Precision<T>::inv_e_lo(),
                                                            T(0)));
    T w;
    if (p < T(1)) {
        // Corless et al. (1996), eq. 4.22, in Horner form.
        w = T(-5776369.0 / 1515591000.0);
        w = w * p + T(226287557.0 / 37623398400.0);
        w = w * p + T(-1963.0 / 204120.0);
        w = w * p + T(680863.0 / 43545600.0);
        w = w * p + T(-221.0 / 8505.0);
        w = w * p + T(769.0 / 17280.0);
        w = w * p + T(-43.0 / 540.0);
        w = w * p + T(11.0 / 72.0);
        w = w * p + T(-1.0 / 3.0);
        w = w * p + T(1);
        w = w * p + T(-1);
        if (p < T(0.05)) {
            return w;
        }
    } else if (x < T(3)) {
        const T lx = m_log1p(x);
        w = lx * (T(1) - m_log1p(lx) / (T(2) + lx));
    } else {
        const T l1 = m_log(x);
        const T l2 = m_log(l1);
        w = l1 - l2 + l2 / l1;
    }
    for (int step = 0; step < 4; ++step) {
        const T ew = m_exp(w);
        const T f = w * ew - x;
        if (f == T(0)) {
            break;
        }
        w = w - f / (ew * (w + T(1)) - (w + T(2)) * f / (T(2) * w + T(2)));
    }
    return w;
}

// PSP kernel K(s) and synaptic factor e^{-s/tau_s} for 0 <= s <= inf.
template <typename T>
SNN_HD void psp(T s, T tau_m, T tau_s, T& kernel, T& synaptic) {
    if (s == infinity<T>()) {
        kernel = T(0);
        synaptic = T(0);
        return;
    }
    synaptic = m_exp(-s / tau_s);
    const T a = m_abs(T(1) / tau_s - T(1) / tau_m);
    if (a == T(0)) {
        kernel = synaptic * s / tau_m;
        return;
    }
    kernel = m_exp(-s / py_max(tau_m, tau_s)) * (-m_expm1(-a * s) / a) / tau_m;
}

// V'(t_k + s) = D e^{-s/tau_m} + U K(s).
template <typename T>
SNN_HD T membrane(T D, T U, T s, T tau_m, T tau_s) {
    T kernel, synaptic;
    psp(s, tau_m, tau_s, kernel, synaptic);
    return D * m_exp(-s / tau_m) + U * kernel;
}

// Time s_p of the extremum of V'(t_k + s) (NaN where none).
template <typename T>
SNN_HD T peak_time(T D, T U, T tau_m, T tau_s, int regime) {
    if (regime == EQUAL) {
        return tau_m * (T(1) - D / U);
    }
    const T kappa = tau_s / (tau_m - tau_s);
    const T ratio = D / (kappa * U);
    if (!(ratio > T(-1))) {
        return not_a_number<T>();
    }
    return (m_log(tau_m / tau_s) - m_log1p(ratio)) / (T(1) / tau_s - T(1) / tau_m);
}

// Earliest s in [0, s_hi] with V'(t_k + s) = c, given V'(t_k) < c <= V'(t_k + s_hi).
template <typename T>
SNN_HD T solve_crossing(T D, T U, T s_hi, T tau_m, T tau_s, T c, int regime) {
    T s;
    if (regime == EQUAL) {
        const T z = py_min(py_max(-(c / U) * m_exp(-D / U), -Precision<T>::inv_e_hi()), T(0));
        s = tau_m * (-D / U - lambertw0(z));
    } else if (regime == DOUBLE) {
        const T p = D + U;
        const T root = (p + m_sqrt(py_max(p * p - T(4) * U * c, T(0)))) / (T(2) * U);
        s = -tau_m * m_log(root);
    } else {
        T lo = T(0);
        T hi = s_hi;
        s = s_hi;
        for (int iteration = 0; iteration < NEWTON_MAX_ITERATIONS; ++iteration) {
            const T v = membrane(D, U, s, tau_m, tau_s);
            const T f = v - c;
            if (f == T(0)) {
                break;
            }
            if (f < T(0)) {
                lo = s;
            } else {
                hi = s;
            }
            const T newton = s - f / ((U * m_exp(-s / tau_s) - v) / tau_m);
            const T next = (newton > lo && newton < hi) ? newton : T(0.5) * (lo + hi);
            const bool done =
                m_abs(next - s) <= Precision<T>::newton_tolerance() * py_max(m_abs(next),
                                                                              Precision<T>::tiny());
            s = next;
            if (done) {
                break;
            }
        }
    }
    return py_min(py_max(s, T(0)), s_hi);
}

// First spike time of one neuron: the event walk over the n_finite finite inputs of
// one sample, sorted by time (times[k] = t_in[index[k]]); w_column[i * w_stride] is the
// weight from input i. +inf when the membrane never reaches c.
template <typename T>
SNN_HD T first_spike_time(int64_t n_finite, const T* times, const int* index, const T* w_column,
                          int64_t w_stride, T tau_m, T tau_s, T c, int regime) {
    T D = T(0);
    T U = T(0);
    for (int64_t k = 0; k < n_finite; ++k) {
        const T t_k = times[k];
        U += w_column[index[k] * w_stride];
        const T t_next = k + 1 < n_finite ? times[k + 1] : infinity<T>();
        const T delta = t_next - t_k;
        if (delta == T(0)) {
            continue;  // tied inputs: add all their weights before looking at the interval
        }
        T kernel_delta, decay_s;
        psp(delta, tau_m, tau_s, kernel_delta, decay_s);
        const T d_end = D * m_exp(-delta / tau_m) + U * kernel_delta;
        const T u_end = U * decay_s;
        T s_hi = T(-1);
        if (d_end >= c) {
            s_hi = delta;
        } else if (U > D && u_end <= d_end) {
            const T s_peak = peak_time(D, U, tau_m, tau_s, regime);
            if (s_peak > T(0) && s_peak < delta && membrane(D, U, s_peak, tau_m, tau_s) >= c) {
                s_hi = s_peak;
            }
        }
        if (s_hi >= T(0)) {
            return t_k + solve_crossing(D, U, s_hi, tau_m, tau_s, c, regime);
        }
        D = d_end;
        U = u_end;
    }
    return infinity<T>();
}

// Scale factors of one (sample, neuron) pair's gradients: for a causal input i
// (t_i < t*), d loss/d w_i = weight * K(t* - t_i) and
// d loss/d t_i = input * w_i (e^{-(t*-t_i)/tau_s} - K(t* - t_i)).
template <typename T>
struct GradientScale {
    T weight;  // -g / slope, or 0 where max_dw_norm drops the weight gradient
    T input;   // g / (tau_m slope)
};

// The gradient scale of one (sample, neuron) pair from its spike time t_star and the loss
// gradient g: the slope V'_dot(t*) = (I(t*) - c) / tau_m, floored at
// MIN_SLOPE_FRACTION c / tau_m. Zero for a neuron without spike. max_dw_norm < 0: no clipping.
template <typename T>
SNN_HD GradientScale<T> gradient_scale(const T* t_row, int64_t t_stride, const T* w_column,
                                       int64_t w_stride, int64_t n_in, T t_star, T g, T tau_m,
                                       T tau_s, T c, T max_dw_norm) {
    GradientScale<T> scale = {T(0), T(0)};
    if (t_star == infinity<T>() || g == T(0)) {
        return scale;
    }
    T current = T(0);
    T largest_kernel = T(0);
    for (int64_t i = 0; i < n_in; ++i) {
        const T t_i = t_row[i * t_stride];
        if (t_i < t_star) {
            T kernel, synaptic;
            psp(t_star - t_i, tau_m, tau_s, kernel, synaptic);
            current += w_column[i * w_stride] * synaptic;
            largest_kernel = py_max(largest_kernel, kernel);
        }
    }
    const T slope = py_max((current - c) / tau_m, T(MIN_SLOPE_FRACTION) * c / tau_m);
    const bool keep_dw = !(max_dw_norm >= T(0) && largest_kernel * m_abs(g) / slope > max_dw_norm);
    scale.weight = keep_dw ? -g / slope : T(0);
    scale.input = g / (tau_m * slope);
    return scale;
}

}  // namespace snn
