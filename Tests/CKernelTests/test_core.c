/* Core kernels: GEMM against its reference loop, reductions, softmax, losses, element-wise maps; the
 * instruction-level switch (cpu.c). */
#include "ctest.h"
#include "nn_internal.h"
#include <unistd.h>

static void test_sgemm(void) {
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int m = 37, n = 29, k = 53;
            float a[37 * 53], b[53 * 29], c[37 * 29], r[37 * 29];
            ctest_fill(a, sizeof a / 4, -1, 1);
            ctest_fill(b, sizeof b / 4, -1, 1);
            ctest_fill(c, sizeof c / 4, -1, 1);
            memcpy(r, c, sizeof c);
            int lda = ta ? m : k, ldb = tb ? k : n;
            nn_sgemm(ta, tb, m, n, k, 0.5f, a, lda, b, ldb, 2.0f, c, n);
            nn_sgemm_ref(ta, tb, m, n, k, 0.5f, a, lda, b, ldb, 2.0f, r, n);
            ctest_close("sgemm", c, r, (size_t)m * n, 1e-5f, 1e-5f);
        }
    /* k = 0: the empty sum scaled by beta. */
    float c0[4] = {1, 2, 3, 4};
    nn_sgemm(0, 0, 2, 2, 0, 1.0f, NULL, 1, NULL, 2, 0.0f, c0, 2);
    CHECK(c0[0] == 0 && c0[3] == 0);
}

/* nn_sgemm_blocked: the reference's values, and the same bits on 1, 2 and 3 threads, for shapes cut by
 * rows (tall) and by columns (wide), with transposes and a ragged last block; the last shape is large
 * enough to be cut into 4 blocks rather than 8. nn_sgemm gives those bits too, at every thread count
 * (OpenBLAS never runs its own threads). */
static void test_sgemm_blocked(void) {
    static const int shapes[4][3] = {{300, 40, 70}, {20, 333, 45}, {9, 7, 5}, {520, 64, 2050}};
    for (int s = 0; s < 4; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                const int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
                float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * k * n);
                float *c[3], *d[3], *r = malloc(sizeof(float) * m * n);
                ctest_fill(a, (size_t)m * k, -1, 1);
                ctest_fill(b, (size_t)k * n, -1, 1);
                ctest_fill(r, (size_t)m * n, -1, 1);
                const int lda = ta ? m : k, ldb = tb ? k : n;
                for (int t = 0; t < 3; t++) {
                    c[t] = malloc(sizeof(float) * m * n);
                    memcpy(c[t], r, sizeof(float) * m * n);
                    nn_set_num_threads(t + 1);
                    nn_sgemm_blocked(ta, tb, m, n, k, 0.5f, a, lda, b, ldb, 2.0f, c[t], n);
                    d[t] = malloc(sizeof(float) * m * n);
                    memcpy(d[t], r, sizeof(float) * m * n);
                    nn_sgemm(ta, tb, m, n, k, 0.5f, a, lda, b, ldb, 2.0f, d[t], n);
                }
                nn_set_num_threads(0);
                nn_sgemm_ref(ta, tb, m, n, k, 0.5f, a, lda, b, ldb, 2.0f, r, n);
                ctest_close("sgemm_blocked", c[0], r, (size_t)m * n, 1e-5f, 1e-5f);
                ctest_equal_bits("sgemm_blocked 1 vs 2 threads", c[0], c[1], (size_t)m * n);
                ctest_equal_bits("sgemm_blocked 1 vs 3 threads", c[0], c[2], (size_t)m * n);
                for (int t = 0; t < 3; t++) ctest_equal_bits("sgemm as sgemm_blocked, any threads", c[0], d[t], (size_t)m * n);
                free(a); free(b); free(r);
                for (int t = 0; t < 3; t++) { free(c[t]); free(d[t]); }
            }
}

static void test_reduce(void) {
    enum { O = 3, N = 70, I = 130 };
    static float x[O * N * I], out[O * I], outmax[O * I];
    int64_t arg[O * I];
    ctest_fill(x, O * N * I, -2, 2);
    nn_reduce_sum(out, x, O, N, I);
    nn_reduce_max(outmax, arg, x, O, N, I);
    int ok = 1;
    for (int o = 0; o < O; o++)
        for (int i = 0; i < I; i++) {
            double s = 0;
            float m = x[o * N * I + i];
            int64_t a = 0;
            for (int k = 0; k < N; k++) {
                float v = x[(o * N + k) * I + i];
                s += v;
                if (v > m) { m = v; a = k; }
            }
            ok &= fabs(out[o * I + i] - s) <= 1e-5 + 1e-6 * fabs(s);
            ok &= outmax[o * I + i] == m && arg[o * I + i] == a;
        }
    CHECK(ok);
    float ties[4] = {1, 3, 3, 0}, tm;
    int64_t ta;
    nn_reduce_max(&tm, &ta, ties, 1, 4, 1);
    CHECK(tm == 3 && ta == 1);
}

/* NaN propagates as PyTorch: relu(NaN) = NaN with the gradient passing, clamp keeps NaN, max reports the
 * first NaN (and a NaN in the first position ends the scan). */
static void test_nan_propagation(void) {
    float x[3] = {1, NAN, -2}, y[3], dy[3] = {5, 5, 5}, dx[3];
    nn_unary(NN_UNARY_RELU, y, x, 3);
    CHECK(y[0] == 1 && isnan(y[1]) && y[2] == 0);
    nn_activation_backward(NN_ACT_RELU, dx, dy, x, 0, 3);
    CHECK(dx[0] == 5 && dx[1] == 5 && dx[2] == 0);
    /* A NaN upstream gradient stays out where x <= 0 (threshold_backward selects; found by neuron-fuzz). */
    float nan_dy[3] = {NAN, NAN, NAN};
    nn_activation_backward(NN_ACT_RELU, dx, nan_dy, x, 0, 3);
    CHECK(isnan(dx[0]) && isnan(dx[1]) && dx[2] == 0);
    float c[3] = {NAN, 5, -5}, cy[3];
    nn_clamp(cy, c, -1, 1, 3);
    CHECK(isnan(cy[0]) && cy[1] == 1 && cy[2] == -1);
    float m[4] = {1, NAN, 3, NAN}, mv;
    int64_t ma;
    nn_reduce_max(&mv, &ma, m, 1, 4, 1);
    CHECK(isnan(mv) && ma == 1);
    float first[3] = {NAN, 7, 9};
    nn_reduce_max(&mv, &ma, first, 1, 3, 1);
    CHECK(isnan(mv) && ma == 0);
}

static void test_softmax_extremes(void) {
    float x[6] = {1000, -1000, 0, 1000, 5, -3}, y[6], ly[6];
    nn_softmax_forward(y, x, 1, 6, 1, 0);
    nn_softmax_forward(ly, x, 1, 6, 1, 1);
    int finite = 1;
    for (int i = 0; i < 6; i++) finite &= isfinite(y[i]) && isfinite(ly[i]);
    CHECK(finite);
    CHECK(fabsf(y[0] - 0.5f) < 1e-6f && fabsf(y[3] - 0.5f) < 1e-6f);
    CHECK(fabsf(ly[0] + logf(2.0f)) < 1e-5f);
}

static void test_cross_entropy_grad(void) {
    /* Central differences in the loss against the analytic gradient. */
    enum { R = 4, C = 5 };
    float z[R * C], logp[R * C], loss[R], dz[R * C];
    int64_t labels[R] = {0, 4, 2, 2};
    ctest_fill(z, R * C, -3, 3);
    nn_cross_entropy_forward(loss, logp, z, labels, NULL, R, C);
    nn_cross_entropy_backward(dz, NULL, logp, labels, NULL, 1.0f, R, C);
    float num[R * C];
    for (int j = 0; j < R * C; j++) {
        float keep = z[j], h = 1e-2f, lp[R], lm[R];
        z[j] = keep + h; nn_cross_entropy_forward(lp, logp, z, labels, NULL, R, C);
        z[j] = keep - h; nn_cross_entropy_forward(lm, logp, z, labels, NULL, R, C);
        z[j] = keep;
        double s = 0;
        for (int r = 0; r < R; r++) s += (double)lp[r] - lm[r];
        num[j] = (float)(s / (2 * h));
    }
    ctest_close("cross_entropy grad", dz, num, R * C, 1e-3f, 1e-2f);
}

/* The flat maps and broadcasts against scalar formulas, across item boundaries (CHUNK = 4096) and on
 * both sides of the parallel threshold; bit-identical on 1 and 2 threads. */
static void test_elementwise(void) {
    const size_t sizes[] = {0, 1, 7, 4096 * 3 + 17, 70001};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        const size_t n = sizes[si];
        float *x = malloc((n + 1) * 4), *y = malloc((n + 1) * 4), *y1 = malloc((n + 1) * 4), *want = malloc((n + 1) * 4);
        ctest_fill(x, n, -3, 3);
        if (n > 2) { x[1] = 0.0f; x[2] = -0.0f; }
        nn_unary(NN_UNARY_RELU, y, x, n);
        for (size_t i = 0; i < n; i++) want[i] = x[i] > 0.0f ? x[i] : 0.0f;
        ctest_equal_bits("relu", y, want, n);
        nn_unary(NN_UNARY_SQRT, y, x, n);
        for (size_t i = 0; i < n; i++) want[i] = sqrtf(x[i]);
        ctest_equal_bits("sqrt", y, want, n);
        nn_unary(NN_UNARY_TANH, y, x, n);
        for (size_t i = 0; i < n; i++) want[i] = tanhf(x[i]);
        ctest_equal_bits("tanh", y, want, n);
        nn_leaky_relu_forward(y, x, 0.1f, n);
        for (size_t i = 0; i < n; i++) want[i] = x[i] > 0.0f ? x[i] : 0.1f * x[i];
        ctest_equal_bits("leaky relu", y, want, n);
        nn_affine(y, x, 1.5f, -0.25f, n);
        for (size_t i = 0; i < n; i++) want[i] = 1.5f * x[i] - 0.25f;
        ctest_close("affine", y, want, n, 1e-6f, 1e-6f); /* one rounding with FMA, two without */
        nn_clamp(y, x, -1.0f, 2.0f, n);
        for (size_t i = 0; i < n; i++) want[i] = fminf(fmaxf(x[i], -1.0f), 2.0f);
        ctest_equal_bits("clamp", y, want, n);
        nn_activation_backward(NN_ACT_TANH, y, x, x, 0.0f, n);
        for (size_t i = 0; i < n; i++) want[i] = x[i] * (1.0f - x[i] * x[i]);
        ctest_close("tanh backward", y, want, n, 1e-5f, 1e-6f);
        /* (rows, cols) + (1, cols) broadcast, and the thread-count check on the largest case. */
        const long cols = n >= 7 ? 7 : (long)n, rows = cols ? (long)n / cols : 0;
        const long shape[2] = {rows, cols}, sa[2] = {cols, 1}, sb[2] = {0, 1};
        nn_binary_broadcast(NN_BIN_MUL, y, x, sa, x, sb, shape, 2);
        for (long r = 0; r < rows; r++)
            for (long j = 0; j < cols; j++) want[r * cols + j] = x[r * cols + j] * x[j];
        ctest_equal_bits("broadcast mul", y, want, (size_t)(rows * cols));
        nn_set_num_threads(1);
        nn_unary(NN_UNARY_EXP, y1, x, n);
        nn_set_num_threads(2);
        nn_unary(NN_UNARY_EXP, y, x, n);
        nn_set_num_threads(0);
        ctest_equal_bits("exp threads", y, y1, n);
        free(x); free(y); free(y1); free(want);
    }
}

/* The level switch: names, refusals, NEURON_CPU, the per-thread override. Runs once, outside the loop
 * over levels, and leaves the default level in place. */
static void test_cpu_levels(void) {
    const int best = nn_cpu_best_level();
    CHECK(best >= 0 && best < NN_CPU_LEVELS);
    for (int level = 0; level < NN_CPU_LEVELS; level++)
        CHECK(nn_cpu_level_from_name(nn_cpu_level_name(level)) == level);
    CHECK(nn_cpu_level_from_name("avx3") == -1);
    CHECK(nn_set_cpu_level(best + 1) == -1 && nn_set_cpu_level(NN_CPU_LEVELS) == -1);
    CHECK(nn_set_thread_cpu_level(best + 1) == -1);
    /* NEURON_CPU lowers the level; one the CPU lacks, or no level at all, is refused with a note. */
    const char *saved = getenv("NEURON_CPU");
    setenv("NEURON_CPU", "baseline", 1);
    CHECK(nn_set_cpu_level(-1) == 0 && nn_cpu_level() == NN_CPU_BASELINE && nn_cpu_level_note() == NULL);
    setenv("NEURON_CPU", "fastest", 1);
    CHECK(nn_set_cpu_level(-1) == 0 && nn_cpu_level() == best && nn_cpu_level_note() != NULL);
    if (best < NN_CPU_LEVELS - 1) {
        setenv("NEURON_CPU", nn_cpu_level_name(best + 1), 1);
        CHECK(nn_set_cpu_level(-1) == 0 && nn_cpu_level() == best && nn_cpu_level_note() != NULL &&
              strstr(nn_cpu_level_note(), "refused") != NULL);
    }
    unsetenv("NEURON_CPU");
    CHECK(nn_set_cpu_level(-1) == 0 && nn_cpu_level() == best && nn_cpu_level_note() == NULL);
    /* A thread's override wins over the process's level, and clears. */
    CHECK(nn_set_thread_cpu_level(NN_CPU_BASELINE) == 0 && nn_cpu_level() == NN_CPU_BASELINE);
    CHECK(nn_set_thread_cpu_level(-1) == 0 && nn_cpu_level() == best);
    if (saved) setenv("NEURON_CPU", saved, 1);
    nn_set_cpu_level(-1);
}

/* nn_parallel_items: every item runs exactly once for any item and thread count; a stalled thread's
 * unstarted items are taken by the other. */
typedef struct { int runs[64]; int ran_on[64]; int stall; } items_log;
static void log_item(const void *ctx, int i) {
    items_log *log = (items_log *)ctx;
#ifdef _OPENMP
    const int me = omp_get_thread_num();
#else
    const int me = 0;
#endif
    if (log->stall && i == 0) usleep(50000);
    __atomic_fetch_add(&log->runs[i], 1, __ATOMIC_RELAXED);
    __atomic_store_n(&log->ran_on[i], me, __ATOMIC_RELAXED);
}

static void test_parallel_items(void) {
    const int counts[] = {0, 1, 2, 3, 7, 64};
    for (int t = 1; t <= 3; t++) /* teams of 4 and 5 left libomp allocations that LeakSanitizer reports */
        for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++)
            for (int parallel = 0; parallel < 2; parallel++) {
                items_log log = {0};
                nn_set_num_threads(t);
                nn_parallel_items(counts[c], parallel, log_item, &log);
                int once = 1;
                for (int i = 0; i < 64; i++) once &= log.runs[i] == (i < counts[c]);
                CHECK(once);
            }
    items_log log = {.stall = 1};
    nn_set_num_threads(2);
    nn_parallel_items(8, 1, log_item, &log);
    nn_set_num_threads(0);
    int once = 1, taken = 0;
    for (int i = 0; i < 8; i++) once &= log.runs[i] == 1;
    for (int i = 1; i < 4; i++) taken += log.ran_on[i] != 0; /* thread 0's share, while it sleeps in item 0 */
    CHECK(once);
#ifdef _OPENMP
    CHECK(taken > 0);
#endif
}

static void suite(void) {
    test_elementwise();
    test_sgemm();
    test_sgemm_blocked();
    test_parallel_items();
    test_reduce();
    test_nan_propagation();
    test_softmax_extremes();
    test_cross_entropy_grad();
}

int main(void) {
    test_cpu_levels();
    return ctest_run_levels("test_core", suite);
}
