/* Reductions along one axis. A tensor reduced along axis d is seen as (outer, n, inner) with
 * outer = prod(shape[:d]), n = shape[d], inner = prod(shape[d+1:]). Sums accumulate in double in a
 * fixed order, so results do not depend on the thread count. */
#include "nn_internal.h"
#include <math.h>

#define INNER_BLOCK 64

/* out is (outer, inner); x is (outer, n, inner). */
void nn_reduce_sum(float *out, const float *x, size_t outer, size_t n, size_t inner) {
    if (inner == 1) {
        NN_PARALLEL_FOR_IF(outer * n >= NN_PARALLEL_MIN && outer > 1)
        for (size_t o = 0; o < outer; o++) {
            const float *row = x + o * n;
            double acc = 0.0;
            for (size_t k = 0; k < n; k++) acc += row[k];
            out[o] = (float)acc;
        }
        return;
    }
    size_t blocks = (inner + INNER_BLOCK - 1) / INNER_BLOCK;
    NN_PARALLEL_FOR_IF(outer * n * inner >= NN_PARALLEL_MIN)
    for (size_t t = 0; t < outer * blocks; t++) {
        size_t o = t / blocks, i0 = (t % blocks) * INNER_BLOCK;
        size_t len = inner - i0 < INNER_BLOCK ? inner - i0 : INNER_BLOCK;
        double acc[INNER_BLOCK];
        for (size_t i = 0; i < len; i++) acc[i] = 0.0;
        const float *base = x + o * n * inner + i0;
        for (size_t k = 0; k < n; k++)
            for (size_t i = 0; i < len; i++) acc[i] += base[k * inner + i];
        for (size_t i = 0; i < len; i++) out[o * inner + i0 + i] = (float)acc[i];
    }
}

/* out, arg are (outer, inner); x is (outer, n, inner), n >= 1. The first maximum wins; NaN beats all. */
void nn_reduce_max(float *out, int64_t *arg, const float *x, size_t outer, size_t n, size_t inner) {
    assert(n >= 1);
    NN_PARALLEL_FOR_IF(outer * n * inner >= NN_PARALLEL_MIN)
    for (size_t t = 0; t < outer * inner; t++) {
        size_t o = t / inner, i = t % inner;
        const float *base = x + o * n * inner + i;
        float best = base[0];
        int64_t bi = 0;
        for (size_t k = 1; k < n && best == best; k++) {
            float v = base[k * inner];
            if (v > best || v != v) { best = v; bi = (int64_t)k; }
        }
        out[t] = best;
        if (arg) arg[t] = bi;
    }
}

/* dx is (outer, n, inner); dy is (outer, inner). */
void nn_broadcast_axis(float *dx, const float *dy, float scale, size_t outer, size_t n, size_t inner) {
    NN_PARALLEL_FOR_IF(outer * n * inner >= NN_PARALLEL_MIN)
    for (size_t o = 0; o < outer; o++)
        for (size_t k = 0; k < n; k++)
            for (size_t i = 0; i < inner; i++) dx[(o * n + k) * inner + i] = scale * dy[o * inner + i];
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
