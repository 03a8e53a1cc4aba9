/* Loss kernels: per-element (or per-row) losses forward, and their input gradients. Reduction to a
 * scalar (mean or sum) is the caller's: `scale` carries 1/count for a mean, and `g` (null for 1)
 * carries an upstream gradient of the unreduced loss. */
#include "nn_internal.h"
#include <math.h>

#define GRAD_IN(g, i) ((g) ? (g)[i] : 1.0f)

/* loss, p, t are [n]. */
void nn_mse_forward(float *loss, const float *p, const float *t, size_t n) {
    NN_PARALLEL_FOR_IF(n >= NN_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) { float d = p[i] - t[i]; loss[i] = d * d; }
}

/* dp, g, p, t are [n]. */
void nn_mse_backward(float *dp, const float *g, const float *p, const float *t, float scale, size_t n) {
    NN_PARALLEL_FOR_IF(n >= NN_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) dp[i] = scale * 2.0f * (p[i] - t[i]) * GRAD_IN(g, i);
}

/* loss, p, t are [n]; PyTorch clamps each log at -100 so p = 0 or 1 gives a finite loss. */
void nn_bce_forward(float *loss, const float *p, const float *t, size_t n) {
    NN_PARALLEL_FOR_IF(n >= NN_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) {
        float lp = fmaxf(logf(p[i]), -100.0f), l1p = fmaxf(log1pf(-p[i]), -100.0f);
        loss[i] = -(t[i] * lp + (1.0f - t[i]) * l1p);
    }
}

/* dp, g, p, t are [n]. */
void nn_bce_backward(float *dp, const float *g, const float *p, const float *t, float scale, size_t n) {
    NN_PARALLEL_FOR_IF(n >= NN_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++)
        dp[i] = scale * (p[i] - t[i]) / fmaxf(p[i] * (1.0f - p[i]), 1e-12f) * GRAD_IN(g, i);
}

/* loss, z, t are [n]. */
void nn_bce_logits_forward(float *loss, const float *z, const float *t, size_t n) {
    NN_PARALLEL_FOR_IF(n >= NN_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) loss[i] = fmaxf(z[i], 0.0f) - z[i] * t[i] + log1pf(expf(-fabsf(z[i])));
}

/* dz, g, z, t are [n]. */
void nn_bce_logits_backward(float *dz, const float *g, const float *z, const float *t, float scale, size_t n) {
    NN_PARALLEL_FOR_IF(n >= NN_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) {
        float s = z[i] >= 0.0f ? 1.0f / (1.0f + expf(-z[i])) : expf(z[i]) / (1.0f + expf(z[i]));
        dz[i] = scale * (s - t[i]) * GRAD_IN(g, i);
    }
}

/* loss is (rows); logp, z, probs are (rows, classes); labels is (rows). */
void nn_cross_entropy_forward(float *loss, float *logp, const float *z, const int64_t *labels,
                              const float *probs, size_t rows, size_t classes) {
    assert((labels != 0) != (probs != 0));
    nn_softmax_forward(logp, z, rows, classes, 1, 1);
    NN_PARALLEL_FOR_IF(rows * classes >= NN_PARALLEL_MIN)
    for (size_t r = 0; r < rows; r++) {
        const float *lr = logp + r * classes;
        if (labels) {
            assert(labels[r] >= 0 && (size_t)labels[r] < classes);
            loss[r] = -lr[labels[r]];
        } else {
            double s = 0.0;
            for (size_t c = 0; c < classes; c++) {
                float q = probs[r * classes + c];
                if (q != 0.0f) s -= (double)q * lr[c]; /* 0 * log 0 counts as 0 */
            }
            loss[r] = (float)s;
        }
    }
}

/* dz, logp, probs are (rows, classes); g, labels are (rows). */
void nn_cross_entropy_backward(float *dz, const float *g, const float *logp, const int64_t *labels,
                               const float *probs, float scale, size_t rows, size_t classes) {
    NN_PARALLEL_FOR_IF(rows * classes >= NN_PARALLEL_MIN)
    for (size_t r = 0; r < rows; r++) {
        float gr = scale * GRAD_IN(g, r);
        double mass = 1.0;
        if (probs) { /* soft targets need not sum to 1: d/dz_c = softmax_c * sum(q) - q_c */
            mass = 0.0;
            for (size_t c = 0; c < classes; c++) mass += probs[r * classes + c];
        }
        for (size_t c = 0; c < classes; c++) {
            size_t j = r * classes + c;
            float target = labels ? (labels[r] == (int64_t)c ? 1.0f : 0.0f) : probs[j];
            dz[j] = gr * (expf(logp[j]) * (float)mass - target);
        }
    }
}
