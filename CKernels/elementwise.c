/* Element-wise kernels: unary maps, activations and their derivatives, broadcast binary ops and
 * strided copies. Each output element depends on its own inputs only, so any split is race-free.
 * Built per instruction level (CKernels/README.md): the loops are plain contiguous loops, each op's
 * specialised by a switch outside them, so the compiler vectorises them at every level's width. */
#ifndef NN_LEVEL /* ---- common to every level ---- */
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

static inline float activation_grad(nn_activation act, float s, float slope) {
    switch (act) {
    case NN_ACT_RELU: return s > 0.0f || isnan(s) ? 1.0f : 0.0f; /* PyTorch passes dy where x is NaN */
    case NN_ACT_LEAKY_RELU: return s > 0.0f ? 1.0f : slope;
    case NN_ACT_SIGMOID: return s * (1.0f - s);
    case NN_ACT_TANH: return 1.0f - s * s;
    }
    return 0.0f;
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

/* Elements per parallel item of the flat maps: big enough that a call per item costs nothing, small
 * enough that NN_PARALLEL_MIN elements still split. The strided kernels group rows into items of about
 * as many elements. */
#define CHUNK 4096

static inline size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* Items of the strided kernels: rows per item, and how many items. */
static inline size_t rows_per_item(long cols) { return cols >= CHUNK ? 1 : (size_t)(CHUNK / (cols > 0 ? cols : 1)); }

#define NN_LEVEL_SOURCE "elementwise.c"
#include "levels.h"

/* y, x are [n]. */
void nn_unary(nn_unary_op op, float *y, const float *x, size_t n) { NN_DISPATCH(unary)(op, y, x, n); }

/* y, x are [n]. */
void nn_leaky_relu_forward(float *y, const float *x, float slope, size_t n) {
    NN_DISPATCH(leaky_relu)(y, x, slope, n);
}

/* y, x are [n]. */
void nn_pow_scalar(float *y, const float *x, float p, size_t n) { NN_DISPATCH(pow_scalar)(y, x, p, n); }

/* y, x are [n]. */
void nn_clamp(float *y, const float *x, float lo, float hi, size_t n) { NN_DISPATCH(clamp)(y, x, lo, hi, n); }

/* y, x are [n]. */
void nn_affine(float *y, const float *x, float a, float b, size_t n) { NN_DISPATCH(affine)(y, x, a, b, n); }

/* dx, dy, saved are [n]. */
void nn_activation_backward(nn_activation act, float *dx, const float *dy, const float *saved,
                            float slope, size_t n) {
    NN_DISPATCH(activation_backward)(act, dx, dy, saved, slope, n);
}

/* out is contiguous [shape]; a and b are read through their strides (0 on broadcast axes). */
void nn_binary_broadcast(nn_binary_op op, float *out, const float *a, const long *a_strides,
                         const float *b, const long *b_strides, const long *shape, int ndim) {
    assert(ndim >= 1);
    NN_DISPATCH(binary_broadcast)(op, out, a, a_strides, b, b_strides, shape, ndim);
}

/* out is contiguous [shape]; x is read through x_strides. */
void nn_gather_strided(float *out, const float *x, const long *x_strides, const long *shape, int ndim) {
    assert(ndim >= 1);
    NN_DISPATCH(gather_strided)(out, x, x_strides, shape, ndim);
}

/* x is contiguous [shape]; y is written through y_strides, which address distinct elements. */
void nn_scatter_add_strided(float *y, const long *y_strides, const float *x, const long *shape, int ndim) {
    assert(ndim >= 1);
    NN_DISPATCH(scatter_add_strided)(y, y_strides, x, shape, ndim);
}

#else /* ---- per instruction level (levels.h compiles this part once per level) ---- */

/* y, x [n]: one loop per op, unary_apply inlined with the op a constant. */
static void NN_L(unary_chunk)(nn_unary_op op, float *y, const float *x, size_t n) {
#define UNARY_CASE(o) case o: for (size_t i = 0; i < n; i++) y[i] = unary_apply(o, x[i]); break;
    switch (op) {
    UNARY_CASE(NN_UNARY_NEG) UNARY_CASE(NN_UNARY_EXP) UNARY_CASE(NN_UNARY_LOG) UNARY_CASE(NN_UNARY_SQRT)
    UNARY_CASE(NN_UNARY_ABS) UNARY_CASE(NN_UNARY_SQUARE) UNARY_CASE(NN_UNARY_RELU) UNARY_CASE(NN_UNARY_SIGMOID)
    UNARY_CASE(NN_UNARY_TANH) UNARY_CASE(NN_UNARY_SIGN) UNARY_CASE(NN_UNARY_RECIPROCAL)
    }
#undef UNARY_CASE
}

static void NN_L(unary)(nn_unary_op op, float *y, const float *x, size_t n) {
    const size_t items = (n + CHUNK - 1) / CHUNK;
    NN_PARALLEL_FOR_IF(n >= NN_PARALLEL_MIN)
    for (size_t it = 0; it < items; it++)
        NN_L(unary_chunk)(op, y + it * CHUNK, x + it * CHUNK, min_size(CHUNK, n - it * CHUNK));
}

static void NN_L(leaky_relu_chunk)(float *y, const float *x, float slope, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : slope * x[i];
}

static void NN_L(leaky_relu)(float *y, const float *x, float slope, size_t n) {
    const size_t items = (n + CHUNK - 1) / CHUNK;
    NN_PARALLEL_FOR_IF(n >= NN_PARALLEL_MIN)
    for (size_t it = 0; it < items; it++)
        NN_L(leaky_relu_chunk)(y + it * CHUNK, x + it * CHUNK, slope, min_size(CHUNK, n - it * CHUNK));
}

static void NN_L(pow_scalar_chunk)(float *y, const float *x, float p, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = powf(x[i], p);
}

static void NN_L(pow_scalar)(float *y, const float *x, float p, size_t n) {
    const size_t items = (n + CHUNK - 1) / CHUNK;
    NN_PARALLEL_FOR_IF(n >= NN_PARALLEL_MIN)
    for (size_t it = 0; it < items; it++)
        NN_L(pow_scalar_chunk)(y + it * CHUNK, x + it * CHUNK, p, min_size(CHUNK, n - it * CHUNK));
}

static void NN_L(clamp_chunk)(float *y, const float *x, float lo, float hi, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = isnan(x[i]) ? x[i] : fminf(fmaxf(x[i], lo), hi); /* fmaxf drops a NaN */
}

static void NN_L(clamp)(float *y, const float *x, float lo, float hi, size_t n) {
    const size_t items = (n + CHUNK - 1) / CHUNK;
    NN_PARALLEL_FOR_IF(n >= NN_PARALLEL_MIN)
    for (size_t it = 0; it < items; it++)
        NN_L(clamp_chunk)(y + it * CHUNK, x + it * CHUNK, lo, hi, min_size(CHUNK, n - it * CHUNK));
}

static void NN_L(affine_chunk)(float *y, const float *x, float a, float b, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = a * x[i] + b;
}

static void NN_L(affine)(float *y, const float *x, float a, float b, size_t n) {
    const size_t items = (n + CHUNK - 1) / CHUNK;
    NN_PARALLEL_FOR_IF(n >= NN_PARALLEL_MIN)
    for (size_t it = 0; it < items; it++)
        NN_L(affine_chunk)(y + it * CHUNK, x + it * CHUNK, a, b, min_size(CHUNK, n - it * CHUNK));
}

static void NN_L(activation_backward_chunk)(nn_activation act, float *dx, const float *dy, const float *saved,
                                            float slope, size_t n) {
/* relu selects (dx = 0 where x <= 0 even if dy is NaN, as PyTorch's threshold_backward); the others multiply. */
#define ACT_CASE(a) case a: for (size_t i = 0; i < n; i++) { float d = activation_grad(a, saved[i], slope); \
        dx[i] = a == NN_ACT_RELU && d == 0.0f ? 0.0f : dy[i] * d; } break;
    switch (act) { ACT_CASE(NN_ACT_RELU) ACT_CASE(NN_ACT_LEAKY_RELU) ACT_CASE(NN_ACT_SIGMOID) ACT_CASE(NN_ACT_TANH) }
#undef ACT_CASE
}

static void NN_L(activation_backward)(nn_activation act, float *dx, const float *dy, const float *saved,
                                      float slope, size_t n) {
    const size_t items = (n + CHUNK - 1) / CHUNK;
    NN_PARALLEL_FOR_IF(n >= NN_PARALLEL_MIN)
    for (size_t it = 0; it < items; it++)
        NN_L(activation_backward_chunk)(act, dx + it * CHUNK, dy + it * CHUNK, saved + it * CHUNK, slope,
                                        min_size(CHUNK, n - it * CHUNK));
}

/* Rows [r0, r1) of out (rows, cols) = a op b, a and b read with their strides. The contiguous and
 * broadcast-scalar cases get a loop per op (binary_apply inlined with the op a constant). */
static void NN_L(binary_rows)(nn_binary_op op, float *out, const float *a, const long *a_strides, const float *b,
                              const long *b_strides, const long *shape, int ndim, size_t r0, size_t r1) {
    const long cols = shape[ndim - 1], sa = a_strides[ndim - 1], sb = b_strides[ndim - 1];
    for (size_t r = r0; r < r1; r++) {
        const float *ar = a + row_offset(r, a_strides, shape, ndim);
        const float *br = b + row_offset(r, b_strides, shape, ndim);
        float *o = out + r * (size_t)cols;
#define BINARY_LOOPS(op_)                                                                          \
    if (sa == 1 && sb == 1) {                                                                      \
        for (long j = 0; j < cols; j++) o[j] = binary_apply(op_, ar[j], br[j]);                    \
    } else if (sa == 1 && sb == 0) {                                                               \
        const float bv = br[0];                                                                    \
        for (long j = 0; j < cols; j++) o[j] = binary_apply(op_, ar[j], bv);                       \
    } else if (sa == 0 && sb == 1) {                                                               \
        const float av = ar[0];                                                                    \
        for (long j = 0; j < cols; j++) o[j] = binary_apply(op_, av, br[j]);                       \
    } else {                                                                                       \
        for (long j = 0; j < cols; j++) o[j] = binary_apply(op_, ar[j * sa], br[j * sb]);          \
    }                                                                                              \
    break;
        switch (op) {
        case NN_BIN_ADD: BINARY_LOOPS(NN_BIN_ADD)
        case NN_BIN_SUB: BINARY_LOOPS(NN_BIN_SUB)
        case NN_BIN_MUL: BINARY_LOOPS(NN_BIN_MUL)
        case NN_BIN_DIV: BINARY_LOOPS(NN_BIN_DIV)
        case NN_BIN_MAX: BINARY_LOOPS(NN_BIN_MAX)
        case NN_BIN_MIN: BINARY_LOOPS(NN_BIN_MIN)
        case NN_BIN_POW: BINARY_LOOPS(NN_BIN_POW)
        }
#undef BINARY_LOOPS
    }
}

static void NN_L(binary_broadcast)(nn_binary_op op, float *out, const float *a, const long *a_strides,
                                   const float *b, const long *b_strides, const long *shape, int ndim) {
    const size_t rows = count_rows(shape, ndim), cols = (size_t)shape[ndim - 1], per = rows_per_item(cols);
    const size_t items = (rows + per - 1) / per;
    NN_PARALLEL_FOR_IF(rows * cols >= NN_PARALLEL_MIN)
    for (size_t it = 0; it < items; it++)
        NN_L(binary_rows)(op, out, a, a_strides, b, b_strides, shape, ndim, it * per, min_size(rows, it * per + per));
}

/* Rows [r0, r1) of out (rows, cols) from x read with x_strides. */
static void NN_L(gather_rows)(float *out, const float *x, const long *x_strides, const long *shape, int ndim,
                              size_t r0, size_t r1) {
    const long cols = shape[ndim - 1], sx = x_strides[ndim - 1];
    for (size_t r = r0; r < r1; r++) {
        const float *xr = x + row_offset(r, x_strides, shape, ndim);
        float *o = out + r * (size_t)cols;
        for (long j = 0; j < cols; j++) o[j] = xr[j * sx];
    }
}

static void NN_L(gather_strided)(float *out, const float *x, const long *x_strides, const long *shape, int ndim) {
    const size_t rows = count_rows(shape, ndim), cols = (size_t)shape[ndim - 1], per = rows_per_item(cols);
    const size_t items = (rows + per - 1) / per;
    NN_PARALLEL_FOR_IF(rows * cols >= NN_PARALLEL_MIN)
    for (size_t it = 0; it < items; it++)
        NN_L(gather_rows)(out, x, x_strides, shape, ndim, it * per, min_size(rows, it * per + per));
}

/* Rows [r0, r1) of x (rows, cols) added into y at y_strides. */
static void NN_L(scatter_add_rows)(float *y, const long *y_strides, const float *x, const long *shape, int ndim,
                                   size_t r0, size_t r1) {
    const long cols = shape[ndim - 1], sy = y_strides[ndim - 1];
    for (size_t r = r0; r < r1; r++) {
        float *yr = y + row_offset(r, y_strides, shape, ndim);
        const float *xr = x + r * (size_t)cols;
        for (long j = 0; j < cols; j++) yr[j * sy] += xr[j];
    }
}

static void NN_L(scatter_add_strided)(float *y, const long *y_strides, const float *x, const long *shape, int ndim) {
    const size_t rows = count_rows(shape, ndim), cols = (size_t)shape[ndim - 1], per = rows_per_item(cols);
    const size_t items = (rows + per - 1) / per;
    NN_PARALLEL_FOR_IF(rows * cols >= NN_PARALLEL_MIN)
    for (size_t it = 0; it < items; it++)
        NN_L(scatter_add_rows)(y, y_strides, x, shape, ndim, it * per, min_size(rows, it * per + per));
}

#endif
