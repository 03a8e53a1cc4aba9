/* conv2d: the fast kernels against the direct reference loops over many geometries, central finite
 * differences of backward, accumulate semantics, thread-count independence, and PyTorch's goldens. */
#include "ctest.h"

typedef struct {
    const char *name;
    nn_conv2d_params p;
} conv_case;

/* n, c_in, h, w, c_out, kh, kw, stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right, dil_h, dil_w, groups */
static const conv_case cases[] = {
    {"k1 s1 p0 (pointwise)", {2, 8, 7, 7, 6, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1}},
    {"k1 s1 p0 groups 2", {2, 8, 5, 6, 6, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 2}},
    {"k1 s2 p0", {2, 5, 9, 8, 4, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1}},
    {"k1 s1 p1", {1, 3, 5, 5, 4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
    {"k3 s1 p1", {2, 3, 7, 7, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
    {"k3 s1 p1 N1", {1, 5, 11, 9, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
    {"k3 s2 p1", {2, 3, 7, 7, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1}},
    {"k3 s2 p1 even", {3, 4, 8, 10, 5, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1}},
    {"k5 s1 p2", {2, 3, 7, 7, 4, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 1}},
    {"k3 d2 p2", {2, 3, 7, 7, 4, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1}},
    {"k3x1 s2x1 p(1,0)", {2, 3, 7, 7, 4, 3, 1, 2, 1, 1, 1, 0, 0, 1, 1, 1}},
    {"k2x4 asym pad", {2, 3, 6, 9, 5, 2, 4, 1, 1, 0, 1, 2, 1, 1, 1, 1}},
    {"k3 asym pad s2", {2, 4, 9, 7, 3, 3, 3, 2, 2, 2, 0, 0, 1, 1, 1, 1}},
    {"k3 s2 p0 remainder dropped", {2, 3, 8, 8, 4, 3, 3, 2, 2, 0, 0, 0, 0, 1, 1, 1}},
    {"k4 s3 d2 remainder", {2, 2, 13, 12, 3, 4, 2, 3, 2, 1, 0, 0, 2, 2, 3, 1}},
    {"groups 2", {2, 4, 7, 7, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2}},
    {"groups 3 s2 d2", {2, 6, 9, 8, 9, 3, 3, 2, 2, 2, 1, 1, 2, 2, 1, 3}},
    {"depthwise k3 p1", {2, 4, 7, 7, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4}},
    {"depthwise k5 s2 d2 asym", {3, 5, 11, 10, 5, 5, 3, 2, 2, 3, 1, 0, 2, 2, 1, 5}},
    {"depthwise x2 multiplier", {2, 3, 6, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3}},
    {"depthwise k1", {2, 4, 5, 5, 4, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 4}},
    {"kernel covers image", {2, 2, 3, 4, 3, 3, 4, 1, 1, 0, 0, 0, 0, 1, 1, 1}},
    {"odd sizes 1xW", {3, 3, 1, 13, 2, 1, 3, 1, 2, 0, 0, 1, 1, 1, 1, 1}},
    {"many channels, tail panel in chunks", {1, 40, 5, 6, 33, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1}},
    {"kernel of 272 taps", {1, 2, 18, 17, 3, 17, 16, 1, 1, 1, 0, 0, 1, 1, 1, 1}},
    {"k3 p1 s1 N1 tiny", {1, 1, 2, 2, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
    /* 3x3 stride 1 shapes for Winograd's edges: partial tiles, runs of tiles across rows and images. */
    {"k3 s1 asym pad (0,3,2,1)", {2, 5, 9, 11, 9, 3, 3, 1, 1, 0, 3, 2, 1, 1, 1, 1}},
    {"k3 s1 p0 odd sizes", {3, 6, 5, 13, 11, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1}},
    {"k3 s1 p3 (wider than the kernel)", {1, 4, 6, 6, 5, 3, 3, 1, 1, 3, 3, 3, 3, 1, 1, 1}},
    {"k3 s1 p1 one-row images", {2, 3, 1, 17, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
    {"k3 s1 p2 many tiles", {3, 33, 23, 19, 34, 3, 3, 1, 1, 2, 2, 2, 2, 1, 1, 1}},
    {"k3 p(0,2) groups 2 wide", {2, 6, 4, 21, 4, 3, 3, 1, 1, 0, 2, 2, 0, 1, 2, 2}},
    {"rows and k beyond one stack tile", {1, 24, 5, 5, 70, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
    {"one input channel, k5 p2 (LeNet conv1)", {3, 1, 9, 8, 6, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 1}},
    /* Empty inputs the Swift layer admits (debug builds used to abort on them): an empty sum is the bias. */
    {"empty: no input channels", {2, 0, 5, 5, 3, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1}},
    {"empty: no input rows, padded (grid path)", {1, 2, 0, 4, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
    {"empty: no input columns, stride 2 (im2col path)", {2, 2, 4, 0, 3, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1}},
    {"empty: no input rows, depthwise", {1, 3, 0, 4, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 3}},
    {"empty: no output channels", {2, 3, 5, 5, 0, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
    {"empty batch", {0, 3, 5, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
};
enum { NCASES = sizeof cases / sizeof cases[0] };

/* The algorithm under test (suite() runs the tests once per algorithm); AUTO is the default path. */
static nn_conv2d_algorithm algo = NN_CONV2D_AUTO;
static const char *const algo_names[] = {"auto", "direct", "im2col", "winograd"};

static void conv_forward(float *y, const float *x, const float *w, const float *b, float *ws, const nn_conv2d_params *p) {
    nn_conv2d_forward_with(y, x, w, b, ws, p, algo);
}

static void conv_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, float *ws,
                          const nn_conv2d_params *p) {
    nn_conv2d_backward_with(dx, dw, db, dy, x, w, ws, p, algo);
}

typedef struct {
    nn_conv2d_params p;
    int oh, ow;
    size_t nx, nw, ny, nws;
    float *x, *w, *b, *dy, *ws;
} conv_data;

static float *alloc_floats(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

static conv_data conv_make(const nn_conv2d_params *p) {
    conv_data d;
    d.p = *p;
    d.oh = nn_conv2d_out_h(p);
    d.ow = nn_conv2d_out_w(p);
    d.nx = (size_t)p->n * p->c_in * p->h * p->w;
    d.nw = (size_t)p->c_out * (p->c_in / p->groups) * p->kh * p->kw;
    d.ny = (size_t)p->n * p->c_out * d.oh * d.ow;
    d.nws = nn_conv2d_workspace_size_with(p, algo);
    d.x = alloc_floats(d.nx);
    d.w = alloc_floats(d.nw);
    d.b = alloc_floats(p->c_out);
    d.dy = alloc_floats(d.ny);
    d.ws = d.nws ? alloc_floats(d.nws) : NULL; /* a null workspace when none is needed is part of the contract */
    ctest_fill(d.x, d.nx, -1, 1);
    ctest_fill(d.w, d.nw, -1, 1);
    ctest_fill(d.b, p->c_out, -1, 1);
    ctest_fill(d.dy, d.ny, -1, 1);
    for (size_t i = 0; i < d.nws; i++) d.ws[i] = NAN; /* kernels must not read scratch they did not write */
    return d;
}

static void conv_free(conv_data *d) {
    free(d->x); free(d->w); free(d->b); free(d->dy); free(d->ws);
}

static void msg(char *buf, size_t n, const char *name, const char *what) {
    snprintf(buf, n, "%s [%s]: %s", name, algo_names[algo], what);
}

/* Fast against reference: forward with and without bias, backward with every gradient and with each
 * alone, dw/db accumulating onto nonzero starting values. */
static void test_against_reference(const conv_case *cc) {
    conv_data d = conv_make(&cc->p);
    const nn_conv2d_params *p = &d.p;
    char what[128];
    float *y = alloc_floats(d.ny), *yr = alloc_floats(d.ny);
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        ctest_fill(y, d.ny, -9, 9); /* forward must overwrite whatever was there */
        conv_forward(y, d.x, d.w, with_bias ? d.b : NULL, d.ws, p);
        nn_conv2d_forward_ref(yr, d.x, d.w, with_bias ? d.b : NULL, p);
        msg(what, sizeof what, cc->name, with_bias ? "forward with bias" : "forward without bias");
        ctest_close(what, y, yr, d.ny, 1e-5f, 1e-5f);
    }

    float *dx = alloc_floats(d.nx), *dxr = alloc_floats(d.nx);
    float *dw = alloc_floats(d.nw), *dwr = alloc_floats(d.nw), *db = alloc_floats(p->c_out), *dbr = alloc_floats(p->c_out);
    ctest_fill(dx, d.nx, -9, 9);
    ctest_fill(dw, d.nw, -1, 1);
    ctest_fill(db, p->c_out, -1, 1);
    memcpy(dwr, dw, d.nw * sizeof(float));
    memcpy(dbr, db, p->c_out * sizeof(float));
    conv_backward(dx, dw, db, d.dy, d.x, d.w, d.ws, p);
    nn_conv2d_backward_ref(dxr, dwr, dbr, d.dy, d.x, d.w, p);
    msg(what, sizeof what, cc->name, "backward dx");
    ctest_close(what, dx, dxr, d.nx, 1e-5f, 1e-5f);
    msg(what, sizeof what, cc->name, "backward dw (accumulated)");
    ctest_close(what, dw, dwr, d.nw, 1e-4f, 1e-5f);
    msg(what, sizeof what, cc->name, "backward db (accumulated)");
    ctest_close(what, db, dbr, p->c_out, 1e-4f, 1e-5f);

    /* Each gradient alone, the others null (x null too when dw is skipped). */
    float *dx1 = alloc_floats(d.nx), *dw1 = alloc_floats(d.nw), *db1 = alloc_floats(p->c_out);
    float *dw0 = alloc_floats(d.nw), *db0 = alloc_floats(p->c_out);
    conv_backward(dx1, NULL, NULL, d.dy, NULL, d.w, d.ws, p);
    conv_backward(NULL, dw1, NULL, d.dy, d.x, NULL, d.ws, p);
    conv_backward(NULL, NULL, db1, d.dy, NULL, NULL, d.ws, p);
    nn_conv2d_backward_ref(NULL, dw0, db0, d.dy, d.x, d.w, p);
    msg(what, sizeof what, cc->name, "dx alone");
    ctest_close(what, dx1, dxr, d.nx, 1e-5f, 1e-5f);
    msg(what, sizeof what, cc->name, "dw alone");
    ctest_close(what, dw1, dw0, d.nw, 1e-4f, 1e-5f);
    msg(what, sizeof what, cc->name, "db alone");
    ctest_close(what, db1, db0, p->c_out, 1e-4f, 1e-5f);

    /* Twice from zero is twice once: backward adds, it does not assign. */
    conv_backward(NULL, dw1, db1, d.dy, d.x, d.w, d.ws, p);
    for (size_t i = 0; i < d.nw; i++) dw0[i] *= 2;
    for (int i = 0; i < p->c_out; i++) db0[i] *= 2;
    msg(what, sizeof what, cc->name, "dw accumulates over two calls");
    ctest_close(what, dw1, dw0, d.nw, 2e-4f, 1e-5f);
    msg(what, sizeof what, cc->name, "db accumulates over two calls");
    ctest_close(what, db1, db0, p->c_out, 2e-4f, 1e-5f);

    /* Pixels no window reaches get exactly zero gradient (the reference agrees with the formula). */
    int unreached_zero = 1;
    for (int n = 0; n < p->n; n++)
        for (int c = 0; c < p->c_in; c++)
            for (int iy = 0; iy < p->h; iy++)
                for (int ix = 0; ix < p->w; ix++) {
                    int reached = 0;
                    for (int i = 0; i < p->kh && !reached; i++)
                        for (int j = 0; j < p->kw && !reached; j++) {
                            int ty = iy + p->pad_top - i * p->dil_h, tx = ix + p->pad_left - j * p->dil_w;
                            reached = ty >= 0 && tx >= 0 && ty % p->stride_h == 0 && tx % p->stride_w == 0 &&
                                      ty / p->stride_h < d.oh && tx / p->stride_w < d.ow;
                        }
                    if (!reached) unreached_zero &= dx[(((size_t)n * p->c_in + c) * p->h + iy) * p->w + ix] == 0.0f;
                }
    CHECK(unreached_zero);

    free(y); free(yr); free(dx); free(dxr); free(dw); free(dwr); free(db); free(dbr);
    free(dx1); free(dw1); free(db1); free(dw0); free(db0);
    conv_free(&d);
}

/* L = sum(y * R) with R = dy; central differences in double of L against backward's gradients.
 * Convolution is linear in x, w and b, so the step can be large and the only error is float rounding. */
static double loss_of(conv_data *d, float *y) {
    conv_forward(y, d->x, d->w, d->b, d->ws, &d->p);
    double s = 0;
    for (size_t i = 0; i < d->ny; i++) s += (double)y[i] * d->dy[i];
    return s;
}

/* Central differences of L for (up to about 100 evenly spread) elements of v; compares against the
 * analytic gradient g at the same indices. */
static void check_numeric_grad(const char *what, const float *g, float *v, size_t n, conv_data *d, float *y) {
    const float h = 0.25f;
    const size_t step = n > 100 ? n / 100 : 1;
    float num[128], ana[128];
    int m = 0;
    for (size_t i = 0; i < n && m < 128; i += step, m++) {
        float keep = v[i];
        v[i] = keep + h;
        double lp = loss_of(d, y);
        v[i] = keep - h;
        double lm = loss_of(d, y);
        v[i] = keep;
        num[m] = (float)((lp - lm) / (2.0 * h));
        ana[m] = g[i];
    }
    ctest_close(what, ana, num, (size_t)m, 1e-4f, 1e-3f);
}

static void test_finite_differences(const conv_case *cc) {
    conv_data d = conv_make(&cc->p);
    const nn_conv2d_params *p = &d.p;
    char what[128];
    float *y = alloc_floats(d.ny);
    float *dx = alloc_floats(d.nx), *dw = alloc_floats(d.nw), *db = alloc_floats(p->c_out);
    conv_backward(dx, dw, db, d.dy, d.x, d.w, d.ws, p);
    msg(what, sizeof what, cc->name, "finite differences dx");
    check_numeric_grad(what, dx, d.x, d.nx, &d, y);
    msg(what, sizeof what, cc->name, "finite differences dw");
    check_numeric_grad(what, dw, d.w, d.nw, &d, y);
    msg(what, sizeof what, cc->name, "finite differences db");
    check_numeric_grad(what, db, d.b, p->c_out, &d, y);
    free(y); free(dx); free(dw); free(db);
    conv_free(&d);
}

/* The stride-1 and depthwise kernels give every output to one thread, so 1 and 2 threads agree to the
 * bit; sizes are large enough that the loops really fork. The strided path goes through OpenBLAS and is
 * only compared for closeness (db is exact everywhere). */
static void test_thread_independence(void) {
    static const conv_case big[] = {
        {"threads depthwise", {2, 16, 20, 18, 16, 3, 3, 1, 2, 1, 1, 1, 0, 1, 1, 16}},
        {"threads k3 s1 p1", {2, 12, 20, 18, 10, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
        {"threads k3 s1 p1 (winograd by default)", {3, 32, 19, 22, 33, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
        {"threads k1 groups 2", {3, 16, 15, 17, 10, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 2}},
        {"threads k3 s2 d2 groups 2", {3, 8, 24, 21, 6, 3, 3, 2, 2, 2, 1, 1, 2, 2, 1, 2}},
        /* Channels across lanes: two packed blocks with a partial vector, a partial last tile of positions. */
        {"threads k3 s2 p1 groups 1", {3, 16, 21, 20, 70, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1}},
        {"threads k7 s2 p3 stem", {2, 3, 30, 27, 20, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1}},
    };
    for (size_t k = 0; k < sizeof big / sizeof big[0]; k++) {
        if (!nn_conv2d_algorithm_applies(&big[k].p, algo)) continue;
        conv_data d = conv_make(&big[k].p);
        const nn_conv2d_params *p = &d.p;
        float *y[2], *dx[2], *dw[2], *db[2];
        for (int t = 0; t < 2; t++) {
            nn_set_num_threads(t + 1);
            y[t] = alloc_floats(d.ny); dx[t] = alloc_floats(d.nx); dw[t] = alloc_floats(d.nw); db[t] = alloc_floats(p->c_out);
            conv_forward(y[t], d.x, d.w, d.b, d.ws, p);
            conv_backward(dx[t], dw[t], db[t], d.dy, d.x, d.w, d.ws, p);
        }
        nn_set_num_threads(0);
        char what[128];
        int exact = algo != NN_CONV2D_IM2COL &&
                    ((p->stride_h == 1 && p->stride_w == 1) || (p->groups == p->c_in && p->groups == p->c_out));
        /* The strided forward pass is a direct kernel too (on phase planes, or channels across lanes with
         * groups 1): exact; its backward pass goes through OpenBLAS. */
        int exact_fwd = exact || (algo != NN_CONV2D_IM2COL && nn_conv2d_auto_algorithm(p) == NN_CONV2D_DIRECT);
        msg(what, sizeof what, big[k].name, "db on 1 and 2 threads");
        ctest_equal_bits(what, db[0], db[1], p->c_out);
        if (exact) {
            msg(what, sizeof what, big[k].name, "forward on 1 and 2 threads");
            ctest_equal_bits(what, y[0], y[1], d.ny);
            msg(what, sizeof what, big[k].name, "dx on 1 and 2 threads");
            ctest_equal_bits(what, dx[0], dx[1], d.nx);
            msg(what, sizeof what, big[k].name, "dw on 1 and 2 threads");
            ctest_equal_bits(what, dw[0], dw[1], d.nw);
        } else {
            msg(what, sizeof what, big[k].name, "forward on 1 and 2 threads");
            if (exact_fwd) ctest_equal_bits(what, y[0], y[1], d.ny);
            else ctest_close(what, y[0], y[1], d.ny, 1e-5f, 1e-5f);
            msg(what, sizeof what, big[k].name, "dx on 1 and 2 threads");
            ctest_close(what, dx[0], dx[1], d.nx, 1e-5f, 1e-5f);
            msg(what, sizeof what, big[k].name, "dw on 1 and 2 threads");
            ctest_close(what, dw[0], dw[1], d.nw, 1e-4f, 1e-5f);
        }
        /* The fast paths against the reference at a size where the loops are split. */
        float *yr = alloc_floats(d.ny), *dxr = alloc_floats(d.nx), *dwr = alloc_floats(d.nw), *dbr = alloc_floats(p->c_out);
        nn_conv2d_forward_ref(yr, d.x, d.w, d.b, p);
        nn_conv2d_backward_ref(dxr, dwr, dbr, d.dy, d.x, d.w, p);
        msg(what, sizeof what, big[k].name, "forward vs reference");
        ctest_close(what, y[1], yr, d.ny, 1e-5f, 1e-5f);
        msg(what, sizeof what, big[k].name, "dx vs reference");
        ctest_close(what, dx[1], dxr, d.nx, 1e-5f, 1e-5f);
        msg(what, sizeof what, big[k].name, "dw vs reference");
        ctest_close(what, dw[1], dwr, d.nw, 1e-3f, 1e-5f);
        msg(what, sizeof what, big[k].name, "db vs reference");
        ctest_close(what, db[1], dbr, p->c_out, 1e-3f, 1e-5f);
        free(yr); free(dxr); free(dwr); free(dbr);
        for (int t = 0; t < 2; t++) { free(y[t]); free(dx[t]); free(dw[t]); free(db[t]); }
        conv_free(&d);
    }
}

/* ---- PyTorch goldens (Tests/Fixtures/golden, ../shared/golden/README.md) --------------------- */

/* The F32 tensor `key` of a safetensors file held in memory, or null. Enough JSON for these files:
 * the header maps each quoted key to {"dtype":..,"shape":[..],"data_offsets":[begin,end]}. */
static const float *st_tensor(const char *buf, size_t size, const char *key, size_t *count) {
    uint64_t hlen;
    if (size < 8) return NULL;
    memcpy(&hlen, buf, 8);
    char pat[96];
    snprintf(pat, sizeof pat, "\"%s\":{", key);
    const char *hdr = buf + 8, *hit = NULL;
    for (const char *s = hdr; (s = strstr(s, pat)) && s < hdr + hlen; s++) hit = s;
    if (!hit) return NULL;
    const char *offs = strstr(hit, "\"data_offsets\":[");
    if (!offs) return NULL;
    unsigned long long b, e;
    if (sscanf(offs, "\"data_offsets\":[%llu,%llu]", &b, &e) != 2 || 8 + hlen + e > size) return NULL;
    *count = (size_t)(e - b) / 4;
    return (const float *)(buf + 8 + hlen + b);
}

static char *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    *size = fread(buf, 1, (size_t)n, f);
    buf[*size] = 0; /* strstr over the header stops here at worst */
    fclose(f);
    return buf;
}

static void test_goldens(void) {
    static const conv_case golden[] = {
        {"conv2d_k3_s1_p1", {2, 3, 7, 7, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
        {"conv2d_k3_s2_p1", {2, 3, 7, 7, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1}},
        {"conv2d_k5_s1_p2", {2, 3, 7, 7, 4, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 1}},
        {"conv2d_k3_d2_p2", {2, 3, 7, 7, 4, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1}},
        {"conv2d_depthwise_k3_p1", {2, 4, 7, 7, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4}},
        {"conv2d_1x1", {2, 8, 7, 7, 6, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1}},
        {"conv2d_k3x1_s2x1", {2, 3, 7, 7, 4, 3, 1, 2, 1, 1, 1, 0, 0, 1, 1, 1}},
    };
    int found = 0;
    for (size_t k = 0; k < sizeof golden / sizeof golden[0]; k++) {
        if (!nn_conv2d_algorithm_applies(&golden[k].p, algo)) continue;
        char path[256];
        snprintf(path, sizeof path, "Tests/Fixtures/golden/%s.safetensors", golden[k].name);
        size_t size = 0;
        char *buf = read_file(path, &size);
        if (!buf) continue;
        found++;
        conv_data d = conv_make(&golden[k].p);
        const nn_conv2d_params *p = &d.p;
        size_t nx, nw, nb, ny, nr, ngx, ngw, ngb;
        const float *x = st_tensor(buf, size, "x", &nx), *w = st_tensor(buf, size, "param.weight", &nw);
        const float *b = st_tensor(buf, size, "param.bias", &nb), *yt = st_tensor(buf, size, "y", &ny);
        const float *r = st_tensor(buf, size, "R", &nr), *gx = st_tensor(buf, size, "grad.x", &ngx);
        const float *gw = st_tensor(buf, size, "grad.param.weight", &ngw), *gb = st_tensor(buf, size, "grad.param.bias", &ngb);
        int shapes = x && w && b && yt && r && gx && gw && gb && nx == d.nx && nw == d.nw && nb == (size_t)p->c_out &&
                     ny == d.ny && nr == d.ny && ngx == d.nx && ngw == d.nw && ngb == (size_t)p->c_out;
        CHECK(shapes);
        if (shapes) {
            char what[128];
            memcpy(d.x, x, nx * 4); memcpy(d.w, w, nw * 4); memcpy(d.b, b, nb * 4); memcpy(d.dy, r, nr * 4);
            float *y = alloc_floats(d.ny), *dx = alloc_floats(d.nx), *dw = alloc_floats(d.nw), *db = alloc_floats(nb);
            conv_forward(y, d.x, d.w, d.b, d.ws, p);
            conv_backward(dx, dw, db, d.dy, d.x, d.w, d.ws, p);
            msg(what, sizeof what, golden[k].name, "golden y");
            ctest_close(what, y, yt, d.ny, 1e-6f, 1e-5f);
            msg(what, sizeof what, golden[k].name, "golden grad.x");
            ctest_close(what, dx, gx, d.nx, 1e-5f, 1e-4f);
            msg(what, sizeof what, golden[k].name, "golden grad.param.weight");
            ctest_close(what, dw, gw, d.nw, 1e-5f, 1e-4f);
            msg(what, sizeof what, golden[k].name, "golden grad.param.bias");
            ctest_close(what, db, gb, nb, 1e-5f, 1e-4f);
            free(y); free(dx); free(dw); free(db);
        }
        conv_free(&d);
        free(buf);
    }
    if (!found && algo == NN_CONV2D_AUTO) printf("test_conv2d: no goldens under Tests/Fixtures/golden (run from the repository root); skipped\n");
}

static void test_geometry(void) {
    nn_conv2d_params p = {1, 3, 7, 7, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1};
    CHECK(nn_conv2d_out_h(&p) == 4 && nn_conv2d_out_w(&p) == 4);
    nn_conv2d_params q = {1, 3, 8, 9, 4, 3, 2, 2, 3, 0, 1, 2, 0, 2, 1, 1};
    /* (8 + 1 - 4 - 1)/2 + 1 = 3; (9 + 2 - 1 - 1)/3 + 1 = 4 */
    CHECK(nn_conv2d_out_h(&q) == 3 && nn_conv2d_out_w(&q) == 4);
    nn_conv2d_params dwc = {2, 8, 5, 5, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 8};
    CHECK(nn_conv2d_workspace_size(&dwc) == 0); /* depthwise needs no scratch: the test passes null */
}

/* The empty cases above against known values, not only against the reference. */
static void test_empty_sums(void) {
    /* No input channels: y = bias everywhere; db = sum of dy; dw (empty) and dx (empty) untouched. */
    nn_conv2d_params p = {2, 0, 5, 5, 3, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1};
    float y[2 * 3 * 3 * 3], bias[3] = {1, -2, 0.5f}, dy[2 * 3 * 3 * 3], db[3] = {0, 0, 0}, w[1] = {0}, x[1] = {0};
    size_t ws = nn_conv2d_workspace_size(&p);
    float *work = calloc(ws ? ws : 1, sizeof(float));
    for (int i = 0; i < 54; i++) { y[i] = NAN; dy[i] = 1; }
    conv_forward(y, x, w, bias, work, &p);
    int ok = 1;
    for (int i = 0; i < 54; i++) ok &= y[i] == bias[i / 9 % 3];
    CHECK(ok);
    conv_backward(NULL, NULL, db, dy, x, w, work, &p);
    CHECK(db[0] == 18 && db[1] == 18 && db[2] == 18);
    conv_forward(y, x, w, NULL, work, &p);
    ok = 1;
    for (int i = 0; i < 54; i++) ok &= y[i] == 0;
    CHECK(ok);
    free(work);

    /* No input rows but padding 1: one output row per image, all bias; dw gains nothing. */
    nn_conv2d_params q = {1, 2, 0, 4, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    CHECK(nn_conv2d_out_h(&q) == 1 && nn_conv2d_out_w(&q) == 5);
    float y2[15], dy2[15], w2[24], dw2[24], db2[3] = {0, 0, 0};
    for (int i = 0; i < 24; i++) { w2[i] = 1; dw2[i] = 0.25f; }
    for (int i = 0; i < 15; i++) { y2[i] = NAN; dy2[i] = 2; }
    ws = nn_conv2d_workspace_size(&q);
    work = calloc(ws ? ws : 1, sizeof(float));
    conv_forward(y2, x, w2, bias, work, &q);
    ok = 1;
    for (int i = 0; i < 15; i++) ok &= y2[i] == bias[i / 5];
    CHECK(ok);
    conv_backward(x, dw2, db2, dy2, x, w2, work, &q);
    ok = 1;
    for (int i = 0; i < 24; i++) ok &= dw2[i] == 0.25f;
    CHECK(ok && db2[0] == 10 && db2[1] == 10 && db2[2] == 10);
    free(work);

    /* No output channels: nothing reads x, so dx is zero. */
    nn_conv2d_params r = {1, 2, 3, 3, 0, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    float dx3[18], x3[18];
    for (int i = 0; i < 18; i++) { dx3[i] = NAN; x3[i] = 1; }
    ws = nn_conv2d_workspace_size(&r);
    work = calloc(ws ? ws : 1, sizeof(float));
    conv_backward(dx3, NULL, NULL, dy, x3, w, work, &r);
    ok = 1;
    for (int i = 0; i < 18; i++) ok &= dx3[i] == 0;
    CHECK(ok);
    free(work);
}

/* Output sizes in 64 bits: values near INT_MAX used to overflow int and wrap into plausible sizes. */
static void test_output_size_overflow(void) {
    /* Dilation 2^31 - 1 with a 3-tap kernel spans about 2^32 rows: no output, not a wrapped count. */
    nn_conv2d_params p = {1, 1, 4, 4, 1, 3, 3, 1, 1, 0, 0, 0, 0, 2147483647, 1, 1};
    CHECK(nn_conv2d_out_h(&p) <= 0);
    /* Padding 2^31 - 1 on both sides: about 2^32 rows, more than int holds: saturates at INT_MAX. */
    nn_conv2d_params q = {1, 1, 4, 4, 1, 3, 3, 1, 1, 2147483647, 2147483647, 0, 0, 1, 1, 1};
    CHECK(nn_conv2d_out_h(&q) == 2147483647 && nn_conv2d_out_w(&q) == 2);
    nn_conv2d_params big_stride = {1, 1, 4, 4, 1, 3, 3, 2147483647, 1, 2147483647, 0, 0, 0, 1, 1, 1};
    CHECK(nn_conv2d_out_h(&big_stride) == 2);
}

/* Which algorithms apply, and what AUTO picks. */
static void test_algorithm_choice(void) {
    nn_conv2d_params mid = {2, 64, 28, 28, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    CHECK(nn_conv2d_auto_algorithm(&mid) == NN_CONV2D_WINOGRAD);
    nn_conv2d_params small = {2, 3, 32, 32, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    CHECK(nn_conv2d_auto_algorithm(&small) == NN_CONV2D_DIRECT);
    nn_conv2d_params sixteen = {2, 16, 28, 28, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    CHECK(nn_conv2d_auto_algorithm(&sixteen) == NN_CONV2D_DIRECT);
    nn_conv2d_params s2 = {2, 64, 28, 28, 128, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1};
    CHECK(!nn_conv2d_algorithm_applies(&s2, NN_CONV2D_WINOGRAD) && nn_conv2d_algorithm_applies(&s2, NN_CONV2D_IM2COL));
    CHECK(nn_conv2d_auto_algorithm(&s2) == NN_CONV2D_DIRECT); /* channels across the vector lanes */
    /* A large strided image keeps the phase planes (one copy of the batch), not 16 padded copies of it
     * (the backward's im2col columns, 9 * 64 * 256 * 256 floats, are then the largest part). */
    nn_conv2d_params big = {1, 64, 512, 512, 64, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1};
    CHECK(nn_conv2d_workspace_size(&big) < (size_t)4 * 64 * 514 * 514);
    nn_conv2d_params huge = {1, 2, 20, 20, 2, 17, 17, 1, 1, 0, 0, 0, 0, 1, 1, 1};
    CHECK(!nn_conv2d_algorithm_applies(&huge, NN_CONV2D_DIRECT) && nn_conv2d_auto_algorithm(&huge) == NN_CONV2D_IM2COL);
    nn_conv2d_params dil = {2, 64, 28, 28, 64, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1};
    CHECK(!nn_conv2d_algorithm_applies(&dil, NN_CONV2D_WINOGRAD) && nn_conv2d_auto_algorithm(&dil) == NN_CONV2D_DIRECT);
    nn_conv2d_params grouped = {2, 64, 28, 28, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2};
    CHECK(!nn_conv2d_algorithm_applies(&grouped, NN_CONV2D_WINOGRAD));
    nn_conv2d_params k5 = {2, 64, 28, 28, 64, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 1};
    CHECK(!nn_conv2d_algorithm_applies(&k5, NN_CONV2D_WINOGRAD));
}

static void suite(void) {
    algo = NN_CONV2D_AUTO;
    test_geometry();
    test_output_size_overflow();
    test_empty_sums();
    test_algorithm_choice();
    /* Every algorithm on every case it applies to: the same references, finite differences and goldens. */
    for (algo = NN_CONV2D_AUTO; algo <= NN_CONV2D_WINOGRAD; algo++) {
        for (int k = 0; k < NCASES; k++)
            if (nn_conv2d_algorithm_applies(&cases[k].p, algo)) test_against_reference(&cases[k]);
        for (int k = 0; k < NCASES; k++)
            if (nn_conv2d_algorithm_applies(&cases[k].p, algo)) test_finite_differences(&cases[k]);
        test_thread_independence();
        test_goldens();
    }
    algo = NN_CONV2D_AUTO;
}

int main(void) { return ctest_run_levels("test_conv2d", suite); }
