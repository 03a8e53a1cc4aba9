/* Gram kernels: hand-computed values, the kernel against its double-precision reference over sizes that
 * cross every tile, strip and panel edge, exact symmetry, NaN, empty sizes, finite-difference gradients and
 * thread-count invariance. */
#include "ctest.h"

static float *alloc_floats(size_t n) { return malloc((n ? n : 1) * sizeof(float)); }

static void gram(float *g, const float *f, int c, int k) {
    float *ws = alloc_floats(nn_gram_forward_workspace_size(c, k));
    nn_gram_forward(g, f, ws, c, k);
    free(ws);
}

static void gram_backward(float *df, const float *dg, const float *f, int c, int k) {
    float *ws = alloc_floats(nn_gram_backward_workspace_size(c));
    nn_gram_backward(df, dg, f, ws, c, k);
    free(ws);
}

static void test_known(void) {
    /* F = [[1, 2], [3, 4], [5, 6]]: G = [[5, 11, 17], [11, 25, 39], [17, 39, 61]]. */
    float f[6] = {1, 2, 3, 4, 5, 6}, g[9], want[9] = {5, 11, 17, 11, 25, 39, 17, 39, 61};
    gram(g, f, 3, 2);
    ctest_equal_bits("gram 3x2", g, want, 9);
    /* dF = (dG + dGᵀ) F with dG = [[1, 0, 0], [1, 0, 0], [0, 0, 2]]: S = [[2, 1, 0], [1, 0, 0], [0, 0, 4]],
     * S F = [[5, 8], [1, 2], [20, 24]]. */
    float dg[9] = {1, 0, 0, 1, 0, 0, 0, 0, 2}, df[6], dwant[6] = {5, 8, 1, 2, 20, 24};
    gram_backward(df, dg, f, 3, 2);
    ctest_equal_bits("gram backward 3x2", df, dwant, 6);

    /* K = 0: G is zeros (an empty sum), written over whatever was there. C = 0 touches nothing. */
    float z[4] = {7, 7, 7, 7}, zero[4] = {0, 0, 0, 0};
    gram(z, f, 2, 0);
    ctest_equal_bits("gram K=0", z, zero, 4);
    float untouched = 3;
    gram(&untouched, f, 0, 5);
    CHECK(untouched == 3);
}

static void test_against_ref(void) {
    /* C around the tile (8) and strip (32) edges; K across panel boundaries (a panel holds 131072 floats
     * of C rounded up to 32, so C = 256 panels are 512 long and C = 70 panels 1365). */
    static const int cs[] = {1, 3, 8, 9, 31, 32, 33, 40, 64, 70, 256};
    static const int ks[] = {1, 2, 17, 64, 300, 1400};
    for (size_t a = 0; a < sizeof cs / sizeof cs[0]; a++)
        for (size_t b = 0; b < sizeof ks / sizeof ks[0]; b++) {
            int c = cs[a], k = ks[b];
            size_t nf = (size_t)c * k, ng = (size_t)c * c;
            float *f = alloc_floats(nf), *g = alloc_floats(ng), *want = alloc_floats(ng);
            float *dg = alloc_floats(ng), *df = alloc_floats(nf), *dwant = alloc_floats(nf);
            ctest_fill(f, nf, -1, 1);
            ctest_fill(dg, ng, -1, 1);
            gram(g, f, c, k);
            nn_gram_forward_ref(want, f, c, k);
            char what[64];
            snprintf(what, sizeof what, "gram %dx%d", c, k);
            /* Each element is one float sum of k products along k: its rounding error grows with k. */
            ctest_close(what, g, want, ng, 1e-6f * (float)k, 1e-5f);
            int symmetric = 1;
            for (int i = 0; i < c; i++)
                for (int j = 0; j < c; j++) symmetric &= memcmp(&g[i * c + j], &g[j * c + i], sizeof(float)) == 0;
            CHECK(symmetric);
            gram_backward(df, dg, f, c, k);
            nn_gram_backward_ref(dwant, dg, f, c, k);
            snprintf(what, sizeof what, "gram backward %dx%d", c, k);
            ctest_close(what, df, dwant, nf, 1e-6f * (float)c, 1e-5f);
            free(f); free(g); free(want); free(dg); free(df); free(dwant);
        }
}

static void test_nan(void) {
    /* A NaN in row 1 makes row 1 and column 1 of G NaN and leaves the rest finite, as a matrix product does. */
    enum { C = 40, K = 70 };
    float f[C * K], g[C * C];
    ctest_fill(f, C * K, -1, 1);
    f[1 * K + 5] = NAN;
    gram(g, f, C, K);
    int ok = 1;
    for (int i = 0; i < C; i++)
        for (int j = 0; j < C; j++) ok &= (i == 1 || j == 1) ? isnan(g[i * C + j]) : isfinite(g[i * C + j]);
    CHECK(ok);
}

/* L = sum(G ∘ R) with G computed in double. */
static double gram_loss(const float *f, const float *r, int c, int k) {
    double l = 0;
    for (int i = 0; i < c; i++)
        for (int j = 0; j < c; j++) {
            double s = 0;
            for (int p = 0; p < k; p++) s += (double)f[i * k + p] * f[j * k + p];
            l += s * r[i * c + j];
        }
    return l;
}

static void test_gradient(void) {
    enum { C = 11, K = 13 };
    float f[C * K], r[C * C], df[C * K], num[C * K];
    ctest_fill(f, C * K, -1, 1);
    ctest_fill(r, C * C, -1, 1);
    gram_backward(df, r, f, C, K);
    for (int i = 0; i < C * K; i++) {
        float keep = f[i], h = 1e-2f;
        f[i] = keep + h;
        double lp = gram_loss(f, r, C, K);
        f[i] = keep - h;
        double lm = gram_loss(f, r, C, K);
        f[i] = keep;
        num[i] = (float)((lp - lm) / (2.0 * h));
    }
    ctest_close("gram finite differences", df, num, C * K, 1e-4f, 1e-4f);
}

static void test_threads(void) {
    /* Both benchmark aspect ratios, scaled down: 1, 2 and 3 threads must agree bit for bit. */
    static const int shapes[][2] = {{256, 1100}, {64, 9000}, {45, 3000}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int c = shapes[s][0], k = shapes[s][1];
        size_t nf = (size_t)c * k, ng = (size_t)c * c;
        float *f = alloc_floats(nf), *dg = alloc_floats(ng), *g[3], *df[3];
        ctest_fill(f, nf, -1, 1);
        ctest_fill(dg, ng, -1, 1);
        for (int t = 0; t < 3; t++) {
            g[t] = alloc_floats(ng);
            df[t] = alloc_floats(nf);
            nn_set_num_threads(t + 1);
            gram(g[t], f, c, k);
            gram_backward(df[t], dg, f, c, k);
        }
        nn_set_num_threads(0);
        ctest_equal_bits("gram 1 vs 2 threads", g[0], g[1], ng);
        ctest_equal_bits("gram 1 vs 3 threads", g[0], g[2], ng);
        /* The backward's product goes through OpenBLAS, which agrees to rounding. */
        ctest_close("gram backward 1 vs 2 threads", df[1], df[0], nf, 1e-5f, 1e-5f);
        free(f); free(dg);
        for (int t = 0; t < 3; t++) { free(g[t]); free(df[t]); }
    }
}

static void suite(void) {
    test_known();
    test_against_ref();
    test_nan();
    test_gradient();
    test_threads();
}

int main(void) { return ctest_run_levels("test_gram", suite); }
