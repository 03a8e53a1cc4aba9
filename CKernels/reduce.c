/* Reductions along one axis. A tensor reduced along axis d is seen as (outer, n, inner) with
 * outer = prod(shape[:d]), n = shape[d], inner = prod(shape[d+1:]). Sums accumulate in double in a
 * fixed order, so results do not depend on the thread count. Built per instruction level
 * (CKernels/README.md): each parallel loop runs one per-level call per row, block or line. */
#ifndef NN_LEVEL /* ---- common to every level ---- */
#include "nn_internal.h"
#include <math.h>

#define INNER_BLOCK 64

#define NN_LEVEL_SOURCE "reduce.c"
#include "levels.h"

/* out is (outer, inner); x is (outer, n, inner). */
void nn_reduce_sum(float *out, const float *x, size_t outer, size_t n, size_t inner) {
    NN_DISPATCH(reduce_sum)(out, x, outer, n, inner);
}

/* out, arg are (outer, inner); x is (outer, n, inner), n >= 1. The first maximum wins; NaN beats all. */
void nn_reduce_max(float *out, int64_t *arg, const float *x, size_t outer, size_t n, size_t inner) {
    assert(n >= 1);
    NN_DISPATCH(reduce_max)(out, arg, x, outer, n, inner);
}

/* dx is (outer, n, inner); dy is (outer, inner). */
void nn_broadcast_axis(float *dx, const float *dy, float scale, size_t outer, size_t n, size_t inner) {
    NN_DISPATCH(broadcast_axis)(dx, dy, scale, outer, n, inner);
}

/* x is [n]. */
double nn_sum_all(const float *x, size_t n) {
    double total = 0.0;
    for (size_t i = 0; i < n; i++) total += x[i];
    return total;
}

/* x is [n]. */
double nn_sum_squares(const float *x, size_t n) {
    double total = 0.0;
    for (size_t i = 0; i < n; i++) total += (double)x[i] * x[i];
    return total;
}

/* x is [n]. */
int nn_all_finite(const float *x, size_t n) {
    int ok = 1;
    for (size_t i = 0; i < n; i++) ok &= isfinite(x[i]) ? 1 : 0;
    return ok;
}

#else /* ---- per instruction level (levels.h compiles this part once per level) ---- */

/* One row of n contiguous floats, summed in double. */
static float NN_L(row_sum)(const float *row, size_t n) {
    double acc = 0.0;
    for (size_t k = 0; k < n; k++) acc += row[k];
    return (float)acc;
}

/* out[0, len) = sums over k < n of base[k * inner + 0..len), in double. */
static void NN_L(block_sum)(float *out, const float *base, size_t n, size_t inner, size_t len) {
    double acc[INNER_BLOCK];
    for (size_t i = 0; i < len; i++) acc[i] = 0.0;
    for (size_t k = 0; k < n; k++)
        for (size_t i = 0; i < len; i++) acc[i] += base[k * inner + i];
    for (size_t i = 0; i < len; i++) out[i] = (float)acc[i];
}

static void NN_L(reduce_sum)(float *out, const float *x, size_t outer, size_t n, size_t inner) {
    if (inner == 1) {
        NN_PARALLEL_FOR_IF(outer * n >= NN_PARALLEL_MIN && outer > 1)
        for (size_t o = 0; o < outer; o++) out[o] = NN_L(row_sum)(x + o * n, n);
        return;
    }
    size_t blocks = (inner + INNER_BLOCK - 1) / INNER_BLOCK;
    NN_PARALLEL_FOR_IF(outer * n * inner >= NN_PARALLEL_MIN)
    for (size_t t = 0; t < outer * blocks; t++) {
        size_t o = t / blocks, i0 = (t % blocks) * INNER_BLOCK;
        NN_L(block_sum)(out + o * inner + i0, x + o * n * inner + i0, n, inner,
                        inner - i0 < INNER_BLOCK ? inner - i0 : INNER_BLOCK);
    }
}

/* The maximum of base[k * inner] over k < n and its first index (NaN beats all). */
static void NN_L(line_max)(float *out, int64_t *arg, const float *base, size_t n, size_t inner) {
    float best = base[0];
    int64_t bi = 0;
    for (size_t k = 1; k < n && best == best; k++) {
        float v = base[k * inner];
        if (v > best || v != v) { best = v; bi = (int64_t)k; }
    }
    *out = best;
    if (arg) *arg = bi;
}

static void NN_L(reduce_max)(float *out, int64_t *arg, const float *x, size_t outer, size_t n, size_t inner) {
    NN_PARALLEL_FOR_IF(outer * n * inner >= NN_PARALLEL_MIN)
    for (size_t t = 0; t < outer * inner; t++)
        NN_L(line_max)(out + t, arg ? arg + t : NULL, x + t / inner * n * inner + t % inner, n, inner);
}

/* dx (n, inner) = scale * dy (inner) on every row. */
static void NN_L(broadcast_rows)(float *dx, const float *dy, float scale, size_t n, size_t inner) {
    for (size_t k = 0; k < n; k++)
        for (size_t i = 0; i < inner; i++) dx[k * inner + i] = scale * dy[i];
}

static void NN_L(broadcast_axis)(float *dx, const float *dy, float scale, size_t outer, size_t n, size_t inner) {
    NN_PARALLEL_FOR_IF(outer * n * inner >= NN_PARALLEL_MIN)
    for (size_t o = 0; o < outer; o++) NN_L(broadcast_rows)(dx + o * n * inner, dy + o * inner, scale, n, inner);
}

#endif
