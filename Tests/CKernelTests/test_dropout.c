/* Dropout: the edge probabilities, keep-rate statistics, seed determinism and independence, the
 * backward pass, and thread-count invariance of the counter-based mask. */
#include "ctest.h"

enum { BIG = 1 << 20 };

static void test_edges(void) {
    float x[5] = {1, -2, 3.5f, 0, 1e30f}, y[5], m[5];
    nn_dropout_forward(y, m, x, 0.0f, 42, 5);
    CHECK(memcmp(x, y, sizeof x) == 0);
    CHECK(m[0] == 1 && m[1] == 1 && m[2] == 1 && m[3] == 1 && m[4] == 1);
    nn_dropout_forward(y, m, x, 1.0f, 42, 5);
    int zero = 1;
    for (int i = 0; i < 5; i++) zero &= y[i] == 0 && m[i] == 0;
    CHECK(zero);
    /* Kept elements are scaled by exactly 1/(1-p); dropped ones are zero. */
    float xs[64], ys[64], ms[64];
    ctest_fill(xs, 64, -1, 1);
    nn_dropout_forward(ys, ms, xs, 0.25f, 7, 64);
    int ok = 1;
    for (int i = 0; i < 64; i++)
        ok &= (ms[i] == 0 && ys[i] == 0) || (ms[i] == 1.0f / 0.75f && ys[i] == xs[i] * (1.0f / 0.75f));
    CHECK(ok);
    /* No mask requested gives the same output; y may alias x. */
    float y2[64], inplace[64];
    memcpy(inplace, xs, sizeof xs);
    nn_dropout_forward(y2, NULL, xs, 0.25f, 7, 64);
    nn_dropout_forward(inplace, NULL, inplace, 0.25f, 7, 64);
    ctest_equal_bits("dropout without mask", y2, ys, 64);
    ctest_equal_bits("dropout in place", inplace, ys, 64);
}

static void test_statistics(void) {
    float *x = malloc(BIG * 4), *y = malloc(BIG * 4), *m = malloc(BIG * 4), *m2 = malloc(BIG * 4);
    for (size_t i = 0; i < BIG; i++) x[i] = 1.0f;
    const float ps[] = {0.1f, 0.5f, 0.8f};
    for (int k = 0; k < 3; k++) {
        float p = ps[k];
        nn_dropout_forward(y, m, x, p, 1234 + k, BIG);
        /* The kept fraction is binomial: within 5 standard errors of 1 - p. The mean of y estimates 1. */
        size_t kept = 0, both = 0, runs = 0;
        double ysum = 0;
        for (size_t i = 0; i < BIG; i++) {
            kept += m[i] != 0;
            ysum += y[i];
            if (i > 0) both += m[i] != 0 && m[i - 1] != 0;
            if (i > 0) runs += (m[i] != 0) != (m[i - 1] != 0);
        }
        double q = 1.0 - p, se = sqrt(p * q / BIG);
        CHECK(fabs((double)kept / BIG - q) < 5 * se);
        CHECK(fabs(ysum / BIG - 1.0) < 5 * se / q);
        /* Neighbours are independent: both kept with probability q^2, a change between them with 2pq.
         * Overlapping pairs are correlated, hence the covariance terms in the standard errors. */
        double se_both = sqrt((q * q * (1 - q * q) + 2 * (q * q * q - q * q * q * q)) / BIG);
        double se_runs = sqrt((4 * p * q - 12 * p * p * q * q) / BIG);
        CHECK(fabs((double)both / (BIG - 1) - q * q) < 5 * se_both);
        CHECK(fabs((double)runs / (BIG - 1) - 2 * p * q) < 5 * se_runs);
        /* Seed determinism: the same seed repeats, the next seed agrees only by chance (p^2 + q^2). */
        nn_dropout_forward(y, m2, x, p, 1234 + k, BIG);
        CHECK(memcmp(m, m2, BIG * 4) == 0);
        nn_dropout_forward(y, m2, x, p, 1235 + k, BIG);
        size_t agree = 0;
        for (size_t i = 0; i < BIG; i++) agree += (m[i] != 0) == (m2[i] != 0);
        double pa = p * p + q * q;
        CHECK(fabs((double)agree / BIG - pa) < 6 * sqrt(pa * (1 - pa) / BIG));
        /* A seed one counter step (the golden gamma) away must not replay the stream shifted by one. */
        nn_dropout_forward(y, m2, x, p, 1234 + k + 0x9E3779B97F4A7C15ull, BIG);
        agree = 0;
        for (size_t i = 0; i + 1 < BIG; i++) agree += (m[i + 1] != 0) == (m2[i] != 0);
        CHECK(fabs((double)agree / (BIG - 1) - pa) < 6 * sqrt(pa * (1 - pa) / BIG));
    }
    free(x); free(y); free(m); free(m2);
}

static void test_backward(void) {
    float dy[100], m[100], x[100], y[100], dx[100], want[100];
    ctest_fill(x, 100, -1, 1);
    ctest_fill(dy, 100, -1, 1);
    nn_dropout_forward(y, m, x, 0.4f, 99, 100);
    nn_dropout_backward(dx, dy, m, 100);
    for (int i = 0; i < 100; i++) want[i] = dy[i] * m[i];
    ctest_equal_bits("dropout backward", dx, want, 100);
    /* The map is linear in x with slope mask: the central difference of sum(y * dy) is dx. */
    float num[100];
    for (int i = 0; i < 100; i++) {
        float keep = x[i], h = 1e-2f, yp[100], ym[100];
        double lp = 0, lm = 0;
        x[i] = keep + h; nn_dropout_forward(yp, NULL, x, 0.4f, 99, 100);
        x[i] = keep - h; nn_dropout_forward(ym, NULL, x, 0.4f, 99, 100);
        x[i] = keep;
        for (int j = 0; j < 100; j++) { lp += (double)yp[j] * dy[j]; lm += (double)ym[j] * dy[j]; }
        num[i] = (float)((lp - lm) / (2 * h));
    }
    ctest_close("dropout grad", dx, num, 100, 1e-4f, 1e-3f);
    memcpy(want, dy, sizeof dy);
    nn_dropout_backward(want, want, m, 100);
    ctest_equal_bits("dropout backward in place", want, dx, 100);
}

static void test_threads(void) {
    float *x = malloc(BIG * 4), *y[2], *m[2], *dx[2];
    ctest_fill(x, BIG, -1, 1);
    for (int t = 0; t < 2; t++) {
        y[t] = malloc(BIG * 4); m[t] = malloc(BIG * 4); dx[t] = malloc(BIG * 4);
        nn_set_num_threads(t + 1);
        nn_dropout_forward(y[t], m[t], x, 0.3f, 0xDEADBEEFull, BIG);
        nn_dropout_backward(dx[t], x, m[t], BIG);
    }
    nn_set_num_threads(0);
    ctest_equal_bits("dropout y threads", y[0], y[1], BIG);
    ctest_equal_bits("dropout mask threads", m[0], m[1], BIG);
    ctest_equal_bits("dropout backward threads", dx[0], dx[1], BIG);
    /* Element i's draw does not depend on n: a prefix of the tensor gets the prefix of the mask. */
    float *mp = malloc(1000 * 4), *yp = malloc(1000 * 4);
    nn_dropout_forward(yp, mp, x, 0.3f, 0xDEADBEEFull, 1000);
    ctest_equal_bits("dropout prefix", mp, m[0], 1000);
    free(mp); free(yp); free(x);
    for (int t = 0; t < 2; t++) { free(y[t]); free(m[t]); free(dx[t]); }
}

static void suite(void) {
    test_edges();
    test_statistics();
    test_backward();
    test_threads();
}

int main(void) { return ctest_run_levels("test_dropout", suite); }
