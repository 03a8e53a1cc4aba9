/* Batch normalisation over (N, C, S) tensors (semantics in include/batchnorm.h).
 *
 * Threads own blocks of whole channels, so every per-channel sum is one thread's double accumulator
 * running over (n, s) in a fixed order: results do not depend on the thread count, nor on the block size.
 * Blocks of several channels matter for S = 1 (BatchNorm1d on (N, C)): one channel alone would read a
 * strided column, while a block reads CHANNEL_BLOCK neighbours from each row. Built per instruction level
 * (CKernels/README.md): each parallel loop runs one per-level function per block of channels. */
#ifndef NN_LEVEL /* ---- common to every level ---- */
#include "nn_internal.h"
#include <math.h>

/* The forward passes round as PyTorch's CPU kernel does on AVX2 and AVX-512 machines, step by step in
 * float: mean, then invstd, then scale = invstd * gamma, shift = fma(-mean, scale, beta) and
 * y = fma(x, scale, shift) (its compiler fuses those two, and only those). On a near-constant channel
 * invstd is large and y is a difference of large, nearly equal terms, so every rounding shows: other
 * multiply-adds must not be fused, and the two that are use fmaf whatever the compiler flags. */
#pragma STDC FP_CONTRACT OFF

#define CHANNEL_BLOCK 16

/* Enough blocks to give every thread work, never more than CHANNEL_BLOCK channels in one. */
static long channel_block(long c) {
    long threads = nn_threads(), b = (c + threads - 1) / threads;
    return b < 1 ? 1 : b > CHANNEL_BLOCK ? CHANNEL_BLOCK : b;
}

static inline long min_long(long a, long b) { return a < b ? a : b; }

/* gamma and beta of the channels [c0, c0 + nb), or their defaults 1 and 0 when absent. Branching on the
 * pointers once keeps the per-channel loops free of conditional loads, which vectorise into masked loads
 * from a null pointer: legal, but qemu's emulation (make cpu-levels) faults on them. */
static void affine_params(float *g, float *b, const float *gamma, const float *beta, long c0, long nb) {
    for (long k = 0; k < nb; k++) g[k] = 1.0f, b[k] = 0.0f;
    if (gamma)
        for (long k = 0; k < nb; k++) g[k] = gamma[c0 + k];
    if (beta)
        for (long k = 0; k < nb; k++) b[k] = beta[c0 + k];
}

#define NN_LEVEL_SOURCE "batchnorm.c"
#include "levels.h"

/* y, x (N, C, S); mean, invstd, running_mean, running_var, gamma, beta (C). */
void nn_batchnorm_forward_train(float *y, float *mean, float *invstd, float *running_mean, float *running_var,
                                const float *x, const float *gamma, const float *beta,
                                int n, int c, int s, float momentum, double eps) {
    /* One value per channel has no variance; the Swift layer rejects it as PyTorch does. */
    assert(y && mean && invstd && x && (long)n * s > 1 && c >= 0 && (running_mean == NULL) == (running_var == NULL));
    NN_DISPATCH(forward_train)(y, mean, invstd, running_mean, running_var, x, gamma, beta, n, c, s, momentum, eps);
}

/* y, x (N, C, S); mean, invstd, gamma, beta, running_mean, running_var (C). */
void nn_batchnorm_forward_eval(float *y, float *mean, float *invstd, const float *x, const float *gamma,
                               const float *beta, const float *running_mean, const float *running_var,
                               int n, int c, int s, float eps) {
    assert(y && x && running_mean && running_var && n >= 0 && c >= 0 && s >= 0);
    NN_DISPATCH(forward_eval)(y, mean, invstd, x, gamma, beta, running_mean, running_var, n, c, s, eps);
}

/* dx, dy, x (N, C, S); dgamma, dbeta, gamma, mean, invstd (C). */
void nn_batchnorm_backward(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                           const float *gamma, const float *mean, const float *invstd,
                           int n, int c, int s, int training) {
    /* x only enters through the batch statistics (training) and xhat (dgamma). */
    assert(dy && mean && invstd && n >= 0 && c >= 0 && s >= 0 && (x || !(training || dgamma != NULL)));
    assert(!training || (long)n * s > 1);
    NN_DISPATCH(backward)(dx, dgamma, dbeta, dy, x, gamma, mean, invstd, n, c, s, training);
}

/* y, x (N, C, S); mean, invstd, running_mean, running_var, gamma, beta (C). */
void nn_batchnorm_forward_train_ref(float *y, float *mean, float *invstd, float *running_mean, float *running_var,
                                    const float *x, const float *gamma, const float *beta,
                                    int n, int c, int s, float momentum, double eps) {
    long m = (long)n * s;
    assert(y && mean && invstd && x && m > 1);
    for (long ch = 0; ch < c; ch++) {
        double sum = 0.0, dev = 0.0;
        for (long i = 0; i < n; i++)
            for (long t = 0; t < s; t++) sum += x[(i * c + ch) * s + t];
        /* The statistics in PyTorch's float steps (see the top of the file); y in double from them. */
        float mu_f = (float)(sum / (double)m);
        for (long i = 0; i < n; i++)
            for (long t = 0; t < s; t++) {
                float d = x[(i * c + ch) * s + t] - mu_f, sq = d * d;
                dev += sq;
            }
        float var_sum = (float)dev, var_f = var_sum / (float)m;
        float istd_f = var_f != 0.0f || eps != 0.0f ? (float)(1.0 / sqrt((double)var_f + (double)eps)) : 0.0f;
        double mu = mu_f, istd = istd_f;
        mean[ch] = mu_f;
        invstd[ch] = istd_f;
        if (running_mean) {
            float keep = 1.0f - momentum, new_mean = momentum * mu_f, old_mean = keep * running_mean[ch];
            running_mean[ch] = new_mean + old_mean;
            double unbiased = var_sum / (float)(m - 1);
            float old_var = keep * running_var[ch];
            running_var[ch] = (float)(momentum * unbiased + (double)old_var);
        }
        for (long i = 0; i < n; i++)
            for (long t = 0; t < s; t++) {
                long at = (i * c + ch) * s + t;
                double xhat = (x[at] - mu) * istd;
                y[at] = (float)(xhat * (gamma ? gamma[ch] : 1.0) + (beta ? beta[ch] : 0.0));
            }
    }
}

/* dx, dy, x (N, C, S); dgamma, dbeta, gamma, mean, invstd (C). */
void nn_batchnorm_backward_ref(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                               const float *gamma, const float *mean, const float *invstd,
                               int n, int c, int s, int training) {
    long m = (long)n * s;
    assert(dy && x && mean && invstd);
    for (long ch = 0; ch < c; ch++) {
        double g = gamma ? gamma[ch] : 1.0, istd = invstd[ch];
        /* The textbook form through xhat and dxhat = dy * gamma. */
        double sum_dxhat = 0.0, sum_dxhat_xhat = 0.0, sum_dy = 0.0, sum_dy_xhat = 0.0;
        for (long i = 0; i < n; i++)
            for (long t = 0; t < s; t++) {
                long at = (i * c + ch) * s + t;
                double xhat = (x[at] - (double)mean[ch]) * istd, dxhat = dy[at] * g;
                sum_dxhat += dxhat;
                sum_dxhat_xhat += dxhat * xhat;
                sum_dy += dy[at];
                sum_dy_xhat += dy[at] * xhat;
            }
        if (dgamma) dgamma[ch] += (float)sum_dy_xhat;
        if (dbeta) dbeta[ch] += (float)sum_dy;
        if (!dx) continue;
        for (long i = 0; i < n; i++)
            for (long t = 0; t < s; t++) {
                long at = (i * c + ch) * s + t;
                double xhat = (x[at] - (double)mean[ch]) * istd, dxhat = dy[at] * g;
                dx[at] = training ? (float)(istd / (double)m * ((double)m * dxhat - sum_dxhat - xhat * sum_dxhat_xhat))
                                  : (float)(dxhat * istd);
            }
    }
}

#else /* ---- per instruction level (levels.h compiles this part once per level) ---- */

/* y = fma(x, scale[k], shift[k]) for the nb channels starting at c0; y (N, C, S), x (N, C, S), scale, shift (nb).
 * Folding the statistics and the affine into one multiply-add per element is what PyTorch's CPU kernel does. */
static void NN_L(normalise_block)(float *y, const float *x, const float *scale, const float *shift, long c0,
                                  long nb, long n, long c, long s) {
    for (long i = 0; i < n; i++)
        for (long k = 0; k < nb; k++) {
            long base = (i * c + c0 + k) * s;
            for (long t = 0; t < s; t++) y[base + t] = fmaf(x[base + t], scale[k], shift[k]);
        }
}

/* The channels [c0, c0 + nb) of nn_batchnorm_forward_train. */
static void NN_L(train_block)(float *y, float *mean, float *invstd, float *running_mean, float *running_var,
                              const float *x, const float *gamma, const float *beta, long c0, long nb, long n,
                              long c, long s, float momentum, double eps) {
    const long m = n * s;
    double sum[CHANNEL_BLOCK] = {0}, dev[CHANNEL_BLOCK] = {0};
    float mu[CHANNEL_BLOCK];
    for (long i = 0; i < n; i++)
        for (long k = 0; k < nb; k++) {
            const float *row = x + (i * c + c0 + k) * s;
            double acc = sum[k];
            for (long t = 0; t < s; t++) acc += row[t];
            sum[k] = acc;
        }
    for (long k = 0; k < nb; k++) mu[k] = (float)(sum[k] / (double)m);
    /* Two passes: the variance from squared deviations does not cancel catastrophically as
     * E[x^2] - E[x]^2 does when |mean| >> std. Each deviation is squared in float and summed in
     * double, as PyTorch does. */
    for (long i = 0; i < n; i++)
        for (long k = 0; k < nb; k++) {
            const float *row = x + (i * c + c0 + k) * s;
            double acc = dev[k];
            for (long t = 0; t < s; t++) {
                float d = row[t] - mu[k], sq = d * d;
                acc += sq;
            }
            dev[k] = acc;
        }
    float scale[CHANNEL_BLOCK], shift[CHANNEL_BLOCK], gk[CHANNEL_BLOCK], bk[CHANNEL_BLOCK];
    affine_params(gk, bk, gamma, beta, c0, nb);
    for (long k = 0; k < nb; k++) {
        long ch = c0 + k;
        float var_sum = (float)dev[k], var = var_sum / (float)m;
        /* invstd is rounded to float before it meets gamma; 0 when var and eps are both 0. */
        float istd = var != 0.0f || eps != 0.0f ? (float)(1.0 / sqrt((double)var + (double)eps)) : 0.0f;
        mean[ch] = mu[k];
        invstd[ch] = istd;
        if (running_mean) {
            running_mean[ch] = momentum * mu[k] + (1.0f - momentum) * running_mean[ch];
            double unbiased = var_sum / (float)(m - 1);
            running_var[ch] = (float)(momentum * unbiased + (double)((1.0f - momentum) * running_var[ch]));
        }
        scale[k] = istd * gk[k];
        shift[k] = fmaf(-mu[k], scale[k], bk[k]);
    }
    NN_L(normalise_block)(y, x, scale, shift, c0, nb, n, c, s);
}

static void NN_L(forward_train)(float *y, float *mean, float *invstd, float *running_mean, float *running_var,
                                const float *x, const float *gamma, const float *beta, int n, int c, int s,
                                float momentum, double eps) {
    long m = (long)n * s, block = channel_block(c), blocks = (c + block - 1) / block;
    NN_PARALLEL_FOR_IF(blocks > 1 && m * c >= NN_PARALLEL_MIN)
    for (long blk = 0; blk < blocks; blk++)
        NN_L(train_block)(y, mean, invstd, running_mean, running_var, x, gamma, beta, blk * block,
                          min_long(block, c - blk * block), n, c, s, momentum, eps);
}

/* The channels [c0, c0 + nb) of nn_batchnorm_forward_eval. */
static void NN_L(eval_block)(float *y, float *mean, float *invstd, const float *x, const float *gamma,
                             const float *beta, const float *running_mean, const float *running_var, long c0,
                             long nb, long n, long c, long s, float eps) {
    float scale[CHANNEL_BLOCK], shift[CHANNEL_BLOCK], gk[CHANNEL_BLOCK], bk[CHANNEL_BLOCK];
    affine_params(gk, bk, gamma, beta, c0, nb);
    for (long k = 0; k < nb; k++) {
        long ch = c0 + k;
        float istd = 1.0f / sqrtf(running_var[ch] + eps); /* in float, as PyTorch's eval path */
        if (mean) mean[ch] = running_mean[ch];
        if (invstd) invstd[ch] = istd;
        scale[k] = istd * gk[k];
        shift[k] = fmaf(-running_mean[ch], scale[k], bk[k]);
    }
    NN_L(normalise_block)(y, x, scale, shift, c0, nb, n, c, s);
}

static void NN_L(forward_eval)(float *y, float *mean, float *invstd, const float *x, const float *gamma,
                               const float *beta, const float *running_mean, const float *running_var, int n, int c,
                               int s, float eps) {
    long block = channel_block(c), blocks = (c + block - 1) / block;
    NN_PARALLEL_FOR_IF(blocks > 1 && (long)n * c * s >= NN_PARALLEL_MIN)
    for (long blk = 0; blk < blocks; blk++)
        NN_L(eval_block)(y, mean, invstd, x, gamma, beta, running_mean, running_var, blk * block,
                         min_long(block, c - blk * block), n, c, s, eps);
}

/* The channels [c0, c0 + nb) of nn_batchnorm_backward. */
static void NN_L(backward_block)(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                                 const float *gamma, const float *mean, const float *invstd, long c0, long nb,
                                 long n, long c, long s, int training) {
    const long m = n * s;
    const int need_x = training || dgamma != NULL, need_sums = need_x || dbeta != NULL;
    /* sum_dy = sum(dy), sum_dyx = sum(dy * (x - mean)) per channel. */
    double sum_dy[CHANNEL_BLOCK] = {0}, sum_dyx[CHANNEL_BLOCK] = {0};
    if (need_sums)
        for (long i = 0; i < n; i++)
            for (long k = 0; k < nb; k++) {
                long base = (i * c + c0 + k) * s;
                double a = sum_dy[k], b = sum_dyx[k], mu = mean[c0 + k];
                if (need_x)
                    for (long t = 0; t < s; t++) {
                        a += dy[base + t];
                        b += (double)dy[base + t] * (x[base + t] - mu);
                    }
                else
                    for (long t = 0; t < s; t++) a += dy[base + t];
                sum_dy[k] = a;
                sum_dyx[k] = b;
            }
    /* dx = k_dy dy + k_x (x - mean) + k_0: the training formula expanded; k_x = k_0 = 0 in eval mode. */
    float k_dy[CHANNEL_BLOCK], k_x[CHANNEL_BLOCK], k_0[CHANNEL_BLOCK], gk[CHANNEL_BLOCK], bk[CHANNEL_BLOCK];
    affine_params(gk, bk, gamma, NULL, c0, nb);
    for (long k = 0; k < nb; k++) {
        long ch = c0 + k;
        double istd = invstd[ch], g = gk[k];
        if (dgamma) dgamma[ch] += (float)(sum_dyx[k] * istd);
        if (dbeta) dbeta[ch] += (float)sum_dy[k];
        k_dy[k] = (float)(g * istd);
        k_x[k] = (float)(-g * istd * istd * istd * sum_dyx[k] / (double)m);
        k_0[k] = (float)(-g * istd * sum_dy[k] / (double)m);
    }
    if (!dx) return;
    for (long i = 0; i < n; i++)
        for (long k = 0; k < nb; k++) {
            long base = (i * c + c0 + k) * s;
            float mu = mean[c0 + k];
            if (training)
                for (long t = 0; t < s; t++) dx[base + t] = k_dy[k] * dy[base + t] + k_x[k] * (x[base + t] - mu) + k_0[k];
            else
                for (long t = 0; t < s; t++) dx[base + t] = k_dy[k] * dy[base + t];
        }
}

static void NN_L(backward)(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                           const float *gamma, const float *mean, const float *invstd, int n, int c, int s,
                           int training) {
    long m = (long)n * s, block = channel_block(c), blocks = (c + block - 1) / block;
    NN_PARALLEL_FOR_IF(blocks > 1 && m * c >= NN_PARALLEL_MIN)
    for (long blk = 0; blk < blocks; blk++)
        NN_L(backward_block)(dx, dgamma, dbeta, dy, x, gamma, mean, invstd, blk * block,
                             min_long(block, c - blk * block), n, c, s, training);
}

#endif
