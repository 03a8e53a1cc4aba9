/* Softmax and log-softmax along the middle axis of (outer, n, inner). The row maximum is subtracted
 * first, so logits of +-1000 stay finite and a row of equal values gives the uniform distribution.
 * Built per instruction level (CKernels/README.md): one per-level call per (outer, inner) line. */
#ifndef NN_LEVEL /* ---- common to every level ---- */
#include "nn_internal.h"
#include <math.h>

#define NN_LEVEL_SOURCE "softmax.c"
#include "levels.h"

/* y, x are (outer, n, inner); n >= 1. */
void nn_softmax_forward(float *y, const float *x, size_t outer, size_t n, size_t inner, int log) {
    assert(n >= 1);
    NN_DISPATCH(softmax_forward)(y, x, outer, n, inner, log);
}

/* dx, dy, y are (outer, n, inner); y is the saved forward output. */
void nn_softmax_backward(float *dx, const float *dy, const float *y, size_t outer, size_t n, size_t inner, int log) {
    NN_DISPATCH(softmax_backward)(dx, dy, y, outer, n, inner, log);
}

#else /* ---- per instruction level (levels.h compiles this part once per level) ---- */

/* One line: yr[k * inner], xr[k * inner] for k < n. */
static void NN_L(softmax_line)(float *yr, const float *xr, size_t n, size_t inner, int log) {
    float m = xr[0];
    for (size_t k = 1; k < n; k++) m = fmaxf(m, xr[k * inner]);
    if (isinf(m) && m < 0) m = 0.0f; /* an all -inf row: keep exp(-inf - 0) = 0, not NaN */
    double s = 0.0;
    for (size_t k = 0; k < n; k++) s += expf(xr[k * inner] - m);
    if (log) {
        /* (x - m) - log s, not x - (m + log s): the latter loses digits when |m| is large. */
        float ls = logf((float)s);
        for (size_t k = 0; k < n; k++) yr[k * inner] = (xr[k * inner] - m) - ls;
    } else {
        float inv = (float)(1.0 / s);
        for (size_t k = 0; k < n; k++) yr[k * inner] = expf(xr[k * inner] - m) * inv;
    }
}

static void NN_L(softmax_forward)(float *y, const float *x, size_t outer, size_t n, size_t inner, int log) {
    NN_PARALLEL_FOR_IF(outer * n * inner >= NN_PARALLEL_MIN)
    for (size_t t = 0; t < outer * inner; t++) {
        const size_t at = t / inner * n * inner + t % inner;
        NN_L(softmax_line)(y + at, x + at, n, inner, log);
    }
}

/* One line of dx from dy and y, elements `inner` apart. */
static void NN_L(softmax_backward_line)(float *dx, const float *dy, const float *y, size_t n, size_t inner, int log) {
    double s = 0.0;
    for (size_t k = 0; k < n; k++) {
        size_t j = k * inner;
        s += log ? dy[j] : (double)dy[j] * y[j];
    }
    for (size_t k = 0; k < n; k++) {
        size_t j = k * inner;
        dx[j] = log ? dy[j] - expf(y[j]) * (float)s : y[j] * (dy[j] - (float)s);
    }
}

static void NN_L(softmax_backward)(float *dx, const float *dy, const float *y, size_t outer, size_t n, size_t inner,
                                   int log) {
    NN_PARALLEL_FOR_IF(outer * n * inner >= NN_PARALLEL_MIN)
    for (size_t t = 0; t < outer * inner; t++) {
        const size_t at = t / inner * n * inner + t % inner;
        NN_L(softmax_backward_line)(dx + at, dy + at, y + at, n, inner, log);
    }
}

#endif
