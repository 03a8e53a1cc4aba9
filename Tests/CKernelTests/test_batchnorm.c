/* Batch norm: hand-computed statistics and running-stat updates, the kernels against their references,
 * finite-difference gradients in both modes (x, gamma, beta), accumulation and thread-count invariance. */
#include "ctest.h"

static void test_known_values(void) {
    /* One channel, x = 1..4: mean 2.5, biased variance 1.25 normalises, unbiased 5/3 enters running_var. */
    float x[4] = {1, 2, 3, 4}, y[4], mean, invstd, rm = 0.0f, rv = 1.0f;
    nn_batchnorm_forward_train(y, &mean, &invstd, &rm, &rv, x, NULL, NULL, 4, 1, 1, 0.1f, 1e-5f);
    CHECK(mean == 2.5f);
    CHECK(fabsf(invstd - (float)(1.0 / sqrt(1.25 + 1e-5))) <= 1e-7f);
    CHECK(fabsf(rm - 0.25f) < 1e-7f);
    /* PyTorch updates the running statistics in float steps: within an ulp of the exact value. */
    CHECK(fabsf(rv - (float)(0.9 + 0.1 * 5.0 / 3.0)) <= 1.2e-7f);
    CHECK(fabsf(y[0] - (float)(-1.5 / sqrt(1.25 + 1e-5))) < 1e-6f);
    /* A second step compounds the momentum. */
    nn_batchnorm_forward_train(y, &mean, &invstd, &rm, &rv, x, NULL, NULL, 4, 1, 1, 0.1f, 1e-5f);
    CHECK(fabsf(rm - (0.9f * 0.25f + 0.25f)) < 1e-6f);

    /* Two channels of (N=2, C=2, S=2) with gamma and beta: channel 1 reads x[2..3] and x[6..7]. */
    float x2[8] = {0, 2, 10, 10, 4, 6, 30, 30}, y2[8], m2[2], s2[2], g[2] = {2, -1}, b[2] = {1, 0.5f};
    float rm2[2] = {1, 1}, rv2[2] = {2, 2};
    nn_batchnorm_forward_train(y2, m2, s2, rm2, rv2, x2, g, b, 2, 2, 2, 0.5f, 0.0f);
    CHECK(m2[0] == 3.0f && m2[1] == 20.0f);
    CHECK(fabsf(s2[0] - (float)(1.0 / sqrt(5.0))) < 1e-7f && s2[1] == 0.1f);
    CHECK(rm2[0] == 2.0f && rm2[1] == 10.5f);
    CHECK(fabsf(rv2[0] - (1.0f + 0.5f * 20.0f / 3.0f)) < 1e-6f && fabsf(rv2[1] - (1.0f + 0.5f * 400.0f / 3.0f)) < 1e-4f);
    CHECK(fabsf(y2[2] - (-1.0f * -1.0f + 0.5f)) < 1e-6f && fabsf(y2[7] - (-1.0f + 0.5f)) < 1e-6f);

    /* Eval mode: y = (x - rm) / sqrt(rv + eps) * gamma + beta, and the saved statistics are the running ones. */
    float rme[2] = {1, -2}, rve[2] = {4, 0.25f}, ye[8], me[2], ie[2];
    nn_batchnorm_forward_eval(ye, me, ie, x2, g, b, rme, rve, 2, 2, 2, 0.0f);
    CHECK(me[0] == 1 && me[1] == -2 && ie[0] == 0.5f && ie[1] == 2.0f);
    CHECK(ye[1] == (2 - 1) * 0.5f * 2 + 1 && ye[6] == (30 + 2) * 2.0f * -1 + 0.5f);
    CHECK(rme[0] == 1 && rve[1] == 0.25f);
}

/* Naive forward in double from the definitions: (x - mean) / sqrt(var + eps) * gamma + beta. */
static void naive_forward(float *y, const float *x, const float *g, const float *b, int n, int c, int s,
                          int training, const float *rm, const float *rv, float eps) {
    for (int ch = 0; ch < c; ch++) {
        double mu = 0, var = 0;
        if (training) {
            for (int i = 0; i < n; i++)
                for (int t = 0; t < s; t++) mu += x[(i * c + ch) * s + t];
            mu /= (double)n * s;
            for (int i = 0; i < n; i++)
                for (int t = 0; t < s; t++) var += pow(x[(i * c + ch) * s + t] - mu, 2);
            var /= (double)n * s;
        } else {
            mu = rm[ch];
            var = rv[ch];
        }
        for (int i = 0; i < n; i++)
            for (int t = 0; t < s; t++) {
                int at = (i * c + ch) * s + t;
                y[at] = (float)((x[at] - mu) / sqrt(var + eps) * (g ? g[ch] : 1) + (b ? b[ch] : 0));
            }
    }
}

static void test_against_ref(void) {
    /* (N, C, S) shapes: 2-D maps, 1-D (S = 1) with more channels than a block, odd sizes. */
    const int shapes[][3] = {{4, 3, 25}, {8, 6, 1}, {5, 37, 1}, {3, 17, 7}, {2, 1, 9}};
    enum { MAXN = 4 * 3 * 25 + 5 * 37 * 1 + 3 * 17 * 7 };
    float x[MAXN], y[MAXN], yr[MAXN], yn[MAXN], dy[MAXN], dx[MAXN], dxr[MAXN];
    float g[40], b[40], m[40], is[40], mr[40], isr[40], rm[40], rv[40], rmr[40], rvr[40];
    float dg[40], db[40], dgr[40], dbr[40];
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        int n = shapes[k][0], c = shapes[k][1], s = shapes[k][2];
        size_t total = (size_t)n * c * s;
        ctest_fill(x, total, -2, 3);
        ctest_fill(dy, total, -1, 1);
        ctest_fill(g, c, 0.5f, 1.5f);
        ctest_fill(b, c, -1, 1);
        ctest_fill(rm, c, -1, 1);
        ctest_fill(rv, c, 0.5f, 2);
        memcpy(rmr, rm, sizeof rm);
        memcpy(rvr, rv, sizeof rv);
        for (int affine = 0; affine < 2; affine++) {
            const float *gp = affine ? g : NULL, *bp = affine ? b : NULL;
            nn_batchnorm_forward_train(y, m, is, rm, rv, x, gp, bp, n, c, s, 0.1f, 1e-5f);
            nn_batchnorm_forward_train_ref(yr, mr, isr, rmr, rvr, x, gp, bp, n, c, s, 0.1f, 1e-5f);
            naive_forward(yn, x, gp, bp, n, c, s, 1, NULL, NULL, 1e-5f);
            ctest_close("bn train forward vs ref", y, yr, total, 1e-6f, 1e-5f);
            ctest_close("bn train forward vs naive", y, yn, total, 1e-6f, 1e-5f);
            ctest_equal_bits("bn mean vs ref", m, mr, c);
            ctest_equal_bits("bn invstd vs ref", is, isr, c);
            ctest_close("bn running_mean vs ref", rm, rmr, c, 1e-7f, 1e-6f);
            ctest_close("bn running_var vs ref", rv, rvr, c, 1e-7f, 1e-6f);
            for (int training = 0; training < 2; training++) {
                if (!training) nn_batchnorm_forward_eval(y, m, is, x, gp, bp, rm, rv, n, c, s, 1e-5f);
                else nn_batchnorm_forward_train(y, m, is, NULL, NULL, x, gp, bp, n, c, s, 0.1f, 1e-5f);
                if (!training) {
                    naive_forward(yn, x, gp, bp, n, c, s, 0, rm, rv, 1e-5f);
                    ctest_close("bn eval forward vs naive", y, yn, total, 1e-6f, 1e-5f);
                }
                memset(dg, 0, sizeof dg); memset(db, 0, sizeof db);
                memset(dgr, 0, sizeof dgr); memset(dbr, 0, sizeof dbr);
                nn_batchnorm_backward(dx, dg, db, dy, x, gp, m, is, n, c, s, training);
                nn_batchnorm_backward_ref(dxr, dgr, dbr, dy, x, gp, m, is, n, c, s, training);
                ctest_close("bn backward dx vs ref", dx, dxr, total, 1e-6f, 1e-4f);
                ctest_close("bn backward dgamma vs ref", dg, dgr, c, 1e-6f, 1e-5f);
                ctest_close("bn backward dbeta vs ref", db, dbr, c, 1e-6f, 1e-5f);
            }
        }
    }
}

/* L = sum(y * R) in the given mode; running statistics are left alone (null) in training mode. */
static double bn_loss(const float *x, const float *g, const float *b, const float *rm, const float *rv,
                      const float *r, float *y, int n, int c, int s, int training) {
    float m[16], is[16];
    if (training) nn_batchnorm_forward_train(y, m, is, NULL, NULL, x, g, b, n, c, s, 0.1f, 1e-5f);
    else nn_batchnorm_forward_eval(y, m, is, x, g, b, rm, rv, n, c, s, 1e-5f);
    double l = 0;
    for (long i = 0; i < (long)n * c * s; i++) l += (double)y[i] * r[i];
    return l;
}

/* Central differences of L in x, gamma and beta against the backward kernel. */
static void check_gradients(int n, int c, int s, int training) {
    enum { MAXN = 256 };
    size_t total = (size_t)n * c * s;
    float x[MAXN], r[MAXN], y[MAXN], dx[MAXN], num[MAXN], g[16], b[16], rm[16], rv[16];
    float m[16], is[16], dg[16], db[16], ng[16], nb[16];
    ctest_fill(x, total, -2, 2);
    ctest_fill(r, total, -1, 1);
    ctest_fill(g, c, 0.5f, 1.5f);
    ctest_fill(b, c, -1, 1);
    ctest_fill(rm, c, -0.5f, 0.5f);
    ctest_fill(rv, c, 0.5f, 2);
    if (training) nn_batchnorm_forward_train(y, m, is, NULL, NULL, x, g, b, n, c, s, 0.1f, 1e-5f);
    else nn_batchnorm_forward_eval(y, m, is, x, g, b, rm, rv, n, c, s, 1e-5f);
    /* Non-zero starting values: dgamma and dbeta must accumulate on top of them. */
    for (int ch = 0; ch < c; ch++) { dg[ch] = 1.0f; db[ch] = -1.0f; }
    nn_batchnorm_backward(dx, dg, db, r, x, g, m, is, n, c, s, training);
    for (int ch = 0; ch < c; ch++) { dg[ch] -= 1.0f; db[ch] += 1.0f; }
    const float h = 1e-2f;
    for (size_t i = 0; i < total; i++) {
        float keep = x[i];
        x[i] = keep + h;
        double lp = bn_loss(x, g, b, rm, rv, r, y, n, c, s, training);
        x[i] = keep - h;
        double lm = bn_loss(x, g, b, rm, rv, r, y, n, c, s, training);
        x[i] = keep;
        num[i] = (float)((lp - lm) / (2.0 * h));
    }
    for (int ch = 0; ch < c; ch++) {
        float *params[2] = {g, b}, *out[2] = {ng, nb};
        for (int which = 0; which < 2; which++) {
            float keep = params[which][ch];
            params[which][ch] = keep + h;
            double lp = bn_loss(x, g, b, rm, rv, r, y, n, c, s, training);
            params[which][ch] = keep - h;
            double lm = bn_loss(x, g, b, rm, rv, r, y, n, c, s, training);
            params[which][ch] = keep;
            out[which][ch] = (float)((lp - lm) / (2.0 * h));
        }
    }
    const char *mode = training ? "train" : "eval";
    char what[64];
    snprintf(what, sizeof what, "bn %s dx (%d,%d,%d)", mode, n, c, s);
    ctest_close(what, dx, num, total, 2e-3f, 1e-2f);
    snprintf(what, sizeof what, "bn %s dgamma (%d,%d,%d)", mode, n, c, s);
    ctest_close(what, dg, ng, c, 2e-3f, 1e-2f);
    snprintf(what, sizeof what, "bn %s dbeta (%d,%d,%d)", mode, n, c, s);
    ctest_close(what, db, nb, c, 2e-3f, 1e-2f);
}

static void test_gradients(void) {
    for (int training = 0; training < 2; training++) {
        check_gradients(4, 3, 5, training);
        check_gradients(8, 6, 1, training);
        check_gradients(2, 2, 3, training);
    }
    /* Without gamma, beta the gradient is the gamma = 1 one; dgamma, dbeta may be skipped. */
    float x[12], dy[12], y[12], m[3], is[3], dx1[12], dx2[12], dg[3] = {0}, ones[3] = {1, 1, 1};
    ctest_fill(x, 12, -1, 1);
    ctest_fill(dy, 12, -1, 1);
    nn_batchnorm_forward_train(y, m, is, NULL, NULL, x, NULL, NULL, 2, 3, 2, 0.1f, 1e-5f);
    nn_batchnorm_backward(dx1, NULL, NULL, dy, x, NULL, m, is, 2, 3, 2, 1);
    nn_batchnorm_backward(dx2, dg, NULL, dy, x, ones, m, is, 2, 3, 2, 1);
    ctest_equal_bits("bn affine=false backward", dx1, dx2, 12);
    /* The sum over a channel of the training-mode dx is zero: the mean absorbs any shift. */
    double sum = 0;
    for (int i = 0; i < 2; i++)
        for (int t = 0; t < 2; t++) sum += dx1[(i * 3 + 1) * 2 + t];
    CHECK(fabs(sum) < 1e-5);
}

static void test_threads(void) {
    /* Past NN_PARALLEL_MIN, in both layouts: many channels of S = 1 and few channels of large S. */
    const int shapes[][3] = {{64, 600, 1}, {8, 5, 1031}};
    for (int k = 0; k < 2; k++) {
        int n = shapes[k][0], c = shapes[k][1], s = shapes[k][2];
        size_t total = (size_t)n * c * s;
        float *x = malloc(total * 4), *dy = malloc(total * 4), *g = malloc(c * 4), *b = malloc(c * 4);
        float *y[2], *dx[2], *m[2], *is[2], *rm[2], *rv[2], *dg[2], *db[2], *ye[2], *dxe[2];
        ctest_fill(x, total, -3, 5);
        ctest_fill(dy, total, -1, 1);
        ctest_fill(g, c, 0.5f, 1.5f);
        ctest_fill(b, c, -1, 1);
        for (int t = 0; t < 2; t++) {
            y[t] = malloc(total * 4); dx[t] = malloc(total * 4); ye[t] = malloc(total * 4); dxe[t] = malloc(total * 4);
            m[t] = malloc(c * 4); is[t] = malloc(c * 4); rm[t] = calloc(c, 4); rv[t] = malloc(c * 4);
            dg[t] = calloc(c, 4); db[t] = calloc(c, 4);
            for (int ch = 0; ch < c; ch++) rv[t][ch] = 1.0f;
            nn_set_num_threads(t + 1);
            nn_batchnorm_forward_train(y[t], m[t], is[t], rm[t], rv[t], x, g, b, n, c, s, 0.1f, 1e-5f);
            nn_batchnorm_backward(dx[t], dg[t], db[t], dy, x, g, m[t], is[t], n, c, s, 1);
            nn_batchnorm_forward_eval(ye[t], m[t], is[t], x, g, b, rm[t], rv[t], n, c, s, 1e-5f);
            nn_batchnorm_backward(dxe[t], dg[t], db[t], dy, x, g, m[t], is[t], n, c, s, 0);
        }
        nn_set_num_threads(0);
        ctest_equal_bits("bn train y threads", y[0], y[1], total);
        ctest_equal_bits("bn running_mean threads", rm[0], rm[1], c);
        ctest_equal_bits("bn running_var threads", rv[0], rv[1], c);
        ctest_equal_bits("bn train dx threads", dx[0], dx[1], total);
        ctest_equal_bits("bn eval y threads", ye[0], ye[1], total);
        ctest_equal_bits("bn eval dx threads", dxe[0], dxe[1], total);
        ctest_equal_bits("bn dgamma threads", dg[0], dg[1], c);
        ctest_equal_bits("bn dbeta threads", db[0], db[1], c);
        /* y aliasing x gives the same result as a separate output. */
        float *xa = malloc(total * 4), *ma = malloc(c * 4), *ia = malloc(c * 4);
        memcpy(xa, x, total * 4);
        nn_batchnorm_forward_train(xa, ma, ia, NULL, NULL, xa, g, b, n, c, s, 0.1f, 1e-5f);
        ctest_equal_bits("bn in place", xa, y[0], total);
        free(xa); free(ma); free(ia);
        free(x); free(dy); free(g); free(b);
        for (int t = 0; t < 2; t++) {
            free(y[t]); free(dx[t]); free(ye[t]); free(dxe[t]); free(m[t]); free(is[t]);
            free(rm[t]); free(rv[t]); free(dg[t]); free(db[t]);
        }
    }
}

static void suite(void) {
    test_known_values();
    test_against_ref();
    test_gradients();
    test_threads();
}

int main(void) { return ctest_run_levels("test_batchnorm", suite); }
