/* Pooling kernels: output sizes, hand-computed windows (ties, NaN, padding, ceil_mode, divisors), the
 * kernels against their tap-by-tap references, finite-difference gradients and thread-count invariance. */
#include "ctest.h"

static nn_pool2d_params geom(int n, int c, int h, int w, int k, int s, int pad, int ceil_mode, int include_pad) {
    nn_pool2d_params p = {n, c, h, w, k, k, s, s, pad, pad, ceil_mode, include_pad};
    return p;
}

static size_t in_count(const nn_pool2d_params *p) { return (size_t)p->n * p->c * p->h * p->w; }
static size_t out_count(const nn_pool2d_params *p) {
    return (size_t)p->n * p->c * nn_pool2d_out_h(p) * nn_pool2d_out_w(p);
}

static void test_out_size(void) {
    CHECK(nn_pool_out_size(6, 2, 2, 0, 0) == 3);
    CHECK(nn_pool_out_size(7, 3, 2, 1, 0) == 4);
    CHECK(nn_pool_out_size(7, 2, 2, 0, 0) == 3);
    CHECK(nn_pool_out_size(7, 2, 2, 0, 1) == 4);  /* the last window covers column 6 alone */
    CHECK(nn_pool_out_size(6, 3, 2, 1, 1) == 4);  /* ceil((6+2-3)/2)+1 = 4; 3*2 = 6 < 6+1 keeps it */
    CHECK(nn_pool_out_size(5, 2, 2, 1, 0) == 3);
    CHECK(nn_pool_out_size(5, 2, 2, 1, 1) == 3);  /* ceil gives 4, but 3*2 >= 5+1: starts in the padding */
    CHECK(nn_pool_out_size(6, 2, 2, 0, 1) == 3);  /* exact fit: ceil changes nothing */
    CHECK(nn_pool_out_size(1, 3, 1, 0, 0) <= 0);  /* window larger than the input */
    CHECK(nn_pool_out_size(2, 3, 2, 0, 0) <= 0);  /* floor(-1/2) = -1: truncation would report one window */
    /* ceil_mode lets a window run past the input as long as it starts inside: PyTorch gives 1 here. */
    CHECK(nn_pool_out_size(2, 3, 2, 0, 1) == 1);
    nn_pool2d_params p = {1, 1, 7, 5, 3, 2, 2, 1, 1, 0, 0, 1};
    CHECK(nn_pool2d_out_h(&p) == 4 && nn_pool2d_out_w(&p) == 4);
    /* More outputs than int holds saturates at INT_MAX instead of wrapping negative. */
    CHECK(nn_pool_out_size(2147483647, 2, 1, 1, 0) == 2147483647);
    CHECK(nn_pool_out_size(2147483647, 2147483647, 1, 1073741823, 0) == 2147483647);
}

static void test_max_known(void) {
    /* Ties: the first maximum in row-major order wins. 4x4, k2s2. */
    float x[16] = {1, 1, 0, 2,
                   1, 1, 2, 1,
                   0, 0, 5, 3,
                   0, 0, 3, 5};
    nn_pool2d_params p = geom(1, 1, 4, 4, 2, 2, 0, 0, 1);
    float y[4];
    int64_t idx[4];
    nn_max_pool2d_forward(y, idx, x, &p);
    CHECK(y[0] == 1 && idx[0] == 0);
    CHECK(y[1] == 2 && idx[1] == 3);   /* 2 at (0,3) precedes 2 at (1,2) */
    CHECK(y[2] == 0 && idx[2] == 8);
    CHECK(y[3] == 5 && idx[3] == 10);

    /* Overlapping windows (k3s1p1) on ties: every window's first maximum, and dx adds up. */
    float t[9] = {2, 0, 2,
                  0, 2, 0,
                  1, 0, 2};
    nn_pool2d_params q = geom(1, 1, 3, 3, 3, 1, 1, 0, 1);
    float ty[9], dy[9], dx[9];
    int64_t ti[9];
    nn_max_pool2d_forward(ty, ti, t, &q);
    int64_t want[9] = {0, 0, 2, 0, 0, 2, 4, 4, 4};
    int ok = 1;
    for (int i = 0; i < 9; i++) ok &= ty[i] == 2 && ti[i] == want[i];
    CHECK(ok);
    for (int i = 0; i < 9; i++) dy[i] = (float)(1 << i);
    nn_max_pool2d_backward(dx, dy, ti, &q);
    CHECK(dx[0] == 1 + 2 + 8 + 16 && dx[2] == 4 + 32 && dx[4] == 64 + 128 + 256);
    CHECK(dx[1] == 0 && dx[3] == 0 && dx[5] == 0 && dx[6] == 0 && dx[7] == 0 && dx[8] == 0);

    /* Padding is -inf, never zero: an all-negative input keeps negative maxima. And a plane of -inf
     * reports the first real element of each window. */
    float neg[9] = {-5, -4, -3, -2, -1, -6, -7, -8, -9};
    nn_pool2d_params r = geom(1, 1, 3, 3, 3, 2, 1, 0, 1);
    float ny[4];
    int64_t ni[4];
    nn_max_pool2d_forward(ny, ni, neg, &r);
    CHECK(ny[0] == -1 && ni[0] == 4 && ny[1] == -1 && ny[2] == -1 && ny[3] == -1);
    float inf[9];
    for (int i = 0; i < 9; i++) inf[i] = -INFINITY;
    nn_max_pool2d_forward(ny, ni, inf, &r);
    CHECK(ny[0] == -INFINITY && ni[0] == 0 && ni[1] == 1 && ni[2] == 3 && ni[3] == 4);

    /* NaN wins over any number, whatever its position. */
    float nanx[4] = {1, NAN, 7, 3};
    nn_pool2d_params u = geom(1, 1, 2, 2, 2, 2, 0, 0, 1);
    float uy;
    int64_t ui;
    nn_max_pool2d_forward(&uy, &ui, nanx, &u);
    CHECK(isnan(uy) && ui == 1);

    /* ceil_mode: 5x5 with k2s2 gives 3x3; the last row and column of windows cover one input line. */
    float c5[25];
    for (int i = 0; i < 25; i++) c5[i] = (float)((i * 7) % 11);
    nn_pool2d_params v = geom(1, 1, 5, 5, 2, 2, 0, 1, 1);
    float cy[9];
    int64_t ci[9];
    CHECK(nn_pool2d_out_h(&v) == 3);
    nn_max_pool2d_forward(cy, ci, c5, &v);
    CHECK(ci[2] == (c5[4] >= c5[9] ? 4 : 9) && cy[2] == fmaxf(c5[4], c5[9]));
    CHECK(ci[8] == 24 && cy[8] == c5[24]);
    CHECK(ci[6] == (c5[20] >= c5[21] ? 20 : 21));
}

static void test_avg_known(void) {
    /* Ones through k3s1p1: with padding counted the divisor is 9 everywhere, so corners see 4/9 and
     * edges 6/9; without it every output is exactly 1. */
    float ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, y[9];
    nn_pool2d_params p = geom(1, 1, 3, 3, 3, 1, 1, 0, 1);
    nn_avg_pool2d_forward(y, ones, &p);
    CHECK(fabsf(y[0] - 4.0f / 9) < 1e-7f && fabsf(y[1] - 6.0f / 9) < 1e-7f && y[4] == 1.0f);
    p.count_include_pad = 0;
    nn_avg_pool2d_forward(y, ones, &p);
    int ok = 1;
    for (int i = 0; i < 9; i++) ok &= y[i] == 1.0f;
    CHECK(ok);

    /* One row of 6 ones, window 1x3, stride 2, pad 1, ceil_mode: 4 outputs. Window 0 spans [-1, 2): 3
     * positions with the padding, 2 real. Window 3 spans [5, 8) but the padded input ends at 7, so the
     * include-pad divisor is 2 while only 1 element is real. */
    float row[6] = {1, 1, 1, 1, 1, 1}, ry[4], dx[6], dy[4] = {1, 1, 1, 1};
    nn_pool2d_params q = {1, 1, 1, 6, 1, 3, 1, 2, 0, 1, 1, 1};
    CHECK(nn_pool2d_out_w(&q) == 4);
    nn_avg_pool2d_forward(ry, row, &q);
    CHECK(fabsf(ry[0] - 2.0f / 3) < 1e-7f && ry[1] == 1.0f && ry[2] == 1.0f && ry[3] == 0.5f);
    nn_avg_pool2d_backward(dx, dy, &q);
    /* Input 5 lies in windows 2 (divisor 3) and 3 (divisor 2). */
    CHECK(fabsf(dx[5] - (1.0f / 3 + 0.5f)) < 1e-7f && fabsf(dx[0] - 1.0f / 3) < 1e-7f);
    q.count_include_pad = 0;
    nn_avg_pool2d_forward(ry, row, &q);
    CHECK(ry[0] == 1.0f && ry[3] == 1.0f);
    nn_avg_pool2d_backward(dx, dy, &q);
    CHECK(fabsf(dx[5] - (1.0f / 3 + 1.0f)) < 1e-7f && fabsf(dx[0] - 0.5f) < 1e-7f);

    /* Values, not just ones: a 2x2 average of 1..4 and a padded corner. */
    float v[4] = {1, 2, 3, 4}, vy;
    nn_pool2d_params r = geom(1, 1, 2, 2, 2, 2, 0, 0, 1);
    nn_avg_pool2d_forward(&vy, v, &r);
    CHECK(vy == 2.5f);
    nn_pool2d_params s = geom(1, 1, 2, 2, 2, 2, 1, 0, 1);
    float sy[4];
    nn_avg_pool2d_forward(sy, v, &s);
    CHECK(sy[0] == 0.25f && sy[1] == 0.5f && sy[2] == 0.75f && sy[3] == 1.0f);
}

static void test_adaptive_known(void) {
    /* Global average and its gradient, dy / (H*W) everywhere. */
    float x[2 * 12], y[2], dy[2] = {12, -24}, dx[2 * 12];
    for (int i = 0; i < 24; i++) x[i] = (float)i;
    nn_adaptive_avg_pool2d_forward(y, x, 1, 2, 3, 4, 1, 1);
    CHECK(y[0] == 5.5f && y[1] == 17.5f);
    nn_adaptive_avg_pool2d_backward(dx, dy, 1, 2, 3, 4, 1, 1);
    CHECK(dx[0] == 1.0f && dx[11] == 1.0f && dx[12] == -2.0f && dx[23] == -2.0f);
    /* 5 -> 3 splits rows into [0, 2), [1, 4), [3, 5): neighbours share an element. */
    float r[5] = {1, 2, 3, 4, 5}, ry[3], rdy[3] = {1, 1, 1}, rdx[5];
    nn_adaptive_avg_pool2d_forward(ry, r, 1, 1, 5, 1, 3, 1);
    CHECK(ry[0] == 1.5f && ry[1] == 3.0f && ry[2] == 4.5f);
    nn_adaptive_avg_pool2d_backward(rdx, rdy, 1, 1, 5, 1, 3, 1);
    CHECK(rdx[0] == 0.5f && fabsf(rdx[1] - (0.5f + 1.0f / 3)) < 1e-7f && fabsf(rdx[3] - (1.0f / 3 + 0.5f)) < 1e-7f);
    /* Upsampling (2 -> 3): windows [0, 1), [0, 2), [1, 2). */
    float u[2] = {2, 4}, uy[3];
    nn_adaptive_avg_pool2d_forward(uy, u, 1, 1, 1, 2, 1, 3);
    CHECK(uy[0] == 2 && uy[1] == 3 && uy[2] == 4);
}

static void test_adaptive_max_known(void) {
    /* 5 -> 3 rows: windows [0, 2), [1, 4), [3, 5); 7 sits in two windows and collects both gradients. */
    float r[5] = {1, 7, 3, 2, 5}, ry[3], rdy[3] = {1, 10, 100}, rdx[5];
    int64_t ri[3];
    nn_adaptive_max_pool2d_forward(ry, ri, r, 1, 1, 5, 1, 3, 1);
    CHECK(ry[0] == 7 && ry[1] == 7 && ry[2] == 5);
    CHECK(ri[0] == 1 && ri[1] == 1 && ri[2] == 4);
    nn_adaptive_max_pool2d_backward(rdx, rdy, ri, 1, 1, 5, 1, 3, 1);
    CHECK(rdx[0] == 0 && rdx[1] == 11 && rdx[2] == 0 && rdx[3] == 0 && rdx[4] == 100);
    /* Global max over 2x3 with a tie (the first wins) and NaN (propagates) in the second plane. */
    float g[12] = {1, 4, 2, 4, 0, 3, 1, NAN, 2, 9, 0, 3}, gy[2];
    int64_t gi[2];
    nn_adaptive_max_pool2d_forward(gy, gi, g, 1, 2, 2, 3, 1, 1);
    CHECK(gy[0] == 4 && gi[0] == 1 && isnan(gy[1]) && gi[1] == 1);
}

/* Geometries the reference comparisons and gradient checks sweep. */
static const nn_pool2d_params sweep[] = {
    {2, 3, 6, 6, 2, 2, 2, 2, 0, 0, 0, 1},
    {2, 3, 7, 7, 3, 3, 2, 2, 1, 1, 0, 1},
    {1, 2, 7, 7, 2, 2, 2, 2, 0, 0, 1, 1},
    {2, 2, 5, 5, 3, 3, 1, 1, 1, 1, 0, 0},
    {1, 3, 9, 8, 3, 2, 2, 3, 1, 1, 1, 1},
    {1, 3, 9, 8, 3, 2, 2, 3, 1, 1, 1, 0},
    {2, 1, 6, 7, 4, 3, 3, 2, 2, 1, 1, 1},
    {1, 2, 10, 11, 5, 4, 3, 2, 2, 2, 1, 0},
    {1, 1, 4, 4, 1, 1, 1, 1, 0, 0, 0, 1},
};

static void test_against_ref(void) {
    enum { MAXN = 2 * 3 * 11 * 11 };
    float x[MAXN], y[MAXN], yr[MAXN], dy[MAXN], dx[MAXN], dxr[MAXN];
    int64_t idx[MAXN], idxr[MAXN];
    for (size_t k = 0; k < sizeof sweep / sizeof sweep[0]; k++) {
        const nn_pool2d_params *p = &sweep[k];
        size_t ni = in_count(p), no = out_count(p);
        ctest_fill(x, ni, -3, 3);
        ctest_fill(dy, no, -1, 1);
        nn_max_pool2d_forward(y, idx, x, p);
        nn_max_pool2d_forward_ref(yr, idxr, x, p);
        ctest_equal_bits("max_pool forward vs ref", y, yr, no);
        CHECK(memcmp(idx, idxr, no * sizeof(int64_t)) == 0);
        nn_avg_pool2d_forward(y, x, p);
        nn_avg_pool2d_forward_ref(yr, x, p);
        ctest_equal_bits("avg_pool forward vs ref", y, yr, no);
        nn_avg_pool2d_backward(dx, dy, p);
        nn_avg_pool2d_backward_ref(dxr, dy, p);
        ctest_equal_bits("avg_pool backward vs ref", dx, dxr, ni);
        /* Integer ties everywhere: the indices must still agree with the tap-by-tap scan. */
        for (size_t i = 0; i < ni; i++) x[i] = (float)(int)ctest_uniform(0, 3);
        nn_max_pool2d_forward(y, idx, x, p);
        nn_max_pool2d_forward_ref(yr, idxr, x, p);
        CHECK(memcmp(idx, idxr, no * sizeof(int64_t)) == 0);
        /* Adaptive max to sizes below, equal to and above the input, ties included. */
        int sizes[3][2] = {{2, 3}, {p->h, p->w}, {p->h + 2, p->w + 1}};
        for (int t = 0; t < 3; t++) {
            size_t na = (size_t)p->n * p->c * sizes[t][0] * sizes[t][1];
            nn_adaptive_max_pool2d_forward(y, idx, x, p->n, p->c, p->h, p->w, sizes[t][0], sizes[t][1]);
            nn_adaptive_max_pool2d_forward_ref(yr, idxr, x, p->n, p->c, p->h, p->w, sizes[t][0], sizes[t][1]);
            ctest_equal_bits("adaptive max forward vs ref", y, yr, na);
            CHECK(memcmp(idx, idxr, na * sizeof(int64_t)) == 0);
        }
    }
}

/* L = sum(y * R) for the pooling selected by `kind`: 0 max, 1 avg, 2 adaptive avg to 2x3, 3 adaptive max to 2x3. */
static double pool_loss(int kind, const nn_pool2d_params *p, const float *x, const float *r, float *y) {
    size_t no = kind >= 2 ? (size_t)p->n * p->c * 6 : out_count(p);
    if (kind == 3) nn_adaptive_max_pool2d_forward(y, NULL, x, p->n, p->c, p->h, p->w, 2, 3);
    if (kind == 0) nn_max_pool2d_forward(y, NULL, x, p);
    if (kind == 1) nn_avg_pool2d_forward(y, x, p);
    if (kind == 2) nn_adaptive_avg_pool2d_forward(y, x, p->n, p->c, p->h, p->w, 2, 3);
    double l = 0;
    for (size_t i = 0; i < no; i++) l += (double)y[i] * r[i];
    return l;
}

static void test_gradients(void) {
    enum { MAXN = 2 * 3 * 11 * 11 };
    float x[MAXN], r[MAXN], y[MAXN], dx[MAXN], num[MAXN];
    int64_t idx[MAXN];
    for (size_t k = 0; k < sizeof sweep / sizeof sweep[0]; k++) {
        const nn_pool2d_params *p = &sweep[k];
        size_t ni = in_count(p);
        for (int kind = 0; kind < 4; kind++) {
            /* A shuffled ramp (37 is prime to every size here) with gaps of 0.02 keeps each maximum
             * five steps of h away from a tie. */
            for (size_t i = 0; i < ni; i++) x[i] = 0.02f * (float)((i * 37 + k) % ni) - 0.01f * (float)ni;
            ctest_fill(r, MAXN, -1, 1);
            if (kind == 0) {
                nn_max_pool2d_forward(y, idx, x, p);
                nn_max_pool2d_backward(dx, r, idx, p);
            } else if (kind == 1) {
                nn_avg_pool2d_backward(dx, r, p);
            } else if (kind == 2) {
                nn_adaptive_avg_pool2d_backward(dx, r, p->n, p->c, p->h, p->w, 2, 3);
            } else {
                nn_adaptive_max_pool2d_forward(y, idx, x, p->n, p->c, p->h, p->w, 2, 3);
                nn_adaptive_max_pool2d_backward(dx, r, idx, p->n, p->c, p->h, p->w, 2, 3);
            }
            for (size_t i = 0; i < ni; i++) {
                float keep = x[i], h = 4e-3f;
                x[i] = keep + h;
                double lp = pool_loss(kind, p, x, r, y);
                x[i] = keep - h;
                double lm = pool_loss(kind, p, x, r, y);
                x[i] = keep;
                num[i] = (float)((lp - lm) / (2.0 * h));
            }
            const char *what[4] = {"max_pool grad", "avg_pool grad", "adaptive_avg_pool grad", "adaptive_max_pool grad"};
            ctest_close(what[kind], dx, num, ni, 2e-3f, 2e-3f);
        }
    }
}

static void test_threads(void) {
    /* Large enough to cross NN_PARALLEL_MIN in every kernel; 1 and 2 threads must agree bit for bit. */
    nn_pool2d_params p = geom(4, 8, 37, 41, 3, 2, 1, 1, 0);
    size_t ni = in_count(&p), no = out_count(&p);
    float *x = malloc(ni * 4), *dy = malloc(no * 4), *y[2], *ya[2], *dxm[2], *dxa[2], *yg[2], *dxg[2], *yad[2];
    int64_t *idx[2], *idxam[2];
    float *yam[2], *dxam[2];
    ctest_fill(x, ni, -1, 1);
    ctest_fill(dy, no, -1, 1);
    for (int t = 0; t < 2; t++) {
        y[t] = malloc(no * 4); ya[t] = malloc(no * 4); idx[t] = malloc(no * 8);
        dxm[t] = malloc(ni * 4); dxa[t] = malloc(ni * 4); dxg[t] = malloc(ni * 4);
        yg[t] = malloc(32 * 4); yad[t] = malloc(32 * 49 * 4);
        yam[t] = malloc(32 * 49 * 4); idxam[t] = malloc(32 * 49 * 8); dxam[t] = malloc(ni * 4);
        nn_set_num_threads(t + 1);
        nn_max_pool2d_forward(y[t], idx[t], x, &p);
        nn_max_pool2d_backward(dxm[t], dy, idx[t], &p);
        nn_avg_pool2d_forward(ya[t], x, &p);
        nn_avg_pool2d_backward(dxa[t], dy, &p);
        nn_adaptive_avg_pool2d_forward(yg[t], x, 4, 8, 37, 41, 1, 1);
        nn_adaptive_avg_pool2d_forward(yad[t], x, 4, 8, 37, 41, 7, 7);
        nn_adaptive_avg_pool2d_backward(dxg[t], dy, 4, 8, 37, 41, 7, 7);
        nn_adaptive_max_pool2d_forward(yam[t], idxam[t], x, 4, 8, 37, 41, 7, 7);
        nn_adaptive_max_pool2d_backward(dxam[t], dy, idxam[t], 4, 8, 37, 41, 7, 7);
    }
    nn_set_num_threads(0);
    ctest_equal_bits("max_pool forward threads", y[0], y[1], no);
    CHECK(memcmp(idx[0], idx[1], no * 8) == 0);
    ctest_equal_bits("max_pool backward threads", dxm[0], dxm[1], ni);
    ctest_equal_bits("avg_pool forward threads", ya[0], ya[1], no);
    ctest_equal_bits("avg_pool backward threads", dxa[0], dxa[1], ni);
    ctest_equal_bits("global avg threads", yg[0], yg[1], 32);
    ctest_equal_bits("adaptive avg threads", yad[0], yad[1], 32 * 49);
    ctest_equal_bits("adaptive avg backward threads", dxg[0], dxg[1], ni);
    ctest_equal_bits("adaptive max threads", yam[0], yam[1], 32 * 49);
    CHECK(memcmp(idxam[0], idxam[1], 32 * 49 * 8) == 0);
    ctest_equal_bits("adaptive max backward threads", dxam[0], dxam[1], ni);
    /* The global average against a plain double sum. */
    float want[32];
    for (int pl = 0; pl < 32; pl++) {
        double s = 0;
        for (int i = 0; i < 37 * 41; i++) s += x[pl * 37 * 41 + i];
        want[pl] = (float)(s / (37 * 41));
    }
    ctest_close("global avg", yg[0], want, 32, 1e-7f, 1e-6f);
    free(x); free(dy);
    for (int t = 0; t < 2; t++) {
        free(y[t]); free(ya[t]); free(idx[t]); free(dxm[t]); free(dxa[t]); free(dxg[t]); free(yg[t]); free(yad[t]);
        free(yam[t]); free(idxam[t]); free(dxam[t]);
    }
}

static void suite(void) {
    test_out_size();
    test_max_known();
    test_avg_known();
    test_adaptive_known();
    test_adaptive_max_known();
    test_against_ref();
    test_gradients();
    test_threads();
}

int main(void) { return ctest_run_levels("test_pool", suite); }
