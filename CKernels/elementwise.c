/* Element-wise kernels: unary maps, activations and their derivatives, broadcast binary ops and
 * strided copies. Each output element depends on its own inputs only, so any split is race-free. */
#include "nn_internal.h"
#include <math.h>

static inline float sigmoidf(float x) {
    /* Two branches so that exp never overflows: large |x| saturates to exactly 0 or 1. */
    if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

static inline float unary_apply(nn_unary_op op, float v) {
    switch (op) {
    case NN_UNARY_NEG: return -v;
    case NN_UNARY_EXP: return expf(v);
    case NN_UNARY_LOG: return logf(v);
    case NN_UNARY_SQRT: return sqrtf(v);
    case NN_UNARY_ABS: return fabsf(v);
    case NN_UNARY_SQUARE: return v * v;
    case NN_UNARY_RELU: return v > 0.0f || isnan(v) ? v : 0.0f; /* relu(NaN) = NaN, as in PyTorch */
    case NN_UNARY_SIGMOID: return sigmoidf(v);
    case NN_UNARY_TANH: return tanhf(v);
    case NN_UNARY_SIGN: return (float)((v > 0.0f) - (v < 0.0f));
    case NN_UNARY_RECIPROCAL: return 1.0f / v;
    }
    return v;
}

/* y, x are [n]. */
void nn_unary(nn_unary_op op, float *y, const float *x, size_t n) {
    NN_PARALLEL_FOR_IF(n >= NN_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) y[i] = unary_apply(op, x[i]);
}

/* y, x are [n]. */
void nn_leaky_relu_forward(float *y, const float *x, float slope, size_t n) {
    NN_PARALLEL_FOR_IF(n >= NN_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : slope * x[i];
}

/* y, x are [n]. */
void nn_pow_scalar(float *y, const float *x, float p, size_t n) {
    NN_PARALLEL_FOR_IF(n >= NN_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) y[i] = powf(x[i], p);
}

/* y, x are [n]. */
void nn_clamp(float *y, const float *x, float lo, float hi, size_t n) {
    NN_PARALLEL_FOR_IF(n >= NN_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) y[i] = isnan(x[i]) ? x[i] : fminf(fmaxf(x[i], lo), hi); /* fmaxf drops a NaN */
}

/* y, x are [n]. */
void nn_affine(float *y, const float *x, float a, float b, size_t n) {
    NN_PARALLEL_FOR_IF(n >= NN_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) y[i] = a * x[i] + b;
}

static inline float activation_grad(nn_activation act, float s, float slope) {
    switch (act) {
    case NN_ACT_RELU: return s > 0.0f || isnan(s) ? 1.0f : 0.0f; /* PyTorch passes dy where x is NaN */
    case NN_ACT_LEAKY_RELU: return s > 0.0f ? 1.0f : slope;
    case NN_ACT_SIGMOID: return s * (1.0f - s);
    case NN_ACT_TANH: return 1.0f - s * s;
    }
    return 0.0f;
}

/* dx, dy, saved are [n]. */
void nn_activation_backward(nn_activation act, float *dx, const float *dy, const float *saved,
                            float slope, size_t n) {
    NN_PARALLEL_FOR_IF(n >= NN_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) dx[i] = dy[i] * activation_grad(act, saved[i], slope);
}

static inline float binary_apply(nn_binary_op op, float a, float b) {
    switch (op) {
    case NN_BIN_ADD: return a + b;
    case NN_BIN_SUB: return a - b;
    case NN_BIN_MUL: return a * b;
    case NN_BIN_DIV: return a / b;
    /* NaN propagates, as torch.maximum / torch.minimum do. */
    case NN_BIN_MAX: return (a != a || b != b) ? a + b : (a > b ? a : b);
    case NN_BIN_MIN: return (a != a || b != b) ? a + b : (a < b ? a : b);
    case NN_BIN_POW: return powf(a, b);
    }
    return 0.0f;
}

/* Offset of row `row` (an index over all axes but the last) in a strided tensor. */
static inline long row_offset(size_t row, const long *strides, const long *shape, int ndim) {
    long off = 0;
    for (int d = ndim - 2; d >= 0; d--) {
        long idx = (long)(row % (size_t)shape[d]);
        row /= (size_t)shape[d];
        off += idx * strides[d];
    }
    return off;
}

static size_t count_rows(const long *shape, int ndim) {
    size_t rows = 1;
    for (int d = 0; d < ndim - 1; d++) rows *= (size_t)shape[d];
    return rows;
}

/* out is contiguous [shape]; a and b are read through their strides (0 on broadcast axes). */
void nn_binary_broadcast(nn_binary_op op, float *out, const float *a, const long *a_strides,
                         const float *b, const long *b_strides, const long *shape, int ndim) {
    assert(ndim >= 1);
    size_t rows = count_rows(shape, ndim);
    long cols = shape[ndim - 1], sa = a_strides[ndim - 1], sb = b_strides[ndim - 1];
    NN_PARALLEL_FOR_IF(rows * (size_t)cols >= NN_PARALLEL_MIN)
    for (size_t r = 0; r < rows; r++) {
        const float *ar = a + row_offset(r, a_strides, shape, ndim);
        const float *br = b + row_offset(r, b_strides, shape, ndim);
        float *o = out + r * (size_t)cols;
        if (sa == 1 && sb == 1) {
            for (long j = 0; j < cols; j++) o[j] = binary_apply(op, ar[j], br[j]);
        } else if (sa == 1 && sb == 0) {
            float bv = br[0];
            for (long j = 0; j < cols; j++) o[j] = binary_apply(op, ar[j], bv);
        } else if (sa == 0 && sb == 1) {
            float av = ar[0];
            for (long j = 0; j < cols; j++) o[j] = binary_apply(op, av, br[j]);
        } else {
            for (long j = 0; j < cols; j++) o[j] = binary_apply(op, ar[j * sa], br[j * sb]);
        }
    }
}

/* out is contiguous [shape]; x is read through x_strides. */
void nn_gather_strided(float *out, const float *x, const long *x_strides, const long *shape, int ndim) {
    assert(ndim >= 1);
    size_t rows = count_rows(shape, ndim);
    long cols = shape[ndim - 1], sx = x_strides[ndim - 1];
    NN_PARALLEL_FOR_IF(rows * (size_t)cols >= NN_PARALLEL_MIN)
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + row_offset(r, x_strides, shape, ndim);
        float *o = out + r * (size_t)cols;
        for (long j = 0; j < cols; j++) o[j] = xr[j * sx];
    }
}

/* x is contiguous [shape]; y is written through y_strides, which address distinct elements. */
void nn_scatter_add_strided(float *y, const long *y_strides, const float *x, const long *shape, int ndim) {
    assert(ndim >= 1);
    size_t rows = count_rows(shape, ndim);
    long cols = shape[ndim - 1], sy = y_strides[ndim - 1];
    NN_PARALLEL_FOR_IF(rows * (size_t)cols >= NN_PARALLEL_MIN)
    for (size_t r = 0; r < rows; r++) {
        float *yr = y + row_offset(r, y_strides, shape, ndim);
        const float *xr = x + r * (size_t)cols;
        for (long j = 0; j < cols; j++) yr[j * sy] += xr[j];
    }
}
