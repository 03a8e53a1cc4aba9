/* Matrix products. OpenBLAS does the work: a well-kept GEMM beats a hand-written one. It runs
 * single-threaded, always: large products are cut into blocks that our OpenMP team runs, one OpenBLAS call
 * per block. OpenBLAS's own threads would spin for tens of milliseconds after each call, on the cores our
 * team then needs, and our team's workers spin the same way while OpenBLAS's threads run (measured on the
 * C char-LM training step, 2 threads, Zen 4: 127 ms median with OpenBLAS's threads for the output layer's
 * products against 116 with one pool, and 35,000 context switches against 300 in 40 steps). */
#include "nn_internal.h"
#include <cblas.h>

/* OpenBLAS's own thread control (its pthread build). */
void openblas_set_num_threads(int);

/* Set before any product: OpenBLAS's library constructor has run by then (it is loaded first). */
__attribute__((constructor)) static void openblas_single_threaded(void) { openblas_set_num_threads(1); }

/* One single-threaded OpenBLAS call; a is op(A) [m, k] stored with row stride lda; b is op(B) [k, n] with
 * ldb; c is [m, n] with ldc. */
static void sgemm_call(int trans_a, int trans_b, int m, int n, int k, float alpha,
                       const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc) {
    if (m == 0 || n == 0) return;
    if (k == 0) { /* BLAS leaves C untouched for k = 0 only when beta = 1; make the empty sum explicit. */
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) c[(long)i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[(long)i * ldc + j];
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* Below this many multiply-adds a product runs on the calling thread: the team's fork costs more. */
#define SGEMM_PARALLEL_MIN (1L << 18)

/* Large products run on fixed blocks whatever the thread count (one thread runs them in turn), so the
 * bits never depend on it. */
void nn_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
              const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc) {
    assert(m >= 0 && n >= 0 && k >= 0);
    if ((long)m * n * k >= SGEMM_PARALLEL_MIN)
        nn_sgemm_blocked(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else
        sgemm_call(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

typedef struct {
    int trans_a, trans_b, m, n, k, by_rows, per;
    float alpha, beta;
    const float *a, *b;
    float *c;
    int lda, ldb, ldc;
} gemm_blocks;

/* Block i of C: rows (or columns) [i*per, min((i+1)*per, extent)). */
static void gemm_block(const gemm_blocks *g, int i) {
    const int extent = g->by_rows ? g->m : g->n, lo = i * g->per, hi = lo + g->per < extent ? lo + g->per : extent;
    if (g->by_rows) {
        const float *a = g->trans_a ? g->a + lo : g->a + (long)lo * g->lda;
        sgemm_call(g->trans_a, g->trans_b, hi - lo, g->n, g->k, g->alpha, a, g->lda, g->b, g->ldb, g->beta,
                   g->c + (long)lo * g->ldc, g->ldc);
    } else {
        const float *b = g->trans_b ? g->b + (long)lo * g->ldb : g->b + lo;
        sgemm_call(g->trans_a, g->trans_b, g->m, hi - lo, g->k, g->alpha, g->a, g->lda, b, g->ldb, g->beta,
                   g->c + lo, g->ldc);
    }
}

/* Products of at least this many multiply-adds are cut into 4 blocks rather than 8: every block packs the
 * whole other operand again, and for the recurrent layers' weight gradients (K = T·N in the thousands)
 * that repacking cost more than the finer split balanced (measured: the LSTM bench's three products
 * after the backward loop, 2 threads, took 12.4 ms in 8 blocks, 11.4 in 4 or 2). */
#define SGEMM_FEWER_BLOCKS_MIN (1L << 26)

/* Same buffers as nn_sgemm. C is cut along its longer side into at most 8 blocks (4 for large products), a
 * multiple of 16 wide (the kernels' unroll), so each thread gets a share and OpenBLAS packs the other
 * operand few times. The cut depends on the shape only, never on the thread count. */
void nn_sgemm_blocked(int trans_a, int trans_b, int m, int n, int k, float alpha,
                      const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc) {
    assert(m >= 0 && n >= 0 && k >= 0);
    if (m == 0 || n == 0) return;
    const int by_rows = m >= n, extent = by_rows ? m : n;
    const int most = (long)m * n * k >= SGEMM_FEWER_BLOCKS_MIN ? 4 : 8;
    int per = (extent + most - 1) / most;
    per = (per + 15) / 16 * 16;
    const int blocks = (extent + per - 1) / per;
    const gemm_blocks g = {.trans_a = trans_a, .trans_b = trans_b, .m = m, .n = n, .k = k, .by_rows = by_rows,
                           .per = per, .alpha = alpha, .beta = beta, .a = a, .b = b, .c = c,
                           .lda = lda, .ldb = ldb, .ldc = ldc};
#pragma omp parallel for schedule(static) num_threads(nn_threads()) if (blocks > 1)
    for (int i = 0; i < blocks; i++) gemm_block(&g, i);
}

/* Same buffers as nn_sgemm. */
void nn_sgemm_ref(int trans_a, int trans_b, int m, int n, int k, float alpha,
                  const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc) {
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            double acc = 0.0;
            for (int p = 0; p < k; p++) {
                float av = trans_a ? a[(long)p * lda + i] : a[(long)i * lda + p];
                float bv = trans_b ? b[(long)j * ldb + p] : b[(long)p * ldb + j];
                acc += (double)av * bv;
            }
            float prev = beta == 0.0f ? 0.0f : beta * c[(long)i * ldc + j];
            c[(long)i * ldc + j] = (float)(alpha * acc) + prev;
        }
    }
}

/* `batch` independent products; A_i = a + i*stride_a etc. */
void nn_sgemm_batched(int trans_a, int trans_b, int batch, int m, int n, int k, float alpha,
                      const float *a, int lda, long stride_a, const float *b, int ldb, long stride_b,
                      float beta, float *c, int ldc, long stride_c) {
    for (int i = 0; i < batch; i++)
        nn_sgemm(trans_a, trans_b, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b, ldb, beta,
                 c + i * stride_c, ldc);
}

const char *nn_blas_core_name(void) { return openblas_get_corename(); }
