/* Recurrent kernels: the fast forward and backward against the per-element double reference loops for
 * every cell, with and without lengths (sorted and not), both directions, strided output, no bias;
 * zeros at padded steps; accumulate semantics; thread-count independence; and central finite
 * differences of a double-precision forward written here, independently of the kernels. */
#include "ctest.h"

static int fused_now = 1;
static const char *cell_name(nn_rnn_cell c) {
    static const char *names[] = {"rnn_tanh", "rnn_relu", "lstm", "lstm_peephole", "lstm_coupled", "gru", "gru_reset_before", "gru_simple"};
    static const char *blas[] = {"rnn_tanh (blas)", "rnn_relu (blas)", "lstm (blas)", "lstm_peephole (blas)", "lstm_coupled (blas)", "gru (blas)", "gru_reset_before (blas)", "gru_simple (blas)"};
    return fused_now ? names[c] : blas[c];
}
static int is_lstm(nn_rnn_cell c) { return c == NN_CELL_LSTM || c == NN_CELL_LSTM_PEEPHOLE || c == NN_CELL_LSTM_COUPLED; }
static float *falloc(size_t n) { return calloc(n ? n : 1, sizeof(float)); }
static float *nan_buffer(size_t n) {
    float *b = falloc(n);
    for (size_t i = 0; i < n; i++) b[i] = NAN; /* kernels must not read scratch they did not write */
    return b;
}

/* Everything one configuration needs: inputs, parameters and upstream gradients. */
typedef struct {
    nn_rnn_params p;
    int G, GH;
    size_t nx, ny, ns;
    float *x, *h0, *c0, *w_ih, *w_hh, *b_ih, *b_hh, *w_ci, *w_cf, *w_co, *dy, *dh_n, *dc_n;
    nn_rnn_weights w;
} rnn_case;

static rnn_case make_case(nn_rnn_cell cell, int T, int N, int D, int H, int reverse, const long *lengths, int ldy,
                          int bias, float scale) {
    rnn_case c;
    memset(&c, 0, sizeof c);
    c.p = (nn_rnn_params){.cell = cell, .steps = T, .batch = N, .input = D, .hidden = H, .reverse = reverse,
                          .lengths = lengths, .ldy = ldy, .accumulate_dx = 0};
    c.G = nn_rnn_gate_count(cell);
    c.GH = c.G * H;
    c.nx = (size_t)T * N * D;
    c.ny = (size_t)T * N * ldy;
    c.ns = (size_t)N * H;
    c.x = falloc(c.nx); ctest_fill(c.x, c.nx, -1, 1);
    c.h0 = falloc(c.ns); ctest_fill(c.h0, c.ns, -1, 1);
    c.c0 = falloc(c.ns); ctest_fill(c.c0, c.ns, -1, 1);
    c.w_ih = falloc((size_t)c.GH * D); ctest_fill(c.w_ih, (size_t)c.GH * D, -scale, scale);
    c.w_hh = falloc((size_t)c.GH * H); ctest_fill(c.w_hh, (size_t)c.GH * H, -scale, scale);
    c.b_ih = falloc(c.GH); ctest_fill(c.b_ih, c.GH, -scale, scale);
    c.b_hh = falloc(c.GH); ctest_fill(c.b_hh, c.GH, -scale, scale);
    c.w_ci = falloc(H); ctest_fill(c.w_ci, H, -scale, scale);
    c.w_cf = falloc(H); ctest_fill(c.w_cf, H, -scale, scale);
    c.w_co = falloc(H); ctest_fill(c.w_co, H, -scale, scale);
    c.dy = falloc(c.ny); ctest_fill(c.dy, c.ny, -1, 1);
    c.dh_n = falloc(c.ns); ctest_fill(c.dh_n, c.ns, -1, 1);
    c.dc_n = falloc(c.ns); ctest_fill(c.dc_n, c.ns, -1, 1);
    c.w = (nn_rnn_weights){.w_ih = c.w_ih, .w_hh = c.w_hh, .b_ih = bias ? c.b_ih : NULL, .b_hh = bias ? c.b_hh : NULL,
                           .w_ci = c.w_ci, .w_cf = c.w_cf, .w_co = c.w_co};
    return c;
}

static void free_case(rnn_case *c) {
    free(c->x); free(c->h0); free(c->c0); free(c->w_ih); free(c->w_hh); free(c->b_ih); free(c->b_hh);
    free(c->w_ci); free(c->w_cf); free(c->w_co); free(c->dy); free(c->dh_n); free(c->dc_n);
}

/* Gradient buffers for one backward call. */
typedef struct {
    float *dx, *dh0, *dc0, *w_ih, *w_hh, *b_ih, *b_hh, *w_ci, *w_cf, *w_co;
    nn_rnn_grads g;
} grads;

static grads make_grads(const rnn_case *c) {
    grads g;
    const int H = c->p.hidden;
    g.dx = falloc(c->nx); g.dh0 = falloc(c->ns); g.dc0 = falloc(c->ns);
    g.w_ih = falloc((size_t)c->GH * c->p.input); g.w_hh = falloc((size_t)c->GH * H);
    g.b_ih = falloc(c->GH); g.b_hh = falloc(c->GH);
    g.w_ci = falloc(H); g.w_cf = falloc(H); g.w_co = falloc(H);
    g.g = (nn_rnn_grads){g.w_ih, g.w_hh, g.b_ih, g.b_hh, g.w_ci, g.w_cf, g.w_co};
    return g;
}

static void free_grads(grads *g) {
    free(g->dx); free(g->dh0); free(g->dc0); free(g->w_ih); free(g->w_hh); free(g->b_ih); free(g->b_hh);
    free(g->w_ci); free(g->w_cf); free(g->w_co);
}

typedef struct { float *y, *h_n, *c_n; } outputs;

static outputs make_outputs(const rnn_case *c) {
    outputs o = {falloc(c->ny), falloc(c->ns), falloc(c->ns)};
    for (size_t i = 0; i < c->ny; i++) o.y[i] = 7.0f; /* columns outside [0, H) must stay untouched */
    return o;
}

static void free_outputs(outputs *o) { free(o->y); free(o->h_n); free(o->c_n); }

/* Runs the fast forward (training mode) and backward. */
static void run_fast(const rnn_case *c, outputs *o, grads *g) {
    float *saved = nan_buffer(nn_rnn_saved_size(&c->p));
    float *ws = nan_buffer(nn_rnn_workspace_size(&c->p));
    nn_rnn_forward(o->y, o->h_n, o->c_n, saved, c->x, c->h0, c->c0, &c->w, ws, &c->p);
    for (size_t i = 0; i < nn_rnn_workspace_size(&c->p); i++) ws[i] = NAN;
    if (g) nn_rnn_backward(g->dx, g->dh0, g->dc0, &g->g, c->dy, c->dh_n, c->dc_n, c->x, &c->w, saved, ws, &c->p);
    free(saved);
    free(ws);
}

static void compare_grads(const char *label, const rnn_case *c, const grads *a, const grads *b, float atol, float rtol) {
    char m[256];
    const int H = c->p.hidden;
#define CMP(field, n) do { snprintf(m, sizeof m, "%s %s", label, #field); ctest_close(m, a->field, b->field, n, atol, rtol); } while (0)
    CMP(dx, c->nx); CMP(dh0, c->ns); CMP(w_ih, (size_t)c->GH * c->p.input); CMP(w_hh, (size_t)c->GH * H);
    CMP(b_ih, c->GH); CMP(b_hh, c->GH);
    if (is_lstm(c->p.cell)) CMP(dc0, c->ns);
    if (c->p.cell == NN_CELL_LSTM_PEEPHOLE) { CMP(w_ci, H); CMP(w_cf, H); CMP(w_co, H); }
#undef CMP
}

/* The fast kernels against the reference for one configuration. */
static void check_against_ref(nn_rnn_cell cell, int T, int N, int D, int H, int reverse, const long *lengths, int ldy,
                              int bias, const char *what) {
    /* PyTorch's init scale, U(+-1/sqrt(H)), raised for small H so the gates leave their linear range. */
    const float scale = H < 10 ? 0.6f : 1.0f / sqrtf((float)H);
    rnn_case c = make_case(cell, T, N, D, H, reverse, lengths, ldy, bias, scale);
    char label[256];
    snprintf(label, sizeof label, "%s %s T%d N%d D%d H%d%s", cell_name(cell), what, T, N, D, H, reverse ? " reverse" : "");
    outputs fo = make_outputs(&c), ro = make_outputs(&c);
    grads fg = make_grads(&c), rg = make_grads(&c);
    run_fast(&c, &fo, &fg);
    nn_rnn_forward_ref(ro.y, ro.h_n, ro.c_n, c.x, c.h0, c.c0, &c.w, &c.p);
    nn_rnn_backward_ref(rg.dx, rg.dh0, rg.dc0, &rg.g, c.dy, c.dh_n, c.dc_n, c.x, c.h0, c.c0, &c.w, &c.p);
    char m[300];
    /* A float sum of K random terms strays from the exact one by about sqrt(K) roundings: the bounds
     * widen with the pre-activations' sums past 100 terms (the case with input 600 missed 2e-6 by
     * 1.2e-6 on some draws). */
    const float widen = fmaxf(1.0f, sqrtf((float)(D + H) / 100.0f));
    snprintf(m, sizeof m, "%s y", label);
    ctest_close(m, fo.y, ro.y, c.ny, 2e-6f * widen, 2e-5f * widen);
    snprintf(m, sizeof m, "%s h_n", label);
    ctest_close(m, fo.h_n, ro.h_n, c.ns, 2e-6f * widen, 2e-5f * widen);
    if (is_lstm(cell)) {
        snprintf(m, sizeof m, "%s c_n", label);
        ctest_close(m, fo.c_n, ro.c_n, c.ns, 2e-6f * widen, 2e-5f * widen);
    }
    compare_grads(label, &c, &fg, &rg, 2e-5f * widen, 2e-4f * widen);
    /* Padded steps: y exactly 0, dx exactly 0; columns past H untouched. */
    int pad_ok = 1, cols_ok = 1;
    for (int t = 0; t < T; t++)
        for (int n = 0; n < N; n++) {
            const int len = lengths ? (int)lengths[n] : T;
            for (int j = 0; j < ldy; j++) {
                const float v = fo.y[((size_t)t * N + n) * ldy + j];
                if (j >= H) cols_ok &= v == 7.0f;
                else if (t >= len) pad_ok &= v == 0.0f;
            }
            if (t >= len)
                for (int d = 0; d < D; d++) pad_ok &= fg.dx[((size_t)t * N + n) * D + d] == 0.0f;
        }
    CHECK(pad_ok);
    CHECK(cols_ok);
    free_outputs(&fo); free_outputs(&ro); free_grads(&fg); free_grads(&rg); free_case(&c);
}

static void test_against_reference(void) {
    const long unsorted[5] = {3, 7, 1, 7, 5}, sorted[5] = {7, 6, 4, 2, 1};
    /* The second round has H a multiple of 16: the standard LSTM's forward then takes the input
     * projection into each step's product. */
    for (int whole = 0; whole <= 1; whole++) {
        const int H = whole ? 32 : 9, Hs = whole ? 16 : 17, Ds = whole ? 100 : 5, ldys = whole ? 20 : 40;
        for (int cell = NN_CELL_RNN_TANH; cell <= NN_CELL_GRU_SIMPLE; cell++) {
            for (int reverse = 0; reverse <= 1; reverse++) {
                check_against_ref(cell, 7, 5, 6, H, reverse, NULL, H, 1, "full");
                check_against_ref(cell, 7, 5, 6, H, reverse, unsorted, H, 1, "unsorted lengths");
                check_against_ref(cell, 7, 5, 6, H, reverse, sorted, H, 1, "sorted lengths");
                check_against_ref(cell, 4, 3, Ds, Hs, reverse, NULL, ldys, 0, "strided output, no bias");
                if (!whole) check_against_ref(cell, 1, 1, 3, 1, reverse, NULL, 1, 1, "one step, one unit");
            }
            if (whole) {
                check_against_ref(cell, 3, 2, 0, 16, 0, NULL, 16, 1, "no input features");
                /* Input and hidden sizes multiples of 16: the weight gradients run on our tiles, here over
                 * several row groups, K chunks and column strips (one of a single vector). */
                check_against_ref(cell, 9, 40, 80, 48, 0, NULL, 48, 1, "tiled weight gradients");
                check_against_ref(cell, 7, 5, 16, 32, 1, unsorted, 32, 1, "tiled weight gradients, lengths");
                /* A last row group that ends in a partial tile, in a K chunk of full length (40 x 8 rows):
                 * its packed columns must stay inside the group's share of the scratch. */
                check_against_ref(cell, 40, 8, 16, 16, 0, NULL, 16, 1, "tiled weight gradients, partial tile");
                continue;
            }
            check_against_ref(cell, 0, 3, 4, 5, 0, NULL, 5, 1, "no steps");
            check_against_ref(cell, 3, 0, 4, 5, 0, NULL, 5, 1, "empty batch");
            check_against_ref(cell, 3, 2, 0, 5, 1, NULL, 5, 1, "no input features");
            check_against_ref(cell, 9, 40, 20, 33, 0, NULL, 33, 1, "parallel rows");
            check_against_ref(cell, 3, 5, 600, 7, 1, NULL, 7, 1, "input wider than a K chunk");
        }
    }
}

/* Backward accumulates into parameter gradients (and into dx when asked); null outputs are skipped. */
static void test_accumulate(void) {
    /* H = 16: whole vector blocks (the LSTM then computes dx in its backward loop). */
    for (int H = 6; H <= 16; H += 10) {
        for (int cell = NN_CELL_RNN_TANH; cell <= NN_CELL_GRU_SIMPLE; cell++) {
            rnn_case c = make_case(cell, 5, 3, 4, H, 1, NULL, H, 1, 0.5f);
            outputs o = make_outputs(&c);
            grads once = make_grads(&c), twice = make_grads(&c);
            float *saved = nan_buffer(nn_rnn_saved_size(&c.p)), *ws = nan_buffer(nn_rnn_workspace_size(&c.p));
            nn_rnn_forward(o.y, o.h_n, o.c_n, saved, c.x, c.h0, c.c0, &c.w, ws, &c.p);
            nn_rnn_backward(once.dx, once.dh0, once.dc0, &once.g, c.dy, c.dh_n, c.dc_n, c.x, &c.w, saved, ws, &c.p);
            nn_rnn_backward(twice.dx, twice.dh0, twice.dc0, &twice.g, c.dy, c.dh_n, c.dc_n, c.x, &c.w, saved, ws, &c.p);
            c.p.accumulate_dx = 1;
            nn_rnn_backward(twice.dx, twice.dh0, twice.dc0, &twice.g, c.dy, c.dh_n, c.dc_n, c.x, &c.w, saved, ws, &c.p);
            int ok = 1;
            for (size_t i = 0; i < (size_t)c.GH * c.p.input; i++) ok &= fabsf(twice.w_ih[i] - 2 * once.w_ih[i]) <= 1e-5f + 1e-5f * fabsf(once.w_ih[i]);
            for (size_t i = 0; i < (size_t)c.GH; i++) ok &= fabsf(twice.b_hh[i] - 2 * once.b_hh[i]) <= 1e-5f + 1e-5f * fabsf(once.b_hh[i]);
            for (size_t i = 0; i < c.nx; i++) ok &= fabsf(twice.dx[i] - 2 * once.dx[i]) <= 1e-5f + 1e-5f * fabsf(once.dx[i]);
            CHECK(ok);
            /* Everything optional left out: upstream gradients and outputs null. */
            nn_rnn_grads none = {0};
            nn_rnn_backward(NULL, NULL, NULL, &none, NULL, NULL, NULL, c.x, &c.w, saved, ws, &c.p);
            nn_rnn_forward(o.y, NULL, NULL, NULL, c.x, NULL, NULL, &c.w, ws, &c.p);
            free(saved); free(ws); free_outputs(&o); free_grads(&once); free_grads(&twice); free_case(&c);
        }
    }
}

/* The same results, bit for bit, on one thread and on two. */
static void test_thread_independence(void) {
    const long lengths[6] = {9, 3, 12, 12, 1, 7};
    for (int cell = NN_CELL_RNN_TANH; cell <= NN_CELL_GRU_SIMPLE; cell++) {
        for (int reverse = 0; reverse <= 1; reverse++) {
            for (int wide = 0; wide <= 1; wide++) { /* H = 48: whole vector blocks */
                const int H = wide ? 48 : 70, D = wide ? 32 : 24; /* wide: tiled weight gradients too */
                rnn_case c = make_case(cell, 12, 6, D, H, reverse, reverse ? lengths : NULL, H, 1, 0.3f);
                outputs o1 = make_outputs(&c), o2 = make_outputs(&c);
                grads g1 = make_grads(&c), g2 = make_grads(&c);
                nn_set_num_threads(1);
                run_fast(&c, &o1, &g1);
                nn_set_num_threads(2);
                run_fast(&c, &o2, &g2);
                nn_set_num_threads(0);
                char m[200];
                snprintf(m, sizeof m, "%s threads y", cell_name(cell));
                ctest_equal_bits(m, o1.y, o2.y, c.ny);
                snprintf(m, sizeof m, "%s threads dx", cell_name(cell));
                ctest_equal_bits(m, g1.dx, g2.dx, c.nx);
                snprintf(m, sizeof m, "%s threads dw_hh", cell_name(cell));
                ctest_equal_bits(m, g1.w_hh, g2.w_hh, (size_t)c.GH * c.p.hidden);
                snprintf(m, sizeof m, "%s threads dw_ih", cell_name(cell));
                ctest_equal_bits(m, g1.w_ih, g2.w_ih, (size_t)c.GH * c.p.input);
                snprintf(m, sizeof m, "%s threads db_ih", cell_name(cell));
                ctest_equal_bits(m, g1.b_ih, g2.b_ih, c.GH);
                free_outputs(&o1); free_outputs(&o2); free_grads(&g1); free_grads(&g2); free_case(&c);
            }
        }
    }
}

/* ---- finite differences of an independent double-precision forward ---------------------------------- */

typedef struct {
    nn_rnn_cell cell;
    int T, N, D, H, reverse;
    const long *lengths;
    /* every input and parameter, in double, at the float values the kernels see */
    double *x, *h0, *c0, *w_ih, *w_hh, *b_ih, *b_hh, *w_ci, *w_cf, *w_co;
    const float *ry, *rh, *rc; /* loss weights: L = sum(y ry) + sum(h_n rh) + sum(c_n rc) */
} dmodel;

static double sig(double v) { return 1 / (1 + exp(-v)); }

/* W [rows, cols] times v, plus b. */
static void affine(double *out, const double *W, const double *v, const double *b, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        double s = b[r];
        for (int k = 0; k < cols; k++) s += W[(size_t)r * cols + k] * v[k];
        out[r] = s;
    }
}

/* The loss, written from the cell equations of include/rnn.h, one sequence at a time. */
static double dloss(const dmodel *m) {
    const int H = m->H, D = m->D, N = m->N, T = m->T, GH = nn_rnn_gate_count(m->cell) * H;
    double L = 0;
    double h[H], c[H], a[GH], b[GH], rh[H], nb[H];
    for (int n = 0; n < N; n++) {
        const int len = m->lengths ? (int)m->lengths[n] : T;
        for (int j = 0; j < H; j++) { h[j] = m->h0[n * H + j]; c[j] = is_lstm(m->cell) ? m->c0[n * H + j] : 0; }
        for (int s = 0; s < len; s++) {
            const int t = m->reverse ? len - 1 - s : s;
            affine(a, m->w_ih, m->x + ((size_t)t * N + n) * D, m->b_ih, GH, D);
            affine(b, m->w_hh, h, m->b_hh, GH, H);
            switch (m->cell) {
            case NN_CELL_RNN_TANH: for (int j = 0; j < H; j++) h[j] = tanh(a[j] + b[j]); break;
            case NN_CELL_RNN_RELU: for (int j = 0; j < H; j++) h[j] = fmax(a[j] + b[j], 0); break;
            case NN_CELL_LSTM:
            case NN_CELL_LSTM_PEEPHOLE: {
                const int pe = m->cell == NN_CELL_LSTM_PEEPHOLE;
                for (int j = 0; j < H; j++) {
                    double i = sig(a[j] + b[j] + (pe ? m->w_ci[j] * c[j] : 0));
                    double f = sig(a[H + j] + b[H + j] + (pe ? m->w_cf[j] * c[j] : 0));
                    double g = tanh(a[2 * H + j] + b[2 * H + j]);
                    c[j] = f * c[j] + i * g;
                    double o = sig(a[3 * H + j] + b[3 * H + j] + (pe ? m->w_co[j] * c[j] : 0));
                    h[j] = o * tanh(c[j]);
                }
                break;
            }
            case NN_CELL_LSTM_COUPLED:
                for (int j = 0; j < H; j++) {
                    double f = sig(a[j] + b[j]), g = tanh(a[H + j] + b[H + j]), o = sig(a[2 * H + j] + b[2 * H + j]);
                    c[j] = f * c[j] + (1 - f) * g;
                    h[j] = o * tanh(c[j]);
                }
                break;
            case NN_CELL_GRU:
                for (int j = 0; j < H; j++) {
                    double r = sig(a[j] + b[j]), z = sig(a[H + j] + b[H + j]);
                    double nn = tanh(a[2 * H + j] + r * b[2 * H + j]);
                    h[j] = (1 - z) * nn + z * h[j];
                }
                break;
            case NN_CELL_GRU_RESET_BEFORE:
                /* h~ = tanh(W [r * h, x] + b): W_hn applied to r * h. */
                for (int j = 0; j < H; j++) rh[j] = sig(a[j] + b[j]) * h[j];
                affine(nb, m->w_hh + (size_t)2 * H * H, rh, m->b_hh + 2 * H, H, H);
                for (int j = 0; j < H; j++) {
                    double z = sig(a[H + j] + b[H + j]), nn = tanh(a[2 * H + j] + nb[j]);
                    h[j] = (1 - z) * nn + z * h[j];
                }
                break;
            case NN_CELL_GRU_SIMPLE:
                for (int j = 0; j < H; j++) {
                    double u = sig(a[j] + b[j]), cand = tanh(a[H + j] + b[H + j]);
                    h[j] = u * cand + (1 - u) * h[j];
                }
                break;
            }
            for (int j = 0; j < H; j++) L += h[j] * m->ry[((size_t)t * N + n) * H + j];
        }
        for (int j = 0; j < H; j++) L += h[j] * m->rh[n * H + j] + (is_lstm(m->cell) ? c[j] * m->rc[n * H + j] : 0);
    }
    return L;
}

static double *widen(const float *f, size_t n) {
    double *d = malloc((n ? n : 1) * sizeof(double));
    for (size_t i = 0; i < n; i++) d[i] = f[i];
    return d;
}

/* Central differences of dloss with respect to every element of `param` against `analytic`. */
static void fd_check(const char *label, dmodel *m, double *param, const float *analytic, size_t n) {
    const double eps = 1e-6;
    float *numeric = falloc(n);
    for (size_t i = 0; i < n; i++) {
        const double keep = param[i];
        param[i] = keep + eps;
        const double up = dloss(m);
        param[i] = keep - eps;
        const double down = dloss(m);
        param[i] = keep;
        numeric[i] = (float)((up - down) / (2 * eps));
    }
    /* The analytic side is float32 through many steps: ~1e-6 relative; the numeric side is accurate to
     * ~1e-9 (double, step 1e-6), so the tolerance measures the kernels. */
    ctest_close(label, analytic, numeric, n, 3e-5f, 3e-4f);
    free(numeric);
}

static void test_finite_differences(void) {
    const long lengths[3] = {4, 6, 2};
    for (int cell = NN_CELL_RNN_TANH; cell <= NN_CELL_GRU_SIMPLE; cell++) {
        for (int variant = 0; variant < 2; variant++) {
            const int reverse = variant;
            rnn_case c = make_case(cell, 6, 3, 4, 5, reverse, variant ? lengths : NULL, 5, 1, 0.8f);
            outputs o = make_outputs(&c);
            grads g = make_grads(&c);
            run_fast(&c, &o, &g);
            const int H = c.p.hidden;
            dmodel m = {.cell = cell, .T = c.p.steps, .N = c.p.batch, .D = c.p.input, .H = H, .reverse = reverse,
                        .lengths = c.p.lengths, .x = widen(c.x, c.nx), .h0 = widen(c.h0, c.ns), .c0 = widen(c.c0, c.ns),
                        .w_ih = widen(c.w_ih, (size_t)c.GH * c.p.input), .w_hh = widen(c.w_hh, (size_t)c.GH * H),
                        .b_ih = widen(c.b_ih, c.GH), .b_hh = widen(c.b_hh, c.GH), .w_ci = widen(c.w_ci, H),
                        .w_cf = widen(c.w_cf, H), .w_co = widen(c.w_co, H), .ry = c.dy, .rh = c.dh_n, .rc = c.dc_n};
            char label[200];
#define FD(field, buf, count) do { snprintf(label, sizeof label, "fd %s%s d%s", cell_name(cell), variant ? " reverse lengths" : "", #field); fd_check(label, &m, m.field, buf, count); } while (0)
            FD(x, g.dx, c.nx);
            FD(h0, g.dh0, c.ns);
            if (is_lstm(cell)) FD(c0, g.dc0, c.ns);
            FD(w_ih, g.w_ih, (size_t)c.GH * c.p.input);
            FD(w_hh, g.w_hh, (size_t)c.GH * H);
            FD(b_ih, g.b_ih, c.GH);
            FD(b_hh, g.b_hh, c.GH);
            if (cell == NN_CELL_LSTM_PEEPHOLE) { FD(w_ci, g.w_ci, H); FD(w_cf, g.w_cf, H); FD(w_co, g.w_co, H); }
#undef FD
            free(m.x); free(m.h0); free(m.c0); free(m.w_ih); free(m.w_hh); free(m.b_ih); free(m.b_hh);
            free(m.w_ci); free(m.w_cf); free(m.w_co);
            free_outputs(&o); free_grads(&g); free_case(&c);
        }
    }
}

/* NaN in the input reaches the outputs of its own sequence only. */
static void test_nan_propagates(void) {
    for (int cell = NN_CELL_RNN_TANH; cell <= NN_CELL_GRU_SIMPLE; cell++) {
        rnn_case c = make_case(cell, 3, 2, 3, 4, 0, NULL, 4, 1, 0.5f);
        c.x[(size_t)(1 * 2 + 1) * 3] = NAN; /* t = 1, row 1 */
        outputs o = make_outputs(&c);
        run_fast(&c, &o, NULL);
        CHECK(isnan(o.y[(size_t)(1 * 2 + 1) * 4]));
        CHECK(isnan(o.h_n[4]));
        CHECK(!isnan(o.h_n[0]) && !isnan(o.y[(size_t)(2 * 2 + 0) * 4]));
        free_outputs(&o); free_case(&c);
    }
}

static void suite(void) {
    /* Both ways of computing the recurrent step: the fused kernel and OpenBLAS per step. */
    for (int fused = 1; fused >= 0; fused--) {
        nn_rnn_set_fused(fused);
        fused_now = fused;
        test_against_reference();
        test_accumulate();
        test_thread_independence();
        test_finite_differences();
        test_nan_propagates();
    }
    nn_rnn_set_fused(1);
}

int main(void) { return ctest_run_levels("test_rnn", suite); }
