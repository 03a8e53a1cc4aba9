/* Recurrent layers through time, forward and backward (shapes, cells and conventions in include/rnn.h).
 *
 * Forward: gx = x W_ih^T + b_ih for all steps in one GEMM; then per step gh = h W_hh^T (one GEMM over the
 * batch rows still running) and one pass over the rows that applies the cell, saves its activations and
 * writes y. Backward walks the steps in reverse: one pass over the rows turns dh (the recurrent carry
 * plus dy) into the pre-activation gradients dG, then one GEMM dG W_hh gives the next carry. After the
 * loop, dW_ih += dG^T x, dW_hh += dG^T h_prev (one GEMM each over all steps), the bias and peephole
 * gradients are column sums, and dx = dG W_ih.
 *
 * Saved activations (time layout [T, N, .], zero at padded steps), in this order:
 *   hprev [T, N, H]: the state each step consumed;
 *   act   [T, N, S]: RNN h (S = H); LSTM i, f, g, o (4H; coupled f, g, o: 3H); GRU r, z, n, and
 *                    gh_n + b_hn (4H); reset-before GRU r, z, n, r * h_prev (4H); simplified GRU u, n (2H);
 *   cprev, c [T, N, H] each: the LSTM cell state before and after each step.
 * Workspace: gx, later dG [T, N, G*H]; a second [T, N, G*H] for the GRU's recurrent dG (its n block
 * differs from the input one); step rows [N, G*H]; four [N, H] state rows; the recurrent bias [G*H].
 *
 * Rows with different times at one step (the reverse direction with lengths) make the step's dG rows
 * non-contiguous in the time layout, so backward then also writes them to the step rows for the GEMM.
 * With lengths sorted longest first (PyTorch's enforce_sorted), each step's GEMM covers only the rows
 * still running, as packed sequences do. */
#include "nn_internal.h"
#include <math.h>
#include <string.h>

/* ---- pointwise maths ------------------------------------------------------------------------------ */
/* Branch-free exp, sigmoid and tanh that the compiler vectorises across a row (libm's do not inline):
 * Cephes' single-precision polynomials, within 2 ulp of the true values over the float range; NaN
 * propagates, +-Inf saturate. */
typedef union { float f; int i; } fbits;

static inline float fast_exp(float x) {
    x = x > 88.3762626647949f ? 88.3762626647949f : x;
    x = x < -88.3762626647949f ? -88.3762626647949f : x;
    fbits t;
    t.f = x * 1.44269504088896341f + 12582912.0f; /* rounds x log2(e) to the nearest integer n */
    const float fx = t.f - 12582912.0f;
    const int n = t.i - 0x4B400000;
    float r = x - fx * 0.693359375f;
    r = r - fx * -2.12194440e-4f;
    const float z = r * r;
    const float y = (((((1.9875691500E-4f * r + 1.3981999507E-3f) * r + 8.3334519073E-3f) * r + 4.1665795894E-2f) * r +
                      1.6666665459E-1f) * r + 5.0000001201E-1f) * z + r + 1.0f;
    fbits s;
    s.i = (n + 127) << 23;
    return y * s.f;
}

static inline float fast_sigmoid(float x) { return 1.0f / (1.0f + fast_exp(-x)); }

static inline float fast_tanh(float x) {
    const float ax = x < 0 ? -x : x;
    const float z = x * x;
    const float small = ((((-5.70498872745E-3f * z + 2.06390887954E-2f) * z - 5.37397155531E-2f) * z +
                          1.33314422036E-1f) * z - 3.33332819422E-1f) * z * x + x;
    float big = 1.0f - 2.0f / (fast_exp(2.0f * ax) + 1.0f);
    big = x < 0 ? -big : big;
    return ax < 0.625f ? small : big;
}

/* ---- sizes ------------------------------------------------------------------------------------------ */

int nn_rnn_gate_count(nn_rnn_cell cell) {
    switch (cell) {
    case NN_CELL_RNN_TANH: case NN_CELL_RNN_RELU: return 1;
    case NN_CELL_LSTM: case NN_CELL_LSTM_PEEPHOLE: return 4;
    case NN_CELL_LSTM_COUPLED: case NN_CELL_GRU: case NN_CELL_GRU_RESET_BEFORE: return 3;
    case NN_CELL_GRU_SIMPLE: return 2;
    }
    return 0;
}

static int is_lstm(nn_rnn_cell c) { return c == NN_CELL_LSTM || c == NN_CELL_LSTM_PEEPHOLE || c == NN_CELL_LSTM_COUPLED; }

/* Saved activation floats per (step, row) in the act block. */
static int act_width(nn_rnn_cell c, int h) {
    switch (c) {
    case NN_CELL_RNN_TANH: case NN_CELL_RNN_RELU: return h;
    case NN_CELL_LSTM: case NN_CELL_LSTM_PEEPHOLE: return 4 * h;
    case NN_CELL_LSTM_COUPLED: return 3 * h;
    case NN_CELL_GRU: case NN_CELL_GRU_RESET_BEFORE: return 4 * h;
    case NN_CELL_GRU_SIMPLE: return 2 * h;
    }
    return 0;
}

size_t nn_rnn_saved_size(const nn_rnn_params *p) {
    const size_t rows = (size_t)p->steps * p->batch;
    return rows * ((size_t)p->hidden + act_width(p->cell, p->hidden) + (is_lstm(p->cell) ? 2 * (size_t)p->hidden : 0));
}

size_t nn_rnn_workspace_size(const nn_rnn_params *p) {
    const size_t gh = (size_t)nn_rnn_gate_count(p->cell) * p->hidden;
    const size_t rows = (size_t)p->steps * p->batch;
    const size_t seq = rows * gh * (p->cell == NN_CELL_GRU ? 2 : 1);
    return seq + (size_t)p->batch * gh + 4 * (size_t)p->batch * p->hidden + gh;
}

static void check_params(const nn_rnn_params *p) {
    (void)p;
    assert(p->steps >= 0 && p->batch >= 0 && p->input >= 0 && p->hidden >= 1 && p->ldy >= p->hidden);
    assert(nn_rnn_gate_count(p->cell) > 0);
#ifndef NDEBUG
    if (p->lengths)
        for (int n = 0; n < p->batch; n++) assert(p->lengths[n] >= 1 && p->lengths[n] <= p->steps);
#endif
}

/* Valid steps of sequence n. */
static inline int seq_len(const nn_rnn_params *p, int n) { return p->lengths ? (int)p->lengths[n] : p->steps; }
/* The time index that row n processes at loop step s (s < its length). */
static inline int time_of(const nn_rnn_params *p, int s, int n) { return p->reverse ? seq_len(p, n) - 1 - s : s; }

/* The longest length, and whether the lengths run longest first (then the running rows are a prefix). */
static int max_len(const nn_rnn_params *p, int *sorted) {
    *sorted = 1;
    if (!p->lengths) return p->steps;
    int m = 0;
    for (int n = 0; n < p->batch; n++) {
        if (p->lengths[n] > m) m = (int)p->lengths[n];
        if (n > 0 && p->lengths[n] > p->lengths[n - 1]) *sorted = 0;
    }
    return m;
}

/* Rows a step's GEMM must cover: the running prefix when sorted, else all. */
static int gemm_rows(const nn_rnn_params *p, int s, int sorted) {
    if (!p->lengths || !sorted) return p->batch;
    int m = 0;
    while (m < p->batch && p->lengths[m] > s) m++;
    return m;
}

/* Whether every row of step s reads the same time index (then step rows are contiguous in time layout). */
static int uniform_time(const nn_rnn_params *p) { return !p->lengths || !p->reverse; }

/* ---- the per-step pointwise passes ------------------------------------------------------------------ */

typedef struct {
    const nn_rnn_params *p;
    int H, GH, S;
    int s;              /* loop step */
    int pass;           /* reset-before GRU: 1 computes r, z and r*h; 2 computes n and h */
    const float *gx;    /* [T, N, GH] input projections, b_ih included */
    const float *gh;    /* [N, GH] this step's recurrent products, no bias */
    const float *bh;    /* [GH] b_hh (zeros without bias) */
    const nn_rnn_weights *w;
    float *h, *c, *rh;  /* [N, H] running state (in place) and the reset-before GRU's r * h */
    float *y;
    float *hprev, *act, *cprev, *cnew; /* saved, [T, N, .], or null for inference */
} fwd_ctx;

static void rnn_fwd_row(const fwd_ctx *k, const float *gx, const float *gh, float *h, float *a) {
    const int H = k->H;
    const float *bh = k->bh;
    if (k->p->cell == NN_CELL_RNN_TANH) {
        for (int j = 0; j < H; j++) h[j] = fast_tanh(gx[j] + gh[j] + bh[j]);
    } else {
        for (int j = 0; j < H; j++) {
            const float v = gx[j] + gh[j] + bh[j];
            h[j] = v > 0 ? v : (v != v ? v : 0.0f); /* NaN passes as in PyTorch's relu */
        }
    }
    if (a) memcpy(a, h, sizeof(float) * H);
}

static void lstm_fwd_row(const fwd_ctx *k, const float *gx, const float *gh, float *h, float *c, float *a,
                         float *cprev_saved, float *c_saved) {
    const int H = k->H;
    const float *bh = k->bh;
    if (cprev_saved) memcpy(cprev_saved, c, sizeof(float) * H);
    if (k->p->cell == NN_CELL_LSTM) {
        for (int j = 0; j < H; j++) {
            const float i = fast_sigmoid(gx[j] + gh[j] + bh[j]);
            const float f = fast_sigmoid(gx[H + j] + gh[H + j] + bh[H + j]);
            const float g = fast_tanh(gx[2 * H + j] + gh[2 * H + j] + bh[2 * H + j]);
            const float o = fast_sigmoid(gx[3 * H + j] + gh[3 * H + j] + bh[3 * H + j]);
            const float cn = f * c[j] + i * g;
            c[j] = cn;
            h[j] = o * fast_tanh(cn);
            if (a) { a[j] = i; a[H + j] = f; a[2 * H + j] = g; a[3 * H + j] = o; }
        }
    } else if (k->p->cell == NN_CELL_LSTM_PEEPHOLE) {
        const float *pi = k->w->w_ci, *pf = k->w->w_cf, *po = k->w->w_co;
        for (int j = 0; j < H; j++) {
            const float cp = c[j];
            const float i = fast_sigmoid(gx[j] + gh[j] + bh[j] + pi[j] * cp);
            const float f = fast_sigmoid(gx[H + j] + gh[H + j] + bh[H + j] + pf[j] * cp);
            const float g = fast_tanh(gx[2 * H + j] + gh[2 * H + j] + bh[2 * H + j]);
            const float cn = f * cp + i * g;
            const float o = fast_sigmoid(gx[3 * H + j] + gh[3 * H + j] + bh[3 * H + j] + po[j] * cn);
            c[j] = cn;
            h[j] = o * fast_tanh(cn);
            if (a) { a[j] = i; a[H + j] = f; a[2 * H + j] = g; a[3 * H + j] = o; }
        }
    } else { /* coupled: f, g, o */
        for (int j = 0; j < H; j++) {
            const float f = fast_sigmoid(gx[j] + gh[j] + bh[j]);
            const float g = fast_tanh(gx[H + j] + gh[H + j] + bh[H + j]);
            const float o = fast_sigmoid(gx[2 * H + j] + gh[2 * H + j] + bh[2 * H + j]);
            const float cn = f * c[j] + (1.0f - f) * g;
            c[j] = cn;
            h[j] = o * fast_tanh(cn);
            if (a) { a[j] = f; a[H + j] = g; a[2 * H + j] = o; }
        }
    }
    if (c_saved) memcpy(c_saved, c, sizeof(float) * H);
}

static void gru_fwd_row(const fwd_ctx *k, const float *gx, const float *gh, float *h, float *a) {
    const int H = k->H;
    const float *bh = k->bh;
    for (int j = 0; j < H; j++) {
        const float r = fast_sigmoid(gx[j] + gh[j] + bh[j]);
        const float z = fast_sigmoid(gx[H + j] + gh[H + j] + bh[H + j]);
        const float hn = gh[2 * H + j] + bh[2 * H + j];
        const float n = fast_tanh(gx[2 * H + j] + r * hn);
        const float hp = h[j];
        h[j] = n + z * (hp - n);
        if (a) { a[j] = r; a[H + j] = z; a[2 * H + j] = n; a[3 * H + j] = hn; }
    }
}

/* Pass 1: r, z and r * h_prev (into rh and, when training, the act block); pass 2: n and h. */
static void gru_rb_fwd_row(const fwd_ctx *k, const float *gx, const float *gh, float *h, float *rh, float *a,
                           float *zbuf) {
    const int H = k->H;
    const float *bh = k->bh;
    if (k->pass == 1) {
        for (int j = 0; j < H; j++) {
            const float r = fast_sigmoid(gx[j] + gh[j] + bh[j]);
            const float z = fast_sigmoid(gx[H + j] + gh[H + j] + bh[H + j]);
            rh[j] = r * h[j];
            zbuf[j] = z;
            if (a) { a[j] = r; a[H + j] = z; a[3 * H + j] = rh[j]; }
        }
    } else {
        for (int j = 0; j < H; j++) {
            const float n = fast_tanh(gx[2 * H + j] + gh[2 * H + j] + bh[2 * H + j]);
            const float z = zbuf[j], hp = h[j];
            h[j] = n + z * (hp - n);
            if (a) a[2 * H + j] = n;
        }
    }
}

static void gru_simple_fwd_row(const fwd_ctx *k, const float *gx, const float *gh, float *h, float *a) {
    const int H = k->H;
    const float *bh = k->bh;
    for (int j = 0; j < H; j++) {
        const float u = fast_sigmoid(gx[j] + gh[j] + bh[j]);
        const float n = fast_tanh(gx[H + j] + gh[H + j] + bh[H + j]);
        const float hp = h[j];
        h[j] = hp + u * (n - hp);
        if (a) { a[j] = u; a[H + j] = n; }
    }
}

/* One batch row of forward step k->s: applies the cell, saves what backward needs, writes y. */
static void fwd_row(const fwd_ctx *k, int n) {
    const nn_rnn_params *p = k->p;
    if (k->s >= seq_len(p, n)) return;
    const int H = k->H, N = p->batch;
    const int t = time_of(p, k->s, n);
    const size_t tn = (size_t)t * N + n;
    const float *gx = k->gx + tn * k->GH, *gh = k->gh + (size_t)n * k->GH;
    float *h = k->h + (size_t)n * H;
    float *a = k->act ? k->act + tn * k->S : NULL;
    if (k->hprev && k->pass != 2) memcpy(k->hprev + tn * H, h, sizeof(float) * H);
    switch (p->cell) {
    case NN_CELL_RNN_TANH: case NN_CELL_RNN_RELU: rnn_fwd_row(k, gx, gh, h, a); break;
    case NN_CELL_LSTM: case NN_CELL_LSTM_PEEPHOLE: case NN_CELL_LSTM_COUPLED:
        lstm_fwd_row(k, gx, gh, h, k->c + (size_t)n * H, a, k->cprev ? k->cprev + tn * H : NULL,
                     k->cnew ? k->cnew + tn * H : NULL);
        break;
    case NN_CELL_GRU: gru_fwd_row(k, gx, gh, h, a); break;
    case NN_CELL_GRU_RESET_BEFORE:
        /* z waits in c (unused by GRUs) between the passes. */
        gru_rb_fwd_row(k, gx, gh, h, k->rh + (size_t)n * H, a, k->c + (size_t)n * H);
        break;
    case NN_CELL_GRU_SIMPLE: gru_simple_fwd_row(k, gx, gh, h, a); break;
    }
    if (k->pass != 1) memcpy(k->y + tn * p->ldy, h, sizeof(float) * H);
}

/* Below this many state elements per step the pass runs on the calling thread: every row costs
 * several transcendental functions per element, so the bar is lower than NN_PARALLEL_MIN. */
#define RNN_PARALLEL_MIN 2048

static void fwd_pass(const fwd_ctx *k) {
    const int N = k->p->batch;
    NN_PARALLEL_FOR_IF((long)N * k->H >= RNN_PARALLEL_MIN)
    for (int n = 0; n < N; n++) fwd_row(k, n);
}

/* Zeroes rows [t, n, 0..width) of a [T, N, ld] buffer at the padded steps t >= lengths[n]. */
static void zero_padded(float *buf, int width, long ld, const nn_rnn_params *p) {
    if (!p->lengths || !buf) return;
    for (int n = 0; n < p->batch; n++)
        for (int t = (int)p->lengths[n]; t < p->steps; t++) memset(buf + ((size_t)t * p->batch + n) * ld, 0, sizeof(float) * width);
}

void nn_rnn_forward(float *y, float *h_n, float *c_n, float *saved, const float *x, const float *h0, const float *c0,
                    const nn_rnn_weights *w, float *workspace, const nn_rnn_params *p) {
    check_params(p);
    const int T = p->steps, N = p->batch, D = p->input, H = p->hidden;
    const int G = nn_rnn_gate_count(p->cell), GH = G * H, S = act_width(p->cell, H);
    const size_t rows = (size_t)T * N;
    float *gx = workspace;
    float *gh = gx + rows * GH * (p->cell == NN_CELL_GRU ? 2 : 1);
    float *h = gh + (size_t)N * GH, *c = h + (size_t)N * H, *rh = c + (size_t)N * H;
    float *bh = rh + 2 * (size_t)N * H;

    if (h0) memcpy(h, h0, sizeof(float) * N * H); else memset(h, 0, sizeof(float) * N * H);
    if (c0 && is_lstm(p->cell)) memcpy(c, c0, sizeof(float) * N * H); else memset(c, 0, sizeof(float) * N * H);
    if (w->b_hh) memcpy(bh, w->b_hh, sizeof(float) * GH); else memset(bh, 0, sizeof(float) * GH);

    if (rows > 0) {
        if (w->b_ih)
            for (size_t r = 0; r < rows; r++) memcpy(gx + r * GH, w->b_ih, sizeof(float) * GH);
        nn_sgemm(0, 1, (int)rows, GH, D, 1.0f, x, D, w->w_ih, D, w->b_ih ? 1.0f : 0.0f, gx, GH);
    }

    fwd_ctx k = {.p = p, .H = H, .GH = GH, .S = S, .gx = gx, .gh = gh, .bh = bh, .w = w, .h = h, .c = c, .rh = rh, .y = y};
    if (saved) {
        k.hprev = saved;
        k.act = saved + rows * H;
        if (is_lstm(p->cell)) {
            k.cprev = k.act + rows * S;
            k.cnew = k.cprev + rows * H;
        }
    }
    zero_padded(y, H, p->ldy, p);
    zero_padded(k.hprev, H, H, p);
    zero_padded(k.act, S, S, p);
    zero_padded(k.cprev, H, H, p);
    zero_padded(k.cnew, H, H, p);

    int sorted;
    const int steps = max_len(p, &sorted);
    for (int s = 0; s < steps; s++) {
        const int m = gemm_rows(p, s, sorted);
        k.s = s;
        if (p->cell == NN_CELL_GRU_RESET_BEFORE) {
            /* r and z first; n needs r * h before W_hn can be applied. */
            nn_sgemm(0, 1, m, 2 * H, H, 1.0f, h, H, w->w_hh, H, 0.0f, gh, GH);
            k.pass = 1;
            fwd_pass(&k);
            nn_sgemm(0, 1, m, H, H, 1.0f, rh, H, w->w_hh + (size_t)2 * H * H, H, 0.0f, gh + 2 * H, GH);
            k.pass = 2;
            fwd_pass(&k);
        } else {
            nn_sgemm(0, 1, m, GH, H, 1.0f, h, H, w->w_hh, H, 0.0f, gh, GH);
            k.pass = 0;
            fwd_pass(&k);
        }
    }
    if (h_n) memcpy(h_n, h, sizeof(float) * N * H);
    if (c_n && is_lstm(p->cell)) memcpy(c_n, c, sizeof(float) * N * H);
}

/* ---- backward -------------------------------------------------------------------------------------- */

typedef struct {
    const nn_rnn_params *p;
    int H, GH, S;
    int s, pass, uniform;
    const float *dy, *dh_n;
    const nn_rnn_weights *w;
    const float *hprev, *act, *cprev, *cnew;
    float *dgx;     /* [T, N, GH] gradients of the input pre-activations */
    float *dgh;     /* [T, N, GH] of the recurrent ones (the GRU's own buffer, else dgx) */
    float *dgs;     /* [N, GH] step rows of dgh when times differ across rows */
    float *dh;      /* [N, H] recurrent carry in, and the direct part of dh_prev out */
    float *dc;      /* [N, H] cell gradient carry (LSTM), in place */
    float *drh;     /* [N, H] reset-before GRU: gradient of r * h_prev */
} bwd_ctx;

static void rnn_bwd_row(const bwd_ctx *k, const float *dh, const float *a, float *dg) {
    const int H = k->H;
    if (k->p->cell == NN_CELL_RNN_TANH) {
        for (int j = 0; j < H; j++) dg[j] = dh[j] * (1.0f - a[j] * a[j]);
    } else {
        for (int j = 0; j < H; j++) dg[j] = a[j] > 0 ? dh[j] : 0.0f;
    }
}

static void lstm_bwd_row(const bwd_ctx *k, const float *dh, float *dc, const float *a, const float *cp, const float *cn,
                         float *dg) {
    const int H = k->H;
    if (k->p->cell == NN_CELL_LSTM_COUPLED) {
        for (int j = 0; j < H; j++) {
            const float f = a[j], g = a[H + j], o = a[2 * H + j];
            const float tc = fast_tanh(cn[j]);
            const float d = dc[j] + dh[j] * o * (1.0f - tc * tc);
            dg[j] = d * (cp[j] - g) * f * (1.0f - f);
            dg[H + j] = d * (1.0f - f) * (1.0f - g * g);
            dg[2 * H + j] = dh[j] * tc * o * (1.0f - o);
            dc[j] = d * f;
        }
        return;
    }
    const int peep = k->p->cell == NN_CELL_LSTM_PEEPHOLE;
    for (int j = 0; j < H; j++) {
        const float i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j];
        const float tc = fast_tanh(cn[j]);
        const float dao = dh[j] * tc * o * (1.0f - o);
        float d = dc[j] + dh[j] * o * (1.0f - tc * tc);
        if (peep) d += dao * k->w->w_co[j];
        const float dai = d * g * i * (1.0f - i);
        const float daf = d * cp[j] * f * (1.0f - f);
        dg[j] = dai;
        dg[H + j] = daf;
        dg[2 * H + j] = d * i * (1.0f - g * g);
        dg[3 * H + j] = dao;
        dc[j] = peep ? d * f + dai * k->w->w_ci[j] + daf * k->w->w_cf[j] : d * f;
    }
}

/* dh_direct receives z * dh, the part of dh_prev that bypasses W_hh. */
static void gru_bwd_row(const bwd_ctx *k, const float *dh, const float *a, const float *hp, float *dgx, float *dgh,
                        float *dh_direct) {
    const int H = k->H;
    for (int j = 0; j < H; j++) {
        const float r = a[j], z = a[H + j], n = a[2 * H + j], hn = a[3 * H + j];
        const float dan = dh[j] * (1.0f - z) * (1.0f - n * n);
        const float dar = dan * hn * r * (1.0f - r);
        const float daz = dh[j] * (hp[j] - n) * z * (1.0f - z);
        dgx[j] = dar; dgx[H + j] = daz; dgx[2 * H + j] = dan;
        dgh[j] = dar; dgh[H + j] = daz; dgh[2 * H + j] = dan * r;
        dh_direct[j] = dh[j] * z;
    }
}

/* Pass 1 (before the W_hn product): da_n, da_z, and dh kept in dh_io. Pass 2: da_r from d(r h_prev),
 * and dh_io becomes the direct part z * dh + r * d(r h_prev). */
static void gru_rb_bwd_row(const bwd_ctx *k, float *dh_io, const float *a, const float *hp, const float *drh,
                           float *dg) {
    const int H = k->H;
    if (k->pass == 1) {
        for (int j = 0; j < H; j++) {
            const float z = a[H + j], n = a[2 * H + j];
            dg[H + j] = dh_io[j] * (hp[j] - n) * z * (1.0f - z);
            dg[2 * H + j] = dh_io[j] * (1.0f - z) * (1.0f - n * n);
        }
    } else {
        for (int j = 0; j < H; j++) {
            const float r = a[j], z = a[H + j];
            dg[j] = drh[j] * hp[j] * r * (1.0f - r);
            dh_io[j] = dh_io[j] * z + drh[j] * r;
        }
    }
}

static void gru_simple_bwd_row(const bwd_ctx *k, const float *dh, const float *a, const float *hp, float *dg,
                               float *dh_direct) {
    const int H = k->H;
    for (int j = 0; j < H; j++) {
        const float u = a[j], n = a[H + j];
        dg[j] = dh[j] * (n - hp[j]) * u * (1.0f - u);
        dg[H + j] = dh[j] * u * (1.0f - n * n);
        dh_direct[j] = dh[j] * (1.0f - u);
    }
}

/* One batch row of backward step k->s. The carry k->dh[n] holds dL/dh after this step from the later
 * steps (when the row ran a later step) and is replaced by the part of dL/dh_prev that does not go
 * through W_hh; the step's GEMM then adds dG W_hh. */
static void bwd_row(const bwd_ctx *k, int n) {
    const nn_rnn_params *p = k->p;
    const int len = seq_len(p, n);
    if (k->s >= len) return;
    const int H = k->H, GH = k->GH, N = p->batch;
    const int t = time_of(p, k->s, n);
    const size_t tn = (size_t)t * N + n;
    float *dh = k->dh + (size_t)n * H;
    const float *a = k->act + tn * k->S, *hp = k->hprev + tn * H;
    float *dgx = k->dgx + tn * GH, *dgh = k->dgh + tn * GH;
    if (k->pass != 2) {
        /* This row's last step: the carry starts from dh_n. Then add dy. */
        if (k->s == len - 1) {
            if (k->dh_n) memcpy(dh, k->dh_n + (size_t)n * H, sizeof(float) * H);
            else memset(dh, 0, sizeof(float) * H);
        }
        if (k->dy) {
            const float *dy = k->dy + tn * p->ldy;
            for (int j = 0; j < H; j++) dh[j] += dy[j];
        }
    }
    switch (p->cell) {
    case NN_CELL_RNN_TANH: case NN_CELL_RNN_RELU:
        rnn_bwd_row(k, dh, a, dgx);
        memset(dh, 0, sizeof(float) * H);
        break;
    case NN_CELL_LSTM: case NN_CELL_LSTM_PEEPHOLE: case NN_CELL_LSTM_COUPLED:
        lstm_bwd_row(k, dh, k->dc + (size_t)n * H, a, k->cprev + tn * H, k->cnew + tn * H, dgx);
        memset(dh, 0, sizeof(float) * H);
        break;
    case NN_CELL_GRU: gru_bwd_row(k, dh, a, hp, dgx, dgh, dh); break;
    case NN_CELL_GRU_RESET_BEFORE: gru_rb_bwd_row(k, dh, a, hp, k->drh + (size_t)n * H, dgx); break;
    case NN_CELL_GRU_SIMPLE: gru_simple_bwd_row(k, dh, a, hp, dgx, dh); break;
    }
    if (!k->uniform) memcpy(k->dgs + (size_t)n * GH, dgh, sizeof(float) * GH);
}

static void bwd_pass(const bwd_ctx *k) {
    const int N = k->p->batch;
    NN_PARALLEL_FOR_IF((long)N * k->H >= RNN_PARALLEL_MIN)
    for (int n = 0; n < N; n++) bwd_row(k, n);
}

/* out[j] += sum over rows r of a[r*lda + j] (times b[r*ldb + j] when b is given), for j < cols; each
 * column is summed in row order by one thread, so the result does not depend on the thread count. */
enum { COLSUM_BLOCK = 64 };

static void colsum_block(float *out, const float *a, long lda, const float *b, long ldb, long rows, int j0, int width) {
    float acc[COLSUM_BLOCK] = {0};
    for (long r = 0; r < rows; r++) {
        const float *ar = a + r * lda + j0;
        if (b) {
            const float *br = b + r * ldb + j0;
            for (int j = 0; j < width; j++) acc[j] += ar[j] * br[j];
        } else {
            for (int j = 0; j < width; j++) acc[j] += ar[j];
        }
    }
    for (int j = 0; j < width; j++) out[j0 + j] += acc[j];
}

static void column_sums(float *out, const float *a, long lda, const float *b, long ldb, long rows, int cols) {
    if (!out) return;
    const int blocks = (cols + COLSUM_BLOCK - 1) / COLSUM_BLOCK;
    NN_PARALLEL_FOR_IF(rows * cols >= NN_PARALLEL_MIN && blocks > 1)
    for (int bi = 0; bi < blocks; bi++) {
        const int j0 = bi * COLSUM_BLOCK;
        colsum_block(out, a, lda, b, ldb, rows, j0, cols - j0 < COLSUM_BLOCK ? cols - j0 : COLSUM_BLOCK);
    }
}

void nn_rnn_backward(float *dx, float *dh0, float *dc0, const nn_rnn_grads *g, const float *dy, const float *dh_n,
                     const float *dc_n, const float *x, const nn_rnn_weights *w, const float *saved,
                     float *workspace, const nn_rnn_params *p) {
    check_params(p);
    const int T = p->steps, N = p->batch, D = p->input, H = p->hidden;
    const int G = nn_rnn_gate_count(p->cell), GH = G * H, S = act_width(p->cell, H);
    const size_t rows = (size_t)T * N;
    const int lstm = is_lstm(p->cell);
    float *dgx = workspace;
    float *dgh = p->cell == NN_CELL_GRU ? dgx + rows * GH : dgx;
    float *dgs = dgx + rows * GH * (p->cell == NN_CELL_GRU ? 2 : 1);
    float *dh = dgs + (size_t)N * GH, *dc = dh + (size_t)N * H, *drh = dc + (size_t)N * H;

    bwd_ctx k = {.p = p, .H = H, .GH = GH, .S = S, .uniform = uniform_time(p), .dy = dy, .dh_n = dh_n, .w = w,
                 .hprev = saved, .act = saved + rows * H, .dgx = dgx, .dgh = dgh, .dgs = dgs, .dh = dh, .dc = dc,
                 .drh = drh};
    if (lstm) {
        k.cprev = k.act + rows * S;
        k.cnew = k.cprev + rows * H;
    }
    zero_padded(dgx, GH, GH, p);
    if (dgh != dgx) zero_padded(dgh, GH, GH, p);
    if (dc_n && lstm) memcpy(dc, dc_n, sizeof(float) * N * H); else memset(dc, 0, sizeof(float) * N * H);
    if (T == 0 || N == 0) memset(dh, 0, sizeof(float) * N * H);

    int sorted;
    const int steps = max_len(p, &sorted);
    for (int s = steps - 1; s >= 0; s--) {
        const int m = gemm_rows(p, s, sorted);
        const int t = p->reverse ? T - 1 - s : s; /* the step's time when uniform */
        const float *rec = k.uniform ? dgh + (size_t)t * N * GH : dgs; /* this step's recurrent dG rows */
        k.s = s;
        if (p->cell == NN_CELL_GRU_RESET_BEFORE) {
            k.pass = 1;
            bwd_pass(&k);
            nn_sgemm(0, 0, m, H, H, 1.0f, rec + 2 * H, GH, w->w_hh + (size_t)2 * H * H, H, 0.0f, drh, H);
            k.pass = 2;
            bwd_pass(&k);
            nn_sgemm(0, 0, m, H, 2 * H, 1.0f, rec, GH, w->w_hh, H, 1.0f, dh, H);
        } else {
            k.pass = 0;
            bwd_pass(&k);
            nn_sgemm(0, 0, m, H, GH, 1.0f, rec, GH, w->w_hh, H, 1.0f, dh, H);
        }
    }
    /* Every row ran step 0 (lengths >= 1), so dh now holds dL/dh0; with no steps it is dh_n itself. */
    if (dh0) {
        if (steps == 0 && dh_n) memcpy(dh0, dh_n, sizeof(float) * N * H);
        else memcpy(dh0, dh, sizeof(float) * N * H);
    }
    if (dc0) {
        if (lstm) memcpy(dc0, dc, sizeof(float) * N * H);
        else memset(dc0, 0, sizeof(float) * N * H);
    }
    if (rows == 0) {
        if (dx && !p->accumulate_dx) memset(dx, 0, sizeof(float) * rows * D);
        return;
    }
    if (g->w_ih) nn_sgemm(1, 0, GH, D, (int)rows, 1.0f, dgx, GH, x, D, 1.0f, g->w_ih, D);
    if (g->w_hh) {
        if (p->cell == NN_CELL_GRU_RESET_BEFORE) {
            const float *rh = k.act + 3 * H; /* r * h_prev, rows S apart */
            nn_sgemm(1, 0, 2 * H, H, (int)rows, 1.0f, dgh, GH, k.hprev, H, 1.0f, g->w_hh, H);
            nn_sgemm(1, 0, H, H, (int)rows, 1.0f, dgh + 2 * H, GH, rh, S, 1.0f, g->w_hh + (size_t)2 * H * H, H);
        } else {
            nn_sgemm(1, 0, GH, H, (int)rows, 1.0f, dgh, GH, k.hprev, H, 1.0f, g->w_hh, H);
        }
    }
    column_sums(g->b_ih, dgx, GH, NULL, 0, (long)rows, GH);
    column_sums(g->b_hh, dgh, GH, NULL, 0, (long)rows, GH);
    if (p->cell == NN_CELL_LSTM_PEEPHOLE) {
        column_sums(g->w_ci, dgx, GH, k.cprev, H, (long)rows, H);
        column_sums(g->w_cf, dgx + H, GH, k.cprev, H, (long)rows, H);
        column_sums(g->w_co, dgx + 3 * H, GH, k.cnew, H, (long)rows, H);
    }
    if (dx) nn_sgemm(0, 0, (int)rows, D, GH, 1.0f, dgx, GH, w->w_ih, D, p->accumulate_dx ? 1.0f : 0.0f, dx, D);
}

/* ---- references: per sequence, per step, per element, in double ---------------------------------- */

static double dsig(double v) { return 1.0 / (1.0 + exp(-v)); }

/* One step of sequence row n at time t from state (hp, cp): fills the input and recurrent
 * pre-activations ax, ah [GH] (for the reset-before GRU ah's n block is W_hn (r h) + b_hn), the gate
 * values act [GH] (LSTM i,f,g,o / coupled f,g,o; GRU r,z,n; simplified u,n; RNN h) and the new state. */
static void ref_step(const nn_rnn_params *p, const nn_rnn_weights *w, const float *xt, const double *hp,
                     const double *cp, double *ax, double *ah, double *act, double *rh, double *h, double *c) {
    const int H = p->hidden, D = p->input, GH = nn_rnn_gate_count(p->cell) * H;
    for (int r = 0; r < GH; r++) {
        double s = w->b_ih ? w->b_ih[r] : 0.0;
        for (int d = 0; d < D; d++) s += (double)w->w_ih[(size_t)r * D + d] * xt[d];
        ax[r] = s;
    }
    const int direct = p->cell == NN_CELL_GRU_RESET_BEFORE ? 2 * H : GH; /* rows fed by h itself */
    for (int r = 0; r < direct; r++) {
        double s = w->b_hh ? w->b_hh[r] : 0.0;
        for (int j = 0; j < H; j++) s += (double)w->w_hh[(size_t)r * H + j] * hp[j];
        ah[r] = s;
    }
    switch (p->cell) {
    case NN_CELL_RNN_TANH: case NN_CELL_RNN_RELU:
        for (int j = 0; j < H; j++) {
            const double v = ax[j] + ah[j];
            h[j] = act[j] = p->cell == NN_CELL_RNN_TANH ? tanh(v) : (v > 0 ? v : 0.0);
        }
        break;
    case NN_CELL_LSTM: case NN_CELL_LSTM_PEEPHOLE: {
        const int peep = p->cell == NN_CELL_LSTM_PEEPHOLE;
        for (int j = 0; j < H; j++) {
            const double i = dsig(ax[j] + ah[j] + (peep ? w->w_ci[j] * cp[j] : 0.0));
            const double f = dsig(ax[H + j] + ah[H + j] + (peep ? w->w_cf[j] * cp[j] : 0.0));
            const double g = tanh(ax[2 * H + j] + ah[2 * H + j]);
            c[j] = f * cp[j] + i * g;
            const double o = dsig(ax[3 * H + j] + ah[3 * H + j] + (peep ? w->w_co[j] * c[j] : 0.0));
            h[j] = o * tanh(c[j]);
            act[j] = i; act[H + j] = f; act[2 * H + j] = g; act[3 * H + j] = o;
        }
        break;
    }
    case NN_CELL_LSTM_COUPLED:
        for (int j = 0; j < H; j++) {
            const double f = dsig(ax[j] + ah[j]), g = tanh(ax[H + j] + ah[H + j]), o = dsig(ax[2 * H + j] + ah[2 * H + j]);
            c[j] = f * cp[j] + (1 - f) * g;
            h[j] = o * tanh(c[j]);
            act[j] = f; act[H + j] = g; act[2 * H + j] = o;
        }
        break;
    case NN_CELL_GRU:
        for (int j = 0; j < H; j++) {
            const double r = dsig(ax[j] + ah[j]), z = dsig(ax[H + j] + ah[H + j]);
            const double n = tanh(ax[2 * H + j] + r * ah[2 * H + j]);
            h[j] = (1 - z) * n + z * hp[j];
            act[j] = r; act[H + j] = z; act[2 * H + j] = n;
        }
        break;
    case NN_CELL_GRU_RESET_BEFORE:
        for (int j = 0; j < H; j++) {
            act[j] = dsig(ax[j] + ah[j]);
            act[H + j] = dsig(ax[H + j] + ah[H + j]);
            rh[j] = act[j] * hp[j];
        }
        for (int r = 2 * H; r < 3 * H; r++) {
            double s = w->b_hh ? w->b_hh[r] : 0.0;
            for (int j = 0; j < H; j++) s += (double)w->w_hh[(size_t)r * H + j] * rh[j];
            ah[r] = s;
        }
        for (int j = 0; j < H; j++) {
            const double z = act[H + j], n = tanh(ax[2 * H + j] + ah[2 * H + j]);
            act[2 * H + j] = n;
            h[j] = (1 - z) * n + z * hp[j];
        }
        break;
    case NN_CELL_GRU_SIMPLE:
        for (int j = 0; j < H; j++) {
            const double u = dsig(ax[j] + ah[j]), n = tanh(ax[H + j] + ah[H + j]);
            h[j] = u * n + (1 - u) * hp[j];
            act[j] = u; act[H + j] = n;
        }
        break;
    }
}

static void ref_initial(const nn_rnn_params *p, int n, const float *h0, const float *c0, double *h, double *c) {
    const int H = p->hidden;
    for (int j = 0; j < H; j++) {
        h[j] = h0 ? h0[(size_t)n * H + j] : 0.0;
        c[j] = c0 && is_lstm(p->cell) ? c0[(size_t)n * H + j] : 0.0;
    }
}

void nn_rnn_forward_ref(float *y, float *h_n, float *c_n, const float *x, const float *h0, const float *c0,
                        const nn_rnn_weights *w, const nn_rnn_params *p) {
    check_params(p);
    const int T = p->steps, N = p->batch, D = p->input, H = p->hidden, GH = nn_rnn_gate_count(p->cell) * H;
    double h[H], c[H], hn[H], cn[H], ax[GH], ah[GH], act[GH], rh[H];
    for (int n = 0; n < N; n++) {
        const int len = seq_len(p, n);
        ref_initial(p, n, h0, c0, h, c);
        for (int t = 0; t < T; t++) memset(y + ((size_t)t * N + n) * p->ldy, 0, sizeof(float) * H);
        for (int s = 0; s < len; s++) {
            const int t = time_of(p, s, n);
            ref_step(p, w, x + ((size_t)t * N + n) * D, h, c, ax, ah, act, rh, hn, cn);
            memcpy(h, hn, sizeof h);
            memcpy(c, cn, sizeof c);
            for (int j = 0; j < H; j++) y[((size_t)t * N + n) * p->ldy + j] = (float)h[j];
        }
        for (int j = 0; j < H; j++) {
            if (h_n) h_n[(size_t)n * H + j] = (float)h[j];
            if (c_n && is_lstm(p->cell)) c_n[(size_t)n * H + j] = (float)c[j];
        }
    }
}

/* Backward of one step from dh, dc (gradients of the step's new h and c): the pre-activation gradients
 * dax, dah [GH] (dah for the products that read h or r*h), and dh_prev, dc_prev; peephole gradients
 * are added to g. The step is recomputed from its inputs. */
static void ref_step_backward(const nn_rnn_params *p, const nn_rnn_weights *w, const nn_rnn_grads *g, const float *xt,
                              const double *hp, const double *cp, const double *dh, const double *dc, double *dax,
                              double *dah, double *dhp, double *dcp) {
    const int H = p->hidden, GH = nn_rnn_gate_count(p->cell) * H;
    double ax[GH], ah[GH], act[GH], rh[H], h[H], c[H];
    ref_step(p, w, xt, hp, cp, ax, ah, act, rh, h, c);
    for (int j = 0; j < H; j++) { dhp[j] = 0; dcp[j] = 0; }
    switch (p->cell) {
    case NN_CELL_RNN_TANH: case NN_CELL_RNN_RELU:
        for (int j = 0; j < H; j++)
            dax[j] = p->cell == NN_CELL_RNN_TANH ? dh[j] * (1 - h[j] * h[j]) : (ax[j] + ah[j] > 0 ? dh[j] : 0.0);
        break;
    case NN_CELL_LSTM: case NN_CELL_LSTM_PEEPHOLE: {
        const int peep = p->cell == NN_CELL_LSTM_PEEPHOLE;
        for (int j = 0; j < H; j++) {
            const double i = act[j], f = act[H + j], gg = act[2 * H + j], o = act[3 * H + j], tc = tanh(c[j]);
            const double dao = dh[j] * tc * o * (1 - o);
            double d = dc[j] + dh[j] * o * (1 - tc * tc) + (peep ? dao * w->w_co[j] : 0.0);
            const double dai = d * gg * i * (1 - i), daf = d * cp[j] * f * (1 - f);
            dax[j] = dai; dax[H + j] = daf; dax[2 * H + j] = d * i * (1 - gg * gg); dax[3 * H + j] = dao;
            dcp[j] = d * f + (peep ? dai * w->w_ci[j] + daf * w->w_cf[j] : 0.0);
            if (peep) {
                if (g->w_ci) g->w_ci[j] += (float)(dai * cp[j]);
                if (g->w_cf) g->w_cf[j] += (float)(daf * cp[j]);
                if (g->w_co) g->w_co[j] += (float)(dao * c[j]);
            }
        }
        break;
    }
    case NN_CELL_LSTM_COUPLED:
        for (int j = 0; j < H; j++) {
            const double f = act[j], gg = act[H + j], o = act[2 * H + j], tc = tanh(c[j]);
            const double d = dc[j] + dh[j] * o * (1 - tc * tc);
            dax[j] = d * (cp[j] - gg) * f * (1 - f);
            dax[H + j] = d * (1 - f) * (1 - gg * gg);
            dax[2 * H + j] = dh[j] * tc * o * (1 - o);
            dcp[j] = d * f;
        }
        break;
    case NN_CELL_GRU:
        for (int j = 0; j < H; j++) {
            const double r = act[j], z = act[H + j], n = act[2 * H + j];
            const double dan = dh[j] * (1 - z) * (1 - n * n);
            dax[j] = dan * ah[2 * H + j] * r * (1 - r);
            dax[H + j] = dh[j] * (hp[j] - n) * z * (1 - z);
            dax[2 * H + j] = dan;
            dhp[j] = dh[j] * z;
        }
        break;
    case NN_CELL_GRU_RESET_BEFORE: {
        double drh[H];
        for (int j = 0; j < H; j++) {
            const double z = act[H + j], n = act[2 * H + j];
            dax[H + j] = dh[j] * (hp[j] - n) * z * (1 - z);
            dax[2 * H + j] = dh[j] * (1 - z) * (1 - n * n);
            dhp[j] = dh[j] * z;
        }
        for (int j = 0; j < H; j++) {
            double s = 0;
            for (int r = 0; r < H; r++) s += dax[2 * H + r] * w->w_hh[(size_t)(2 * H + r) * H + j];
            drh[j] = s;
        }
        for (int j = 0; j < H; j++) {
            const double r = act[j];
            dax[j] = drh[j] * hp[j] * r * (1 - r);
            dhp[j] += drh[j] * r;
        }
        break;
    }
    case NN_CELL_GRU_SIMPLE:
        for (int j = 0; j < H; j++) {
            const double u = act[j], n = act[H + j];
            dax[j] = dh[j] * (n - hp[j]) * u * (1 - u);
            dax[H + j] = dh[j] * u * (1 - n * n);
            dhp[j] = dh[j] * (1 - u);
        }
        break;
    }
    for (int r = 0; r < GH; r++) dah[r] = dax[r];
    if (p->cell == NN_CELL_GRU)
        for (int j = 0; j < H; j++) dah[2 * H + j] = dax[2 * H + j] * act[j];
    /* dh_prev through W_hh: every row for most cells; the reset-before GRU's n rows went in above. */
    const int through = p->cell == NN_CELL_GRU_RESET_BEFORE ? 2 * H : GH;
    for (int j = 0; j < H; j++) {
        double s = 0;
        for (int r = 0; r < through; r++) s += dah[r] * w->w_hh[(size_t)r * H + j];
        dhp[j] += s;
    }
    /* Parameter gradients of this step. */
    const int D = p->input;
    if (g->w_ih)
        for (int r = 0; r < GH; r++)
            for (int d = 0; d < D; d++) g->w_ih[(size_t)r * D + d] += (float)(dax[r] * xt[d]);
    if (g->b_ih) for (int r = 0; r < GH; r++) g->b_ih[r] += (float)dax[r];
    if (g->b_hh) for (int r = 0; r < GH; r++) g->b_hh[r] += (float)dah[r];
    if (g->w_hh)
        for (int r = 0; r < GH; r++) {
            const double *src = p->cell == NN_CELL_GRU_RESET_BEFORE && r >= 2 * H ? rh : hp;
            for (int j = 0; j < H; j++) g->w_hh[(size_t)r * H + j] += (float)(dah[r] * src[j]);
        }
}

void nn_rnn_backward_ref(float *dx, float *dh0, float *dc0, const nn_rnn_grads *g, const float *dy, const float *dh_n,
                         const float *dc_n, const float *x, const float *h0, const float *c0, const nn_rnn_weights *w,
                         const nn_rnn_params *p) {
    check_params(p);
    const int T = p->steps, N = p->batch, D = p->input, H = p->hidden, GH = nn_rnn_gate_count(p->cell) * H;
    double h[H], c[H], hn[H], cn[H], ax[GH], ah[GH], act[GH], rh[H];
    double dh[H], dc[H], dhp[H], dcp[H], dax[GH], dah[GH];
    if (dx && !p->accumulate_dx) memset(dx, 0, sizeof(float) * (size_t)T * N * D);
    for (int n = 0; n < N; n++) {
        const int len = seq_len(p, n);
        for (int j = 0; j < H; j++) {
            dh[j] = dh_n ? dh_n[(size_t)n * H + j] : 0.0;
            dc[j] = dc_n && is_lstm(p->cell) ? dc_n[(size_t)n * H + j] : 0.0;
        }
        for (int s = len - 1; s >= 0; s--) {
            /* Recompute the state before step s from the start: quadratic in T, and simple. */
            ref_initial(p, n, h0, c0, h, c);
            for (int q = 0; q < s; q++) {
                ref_step(p, w, x + ((size_t)time_of(p, q, n) * N + n) * D, h, c, ax, ah, act, rh, hn, cn);
                memcpy(h, hn, sizeof h);
                memcpy(c, cn, sizeof c);
            }
            const int t = time_of(p, s, n);
            if (dy) for (int j = 0; j < H; j++) dh[j] += dy[((size_t)t * N + n) * p->ldy + j];
            const float *xt = x + ((size_t)t * N + n) * D;
            ref_step_backward(p, w, g, xt, h, c, dh, dc, dax, dah, dhp, dcp);
            if (dx)
                for (int d = 0; d < D; d++) {
                    double s2 = 0;
                    for (int r = 0; r < GH; r++) s2 += dax[r] * w->w_ih[(size_t)r * D + d];
                    dx[((size_t)t * N + n) * D + d] += (float)s2;
                }
            memcpy(dh, dhp, sizeof dh);
            memcpy(dc, dcp, sizeof dc);
        }
        for (int j = 0; j < H; j++) {
            if (dh0) dh0[(size_t)n * H + j] = (float)dh[j];
            if (dc0) dc0[(size_t)n * H + j] = is_lstm(p->cell) ? (float)dc[j] : 0.0f;
        }
    }
}
