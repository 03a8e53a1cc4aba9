/* Matrix products. OpenBLAS does the work: a well-kept GEMM beats a hand-written one. Its pthread
 * build runs its own threads, so nn_sgemm is never called from inside an OpenMP parallel region. */
#include "nn_internal.h"
#include <cblas.h>

/* a is op(A) [m, k] stored with row stride lda; b is op(B) [k, n] with ldb; c is [m, n] with ldc. */
void nn_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
              const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc) {
    assert(m >= 0 && n >= 0 && k >= 0);
    if (m == 0 || n == 0) return;
    if (k == 0) { /* BLAS leaves C untouched for k = 0 only when beta = 1; make the empty sum explicit. */
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) c[(long)i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[(long)i * ldc + j];
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
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
