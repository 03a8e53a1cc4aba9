/* Neuron's C kernels: the one public header.
 *
 * Contract for every kernel in this library:
 *   - Arguments go outputs, inputs, saved activations, then sizes. Every buffer is float32, contiguous,
 *     row-major, and its shape is stated atop the function.
 *   - Kernels never allocate, print or exit. Scratch space is caller-owned.
 *   - Backward kernels ACCUMULATE (+=) into parameter gradients, so gradient accumulation across
 *     micro-batches needs nothing extra; gradients of inputs are written (=) unless stated otherwise.
 *   - Each parallel loop is `schedule(static)` with every thread owning whole outputs, so results are
 *     bit-identical for any thread count, OpenBLAS's products (nn_sgemm) included.
 *   - Contracts (sizes, non-null pointers) are asserted in debug builds; the Swift layer validates first.
 */
#ifndef NEURON_CKERNELS_H
#define NEURON_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- threads.c ------------------------------------------------------------------------------ */
/* 1 when the library was compiled with OpenMP (-fopenmp), 0 when every kernel runs on one thread. */
int nn_openmp_enabled(void);
/* Threads used by our kernels, matrix products included (OpenBLAS itself always runs single-threaded,
 * on blocks our team hands it); n <= 0 restores the default (OMP_NUM_THREADS or cores). */
void nn_set_num_threads(int n);
int nn_get_num_threads(void);

/* ---- cpu.c: instruction levels ----------------------------------------------------------------- */
/* The hot kernels are built once per level and the process runs one level, chosen when the library
 * loads: the best the CPU and OS support, lowered by NEURON_CPU=baseline|avx2|avx512. Levels agree to
 * float rounding; each is bit-identical across thread counts. AArch64 has the baseline only. */
typedef enum { NN_CPU_BASELINE = 0, NN_CPU_AVX2 = 1, NN_CPU_AVX512 = 2 } nn_cpu_level_id;
#if defined(__x86_64__)
#define NN_CPU_LEVELS 3
#else
#define NN_CPU_LEVELS 1
#endif
/* The best level this CPU and OS support (CPUID, and XGETBV for the OS-saved AVX/AVX-512 state). */
int nn_cpu_best_level(void);
/* The level the kernels run on this thread. */
int nn_cpu_level(void);
/* Sets the process's level; level < 0 restores the default. Returns -1, changing nothing, for a level
 * above nn_cpu_best_level(). */
int nn_set_cpu_level(int level);
/* Overrides the level for the calling thread only (level < 0 clears it); -1 as above. The kernels' own
 * worker threads follow the calling thread's level. */
int nn_set_thread_cpu_level(int level);
/* "baseline", "avx2", "avx512"; and back (-1 for an unknown name). */
const char *nn_cpu_level_name(int level);
int nn_cpu_level_from_name(const char *name);
/* Why NEURON_CPU was not honoured (unknown name, or a level this CPU lacks), or NULL. */
const char *nn_cpu_level_note(void);

/* ---- gemm.c: matrix products through OpenBLAS ------------------------------------------------ */
/* C[M, N] = alpha * op(A) op(B) + beta * C, row-major; op(A) is [M, K], op(B) is [K, N].
 * trans_a/trans_b select the transposes; lda/ldb/ldc are the row strides of the stored matrices. A large
 * product runs as nn_sgemm_blocked, a small one as one call on the calling thread: the bits do not depend
 * on the thread count. */
void nn_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
              const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);
/* The same product, bit-identical for any thread count: OpenBLAS's kernels sum the edges of a
 * thread's share in another order than its interior on some cores (Haswell, Zen, Nehalem), so how it
 * splits C between its threads shows in the last bits. Here C is cut into blocks whose bounds depend on
 * M and N only, each one single-threaded OpenBLAS call made by one thread of our OpenMP team (inside a
 * parallel region, all of them by the calling thread). */
void nn_sgemm_blocked(int trans_a, int trans_b, int m, int n, int k, float alpha,
                      const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);
/* OpenBLAS's name for the core its kernels were chosen for ("SkylakeX", "Zen", "Haswell"...). */
const char *nn_blas_core_name(void);
/* Plain triple loop with double accumulation: the reference the tests compare nn_sgemm against. */
void nn_sgemm_ref(int trans_a, int trans_b, int m, int n, int k, float alpha,
                  const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);
/* Batched: for each of `batch` matrices, strides in elements between consecutive A, B, C. */
void nn_sgemm_batched(int trans_a, int trans_b, int batch, int m, int n, int k, float alpha,
                      const float *a, int lda, long stride_a, const float *b, int ldb, long stride_b,
                      float beta, float *c, int ldc, long stride_c);

/* ---- elementwise.c: unary maps, broadcast binary ops, activations ---------------------------- */
typedef enum {
    NN_UNARY_NEG, NN_UNARY_EXP, NN_UNARY_LOG, NN_UNARY_SQRT, NN_UNARY_ABS, NN_UNARY_SQUARE,
    NN_UNARY_RELU, NN_UNARY_SIGMOID, NN_UNARY_TANH, NN_UNARY_SIGN, NN_UNARY_RECIPROCAL
} nn_unary_op;
/* y[n] = f(x[n]). y may alias x. */
void nn_unary(nn_unary_op op, float *y, const float *x, size_t n);
/* y[n] = x[n] > 0 ? x[n] : slope * x[n] */
void nn_leaky_relu_forward(float *y, const float *x, float slope, size_t n);
/* y[n] = x[n]^p */
void nn_pow_scalar(float *y, const float *x, float p, size_t n);
/* y[n] = min(max(x[n], lo), hi); a NaN in x stays NaN (PyTorch's clamp) */
void nn_clamp(float *y, const float *x, float lo, float hi, size_t n);
/* y[n] = a * x[n] + b */
void nn_affine(float *y, const float *x, float a, float b, size_t n);

typedef enum { NN_ACT_RELU, NN_ACT_LEAKY_RELU, NN_ACT_SIGMOID, NN_ACT_TANH } nn_activation;
/* dx[n] = dy[n] * f'(.) where `saved` is x for relu / leaky relu (f'(0) = 0 for relu, slope for leaky;
 * relu passes dy where x is NaN and gives 0 elsewhere even for a NaN dy, as PyTorch's threshold_backward does)
 * and y = f(x) for sigmoid (y(1-y)) and tanh (1-y^2). */
void nn_activation_backward(nn_activation act, float *dx, const float *dy, const float *saved,
                            float slope, size_t n);

typedef enum { NN_BIN_ADD, NN_BIN_SUB, NN_BIN_MUL, NN_BIN_DIV, NN_BIN_MAX, NN_BIN_MIN, NN_BIN_POW } nn_binary_op;
/* out (contiguous, shape[ndim]) = a op b, where a and b are read with element strides
 * a_strides[ndim], b_strides[ndim] (0 on a broadcast axis). ndim >= 1. */
void nn_binary_broadcast(nn_binary_op op, float *out, const float *a, const long *a_strides,
                         const float *b, const long *b_strides, const long *shape, int ndim);
/* Copies a strided view into a contiguous buffer: out (shape[ndim]) = x read with x_strides. */
void nn_gather_strided(float *out, const float *x, const long *x_strides, const long *shape, int ndim);
/* Accumulates a contiguous block into a strided destination: y[strides] += x; the strided positions
 * must be distinct (no broadcast axes). */
void nn_scatter_add_strided(float *y, const long *y_strides, const float *x, const long *shape, int ndim);

/* ---- reduce.c: reductions along one axis of a tensor seen as (outer, n, inner) --------------- */
/* out (outer, inner) = sum over n of x (outer, n, inner); sums in double, in a fixed order. */
void nn_reduce_sum(float *out, const float *x, size_t outer, size_t n, size_t inner);
/* out (outer, inner) = max over n; arg (outer, inner) the first index of the maximum (NaN wins). n >= 1. */
void nn_reduce_max(float *out, int64_t *arg, const float *x, size_t outer, size_t n, size_t inner);
/* dx (outer, n, inner) = dy (outer, inner) broadcast along n, times scale. */
void nn_broadcast_axis(float *dx, const float *dy, float scale, size_t outer, size_t n, size_t inner);
/* Sum of all elements in double, chunked so the result does not depend on the thread count. */
double nn_sum_all(const float *x, size_t n);
/* Sum of squares of all elements in double (global gradient norms). */
double nn_sum_squares(const float *x, size_t n);
/* 1 if every element is finite. */
int nn_all_finite(const float *x, size_t n);

/* ---- softmax.c: along the middle axis of (outer, n, inner), subtracting the maximum ------------ */
/* y = softmax(x) or log_softmax(x); n >= 1. */
void nn_softmax_forward(float *y, const float *x, size_t outer, size_t n, size_t inner, int log);
/* dx from dy and the saved output y: softmax dx = y * (dy - sum(dy*y)); log dx = dy - exp(y) * sum(dy). */
void nn_softmax_backward(float *dx, const float *dy, const float *y, size_t outer, size_t n, size_t inner, int log);

/* ---- loss.c: element losses (reduction is done by the caller) ------------------------------- */
/* loss[n] = (p - t)^2 */
void nn_mse_forward(float *loss, const float *p, const float *t, size_t n);
/* dp[n] = scale * 2 (p - t) * (g ? g[n] : 1) */
void nn_mse_backward(float *dp, const float *g, const float *p, const float *t, float scale, size_t n);
/* loss[n] = -(t log p + (1 - t) log(1 - p)), each log clamped at -100 as PyTorch does. */
void nn_bce_forward(float *loss, const float *p, const float *t, size_t n);
/* dp[n] = scale * (p - t) / max(p (1 - p), 1e-12) * (g ? g[n] : 1) */
void nn_bce_backward(float *dp, const float *g, const float *p, const float *t, float scale, size_t n);
/* loss[n] = max(z, 0) - z t + log1p(exp(-|z|)) */
void nn_bce_logits_forward(float *loss, const float *z, const float *t, size_t n);
/* dz[n] = scale * (sigmoid(z) - t) * (g ? g[n] : 1) */
void nn_bce_logits_backward(float *dz, const float *g, const float *z, const float *t, float scale, size_t n);
/* Softmax cross-entropy from logits z (rows, classes). Either labels (rows) with class indices or
 * probs (rows, classes) with target distributions (one-hot) is non-null. loss (rows); saves log-softmax
 * in logp (rows, classes) for backward. Labels are validated by the caller. */
void nn_cross_entropy_forward(float *loss, float *logp, const float *z, const int64_t *labels,
                              const float *probs, size_t rows, size_t classes);
/* dz (rows, classes) = (softmax - target) * g[row] * scale, g null means 1. */
void nn_cross_entropy_backward(float *dz, const float *g, const float *logp, const int64_t *labels,
                               const float *probs, float scale, size_t rows, size_t classes);

/* ---- optim.c: in-place parameter updates (PyTorch's update rules) ---------------------------- */
/* SGD: g' = g + wd p; buf = momentum buf + (1 - dampening) g' (buf = g' on the first step);
 * d = nesterov ? g' + momentum buf : buf (or g' when momentum = 0); p -= lr d. buf may be null when momentum = 0. */
void nn_sgd_step(float *p, float *buf, const float *g, size_t n, float lr, float momentum, float dampening,
                 float weight_decay, int nesterov, int first_step);
/* Adam / AdamW (decoupled = 1: p *= 1 - lr wd; else g += wd p). m, v are the moments; step counts from 1. */
void nn_adam_step(float *p, float *m, float *v, const float *g, size_t n, float lr, float beta1, float beta2,
                  float eps, float weight_decay, int decoupled, long step);
/* Adagrad: sum += g^2; p -= clr g / (sqrt(sum) + eps), clr = lr / (1 + (step - 1) lr_decay). */
void nn_adagrad_step(float *p, float *sum, const float *g, size_t n, float lr, float lr_decay,
                     float weight_decay, float eps, long step);
/* RMSprop: sq = alpha sq + (1 - alpha) g^2; (centered: gavg = alpha gavg + (1-alpha) g, denom = sqrt(sq - gavg^2) + eps);
 * momentum > 0: buf = momentum buf + g / denom, p -= lr buf; else p -= lr g / denom. */
void nn_rmsprop_step(float *p, float *sq, float *gavg, float *buf, const float *g, size_t n, float lr,
                     float alpha, float eps, float weight_decay, float momentum, int centered);

#ifdef __cplusplus
}
#endif

/* Kernel families with headers of their own. */
#include "conv2d.h"
#include "pool.h"
#include "batchnorm.h"
#include "dropout.h"
#include "checksum.h"
#include "rnn.h"
#include "gram.h"
#include "boxes.h"
#include "detection.h"
#include "embedding.h"

#endif
