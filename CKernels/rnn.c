/* Recurrent layers through time, forward and backward (shapes, cells and conventions in include/rnn.h).
 *
 * Forward: gx = x W_ih^T + b_ih for all steps in one GEMM; then per step the recurrent product
 * h W_hh^T and the cell (the folded LSTM forward, folded_applies, instead computes [x_t, h] [W_ih, W_hh]^T
 * per step). Backward walks the steps in reverse, turning dh (the recurrent carry plus dy)
 * into the pre-activation gradients dG and the carry dG W_hh for the step before; after the loop,
 * dW_ih += dG^T x and dW_hh += dG^T h_prev are one GEMM each over all steps, the bias and peephole
 * gradients are column sums (the fused loop sums the biases of cells with one dG as it goes: bias_sums),
 * and dx = dG W_ih (which the fused LSTM at full length computes in the step loop instead:
 * dx_in_loop_applies).
 * Each step runs in one of two ways (nn_rnn_set_fused): by default our fused step kernel, one parallel
 * loop over blocks of hidden units whose register tiles of the product get the cell applied at once;
 * or an OpenBLAS GEMM over the batch followed by a parallel pass over the rows (the reset-before GRU,
 * whose n gate needs r before its product, always runs this way). Built per instruction level
 * (CKernels/README.md): the step loops and GEMM calls are common code, the passes and tiles per level.
 *
 * Saved activations (time layout [T, N, .], zero at padded steps), in this order:
 *   hprev [T, N, H]: the state each step consumed;
 *   act   [T, N, S]: RNN h (S = H); LSTM i, f, g, o (4H; coupled f, g, o: 3H); GRU r, z, n, and
 *                    gh_n + b_hn (4H); reset-before GRU r, z, n, r * h_prev (4H); simplified GRU u, n (2H);
 *   cprev, c [T, N, H] each: the LSTM cell state before and after each step (the standard LSTM at full
 *                    length writes cprev for the first step only: cprev_elided).
 * Workspace: gx, later dG [T, N, G*H]; a second [T, N, G*H] for the GRU's recurrent dG (its n block
 * differs from the input one); step rows [N, G*H]; four [N, H] state rows; the recurrent bias [G*H];
 * W_hh packed for the fused step (about G*H*H).
 *
 * Rows with different times at one step (the reverse direction with lengths) make the step's dG rows
 * non-contiguous in the time layout, so backward then also writes them to the step rows for the GEMM.
 * With lengths sorted longest first (PyTorch's enforce_sorted), each step's GEMM covers only the rows
 * still running, as packed sequences do. */
#ifndef NN_LEVEL /* ---- common to every level ---- */
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
    s.i = (int)((unsigned)(n + 127) << 23); /* unsigned: a NaN x gives any n, and a signed shift of it is UB */
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

static size_t fused_packed_size(const nn_rnn_params *p);
static size_t gemm_panels_size(const nn_rnn_params *p);
static size_t wgrad_scratch_size(const nn_rnn_params *p);

size_t nn_rnn_workspace_size(const nn_rnn_params *p) {
    const size_t gh = (size_t)nn_rnn_gate_count(p->cell) * p->hidden;
    const size_t rows = (size_t)p->steps * p->batch;
    const size_t seq = rows * gh * (p->cell == NN_CELL_GRU ? 2 : 1);
    const size_t loop = fused_packed_size(p) + gemm_panels_size(p), after = wgrad_scratch_size(p);
    return seq + (size_t)p->batch * gh + 4 * (size_t)p->batch * p->hidden + gh + (loop > after ? loop : after);
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
/* Each pass applies the cell to batch row n over the hidden units [j0, j1): the OpenBLAS path passes
 * whole rows, the fused path the unit block its tile just computed (one vector for LSTMs and GRUs). Unit
 * loops are vectorised at the level's width without interleaving or masks, so such a block runs as one
 * vector iteration rather than in the scalar remainder of a wider loop (measured: the pass took 63% of
 * the LSTM step before). */
#define NN_XSTR(x) NN_STR(x)
#define UNITS _Pragma(NN_XSTR(clang loop vectorize_width(VW) interleave_count(1) vectorize_predicate(disable)))

/* Below this many state elements per step a pass runs on the calling thread: every row costs several
 * transcendental functions per element, so the bar is lower than NN_PARALLEL_MIN. */
#define RNN_PARALLEL_MIN 2048

typedef struct {
    const nn_rnn_params *p;
    int H, GH, S;
    int s;              /* loop step */
    int pass;           /* reset-before GRU: 1 computes r, z and r*h; 2 computes n and h */
    const float *gx;    /* [T, N, GH] input projections, b_ih included */
    float *gh;          /* [N, GH] this step's recurrent products, no bias */
    const float *bh;    /* [GH] b_hh (zeros without bias) */
    const nn_rnn_weights *w;
    const float *hin;   /* [N, H] state before the step */
    float *hout;        /* [N, H] state after it (the OpenBLAS path updates in place: hout == hin) */
    float *c, *rh;      /* [N, H] LSTM cell state (in place); the reset-before GRU's r * h */
    float *y;
    float *hprev, *act, *cprev, *cnew; /* saved, [T, N, .], or null for inference */
    /* fused path */
    const float *packed; /* W_hh in unit blocks (pack_forward), W_ih above it when folded */
    int rows;            /* rows whose recurrent product is computed: the running prefix, or all */
    int folded;          /* the step's product covers the input projection (folded_applies): gx unused */
    const float *x;      /* folded: [T, N, D] inputs, read by the step's product */
    int D;               /* folded: input width; 0 when the projection ran before the loop */
} fwd_ctx;

/* Row pointers of one forward step: h is written (hin read where the cell needs h_prev), y is written
 * alongside h, a (saved gates) may be null, c is the LSTM cell state updated in place, cprev_s and c_s
 * (saved cell states) may be null. Everything is written in the unit loops themselves: copying h or c
 * out afterwards reloads what the vector loop just stored (measured slower). */
typedef struct {
    const float *gx, *gh, *hin;
    float *h, *y, *a, *c, *cprev_s, *c_s;
} fwd_rows;

/* ---- the fused recurrent step ------------------------------------------------------------------------
 * Per step, one parallel loop over blocks of hidden units (nn_parallel_items: each thread starts on its
 * static share, then takes what the others have not started); each thread owns whole blocks, reads the
 * block's slice of W_hh (packed once per call, so it stays in that core's L2 across the steps), computes
 * the block's recurrent products for every row in register tiles and applies the cell to them at once.
 * Forward blocks hold FWD_UB units of every gate (the tile's columns are the G gates of those units, one
 * vector each for LSTMs and GRUs); backward blocks hold BUB units (two vectors) of dh = dG W_hh
 * (K = G·H). No OpenBLAS call and no second pass per step: measured against the per-step GEMM path in
 * Benchmarks/README.md. Sizes over VW, the level's vector width (simd.h). */

/* Units per forward block: one vector per gate for LSTMs and GRUs, more for cells with fewer gates, so
 * every tile row holds three or four vectors. */
#define FWD_UB(gates) (VW * ((gates) == 3 ? 1 : 4 / (gates)))
/* Forward tile rows: 4 x 4 vectors fill AVX-512's 32 registers; AVX2 has 16, so 3 rows there. */
#define FMR (VW == 8 ? 3 : 4)
/* Backward tile rows (of 2 vectors): 8 on AVX-512, so a batch of 32 is four whole tiles. */
#define BMR (VW == 16 ? 8 : 6)
#define BUB (2 * VW)   /* backward block units */
enum { TMR = 8, TNV = 4 }; /* the most rows and vectors of any tile */
#define NREGS (VW == 16 ? 32 : 16) /* vector registers */
enum { FRG = 8 }; /* forward step: tiles per row group */
/* The forward step's K chunk. Each chunk boundary stores and reloads every tile's accumulators; with
 * AVX-512 the panel streams from L2 fast enough for a chunk twice L1's share: the LSTM bench's inference
 * forward on Zen 4, in-process alternation, 9.21 ms median with 128 against 9.51 with 64 (one thread
 * 17.50 against 18.10). At the AVX2 level on the same machine 128 was 9% slower than 64. */
#define FKC (VW == 16 ? 128 : 64)
enum { WKC = 256 };         /* weight gradients: K chunk */
/* The weight gradients' packed chunks of dG and of the inputs (wgrad), in the workspace the step loop's
 * packed weights used. */
static size_t wgrad_scratch_size(const nn_rnn_params *p) {
    return (size_t)WKC * ((size_t)nn_rnn_gate_count(p->cell) * p->hidden + p->input + p->hidden);
}

/* Whether the cell state before a step is read from the step before's saved c (written for the first step
 * only): the standard LSTM at full length, fused or not (the fused forward's whole-vector cell then skips
 * the write, a seventh of what it saves and backward reads back; the unit loops still write it). The
 * other LSTMs keep every row: the peephole gradients sum over cprev as one buffer. */
static int cprev_elided(const nn_rnn_params *p) { return p->cell == NN_CELL_LSTM && !p->lengths; }

static int use_fused = 1;
void nn_rnn_set_fused(int on) { __atomic_store_n(&use_fused, on != 0, __ATOMIC_RELAXED); }

static int fused_applies(const nn_rnn_params *p) {
    return __atomic_load_n(&use_fused, __ATOMIC_RELAXED) && p->cell != NN_CELL_GRU_RESET_BEFORE;
}

/* Whether the fused forward of the standard LSTM takes the input projection into each step's product
 * (K = D + H, W_ih packed above W_hh in each block's panel) instead of one GEMM before the loop: every
 * block then is a whole vector of units at every level (H a multiple of 16), so each block's cell reads
 * its gates straight from the tile. Measured on the LSTM bench (2 threads, AVX-512): the projection as
 * a GEMM took 2.9 of the forward's 9.4 ms, a third more than its share of multiply-adds, and its
 * [T, N, 4H] result went through memory once each way; folded, the forward took 16.3 ms of CPU on one
 * thread against 17.9 (input 64: 13.9 against 14.9; 256: 21.2 against 22.5). The GRU's n gate needs its input and recurrent
 * sums apart, and the other cells have partial blocks, so they keep the GEMM. */
static int folded_applies(const nn_rnn_params *p) {
    return fused_applies(p) && p->cell == NN_CELL_LSTM && p->hidden % 16 == 0;
}

/* Whether the fused backward computes dx = dG W_ih in its step loop, each step's rows as soon as they
 * are known, on the same tiles as the carry dG W_hh (extra blocks of the step's parallel loop over the
 * columns of W_ih), rather than as one OpenBLAS product after the loop: the LSTM whose forward is
 * folded, at full length (every row then has dx to compute at every step). */
static int dx_in_loop_applies(const nn_rnn_params *p) { return folded_applies(p) && !p->lengths; }
/* Measured on the LSTM bench's backward, one thread: 37.0 ms against 38.6 (best of 60), 42.3 against
 * 43.3 (median); input 256 over 100 steps: 74.2 against 76.4. */

/* W_hh packed for either direction of the step at any level: blocks of at most 64 units forward (4
 * vectors of 16) and 32 backward, zero-padded past H; the folded forward packs W_ih above it, and the
 * backward that computes dx in its loop packs W_ih after it. */
static size_t fused_packed_size(const nn_rnn_params *p) {
    const size_t gh = (size_t)nn_rnn_gate_count(p->cell) * p->hidden;
    return gh * (size_t)((p->hidden + 63) / 64 * 64 + (folded_applies(p) ? (p->input + 63) / 64 * 64 : 0));
}

typedef struct {
    const float *w_ih, *w_hh;
    float *packed;
    int G, H;
    int D;              /* the folded forward's input rows above W_hh's; backward: W_ih's columns packed
                         * after W_hh's (dx in the loop); 0 otherwise */
} pack_ctx;

/* A product C [m, n] = A B (+ bias) on the step kernel's tiles: A(i, k) = a[i*lda + k],
 * B(k, j) = b[k*bk + j*bj], packed into `panels` (panels_size floats) before the tiles run. */
typedef struct {
    int m, n, k;
    const float *a;
    long lda;
    const float *b;
    long bk, bj;
    float *c;
    long ldc;
    const float *bias;  /* [n] added to C, or null */
    float *panels;
} rnn_gemm;

/* K is cut into chunks of KC so a tile's panel rows stay in L1 (256 x 4 vectors: 32 KB on AVX2, 64 KB on
 * AVX-512); C takes each chunk's sums in turn, so every element is still summed in the same order. */
#define KC 256

/* Columns per panel: four vectors at the widest level (the tile shapes are shared with the step). */
#define GW (4 * VW)
static size_t panels_size(size_t k, size_t n) { return k * ((n + 63) / 64 * 64); }

/* W_ih^T, packed for the input projection. */
static size_t gemm_panels_size(const nn_rnn_params *p) {
    return panels_size(p->input, (size_t)nn_rnn_gate_count(p->cell) * p->hidden);
}
/* Zeroes rows [t, n, 0..width) of a [T, N, ld] buffer at the padded steps t >= lengths[n]. */
static void zero_padded(float *buf, int width, long ld, const nn_rnn_params *p) {
    if (!p->lengths || !buf) return;
    for (int n = 0; n < p->batch; n++)
        for (int t = (int)p->lengths[n]; t < p->steps; t++) memset(buf + ((size_t)t * p->batch + n) * ld, 0, sizeof(float) * width);
}

typedef struct {
    const nn_rnn_params *p;
    int H, GH, S;
    int s, pass;
    const float *dy, *dh_n;
    const nn_rnn_weights *w;
    const float *hprev, *act, *cprev, *cnew;
    float *dgx;     /* [T, N, GH] gradients of the input pre-activations */
    float *dgh;     /* [T, N, GH] of the recurrent ones (the GRU's own buffer, else dgx) */
    float *dgs;     /* [N, GH] step rows of dgh when times differ across rows (OpenBLAS path), or null */
    float *dh;      /* [N, H] recurrent carry in, and the direct part of dh_prev out */
    float *dc;      /* [N, H] cell gradient carry (LSTM), in place */
    float *drh;     /* [N, H] reset-before GRU: gradient of r * h_prev */
    /* fused path */
    const float *packed; /* W_hh in blocks of BUB columns (pack_backward_block), then W_ih's when dx is
                          * computed in the loop */
    float *dx;           /* [T, N, D]: dx of rec_step's rows, written in the loop (dx_in_loop_applies), or null */
    int rec_step;        /* the step whose dG rows feed this step's carry, or -1 */
    int rows;            /* rows that ran rec_step: the running prefix, or all */
    int pointwise;       /* 0: only the carry (after step 0, for dh0) */
    float *bsum;         /* [GH] column sums of dG over the steps run so far, each block's columns added
                          * after its step's gate maths while they are in L1 (cells whose dgh is dgx), or null */
} bwd_ctx;

/* Row n of the LSTM cell state before step k->s. */
static inline const float *cprev_row(const bwd_ctx *k, int n) {
    const nn_rnn_params *p = k->p;
    if (cprev_elided(p) && k->s > 0) return k->cnew + ((size_t)time_of(p, k->s - 1, n) * p->batch + n) * k->H;
    return k->cprev + ((size_t)time_of(p, k->s, n) * p->batch + n) * k->H;
}

/* One right-hand side of a weight-gradient product: C [., q] += A^T B with B [K, ldb]; the standard
 * LSTM's dW_ih and dW_hh share A = dG and go through one pass over it. */
typedef struct {
    const float *b;
    long ldb;
    float *c;
    long ldc;
    int q;
} wg_rhs;

/* One strip of four vectors of a right-hand side's columns: its side, first column q0, width w, and its
 * [kc][w] place in the packed chunk of B (wgrad_strip). */
typedef struct {
    const wg_rhs *o;
    int q0, w;
    float *packed;
} wg_strip;

/* out[j] (and out2[j] when given) += sum over rows r of a[r*lda + j] (times b[r*ldb + j] when b is given), for j < cols, in blocks
 * of COLSUM_BLOCK columns. */
enum { COLSUM_BLOCK = 64 };

#define NN_LEVEL_SOURCE "rnn.c"
#include "levels.h"

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
    float *packed = bh + GH, *panels = packed + fused_packed_size(p);

    if (h0) memcpy(h, h0, sizeof(float) * N * H); else memset(h, 0, sizeof(float) * N * H);
    if (c0 && is_lstm(p->cell)) memcpy(c, c0, sizeof(float) * N * H); else memset(c, 0, sizeof(float) * N * H);
    if (w->b_hh) memcpy(bh, w->b_hh, sizeof(float) * GH); else memset(bh, 0, sizeof(float) * GH);

    const int fused = fused_applies(p), folded = folded_applies(p);
    if (folded && w->b_ih) /* the step adds both biases at once */
        for (int j = 0; j < GH; j++) bh[j] += w->b_ih[j];
    if (rows > 0 && folded) {
        /* the step's product covers the projection */
    } else if (rows > 0 && fused) {
        /* B(k, j) = W_ih[j, k]: W_ih^T. */
        const rnn_gemm g = {.m = (int)rows, .n = GH, .k = D, .a = x, .lda = D, .b = w->w_ih, .bk = 1, .bj = D,
                            .c = gx, .ldc = GH, .bias = w->b_ih, .panels = panels};
        NN_DISPATCH(gemm)(&g);
    } else if (rows > 0) {
        if (w->b_ih)
            for (size_t r = 0; r < rows; r++) memcpy(gx + r * GH, w->b_ih, sizeof(float) * GH);
        nn_sgemm_blocked(0, 1, (int)rows, GH, D, 1.0f, x, D, w->w_ih, D, w->b_ih ? 1.0f : 0.0f, gx, GH);
    }

    fwd_ctx k = {.p = p, .H = H, .GH = GH, .S = S, .gx = gx, .gh = gh, .bh = bh, .w = w, .hin = h, .hout = h,
                 .c = c, .rh = rh, .y = y, .packed = packed, .folded = folded, .x = x,
                 .D = folded ? D : 0};
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
    const float *final = h;
    if (fused && steps > 0) {
        const pack_ctx pk = {.w_ih = w->w_ih, .w_hh = w->w_hh, .packed = packed, .G = G, .H = H, .D = k.D};
        NN_DISPATCH(pack_forward)(&pk);
        float *other = rh; /* the state alternates between h and rh: blocks read all of one, write the other */
        for (int s = 0; s < steps; s++) {
            k.s = s;
            k.rows = gemm_rows(p, s, sorted);
            k.hout = other;
            NN_DISPATCH(fwd_blocks)(&k);
            other = (float *)k.hin;
            k.hin = k.hout;
        }
        final = k.hin;
    } else {
        for (int s = 0; s < steps; s++) {
            const int m = gemm_rows(p, s, sorted);
            k.s = s;
            if (p->cell == NN_CELL_GRU_RESET_BEFORE) {
                /* r and z first; n needs r * h before W_hn can be applied. */
                nn_sgemm_blocked(0, 1, m, 2 * H, H, 1.0f, h, H, w->w_hh, H, 0.0f, gh, GH);
                k.pass = 1;
                NN_DISPATCH(fwd_pass)(&k);
                nn_sgemm_blocked(0, 1, m, H, H, 1.0f, rh, H, w->w_hh + (size_t)2 * H * H, H, 0.0f, gh + 2 * H, GH);
                k.pass = 2;
                NN_DISPATCH(fwd_pass)(&k);
            } else {
                nn_sgemm_blocked(0, 1, m, GH, H, 1.0f, h, H, w->w_hh, H, 0.0f, gh, GH);
                k.pass = 0;
                NN_DISPATCH(fwd_pass)(&k);
            }
        }
    }
    if (h_n) memcpy(h_n, final, sizeof(float) * N * H);
    if (c_n && is_lstm(p->cell)) memcpy(c_n, c, sizeof(float) * N * H);
}

/* The products after the loop: dW_ih += dG^T x, dW_hh += dG_h^T h_prev (the reset-before GRU's n rows take
 * r * h_prev instead), dx (+)= dG W_ih. The fused path's weight gradients run on our tiles (wgrad) when the
 * widths are whole vectors; the rest are OpenBLAS calls on fixed blocks. */
static void blas_products(float *dx, const nn_rnn_grads *g, const float *x, const nn_rnn_weights *w,
                                          const float *hprev, const float *act, const float *dgx, const float *dgh,
                                          float *scratch, const nn_rnn_params *p) {
    const int D = p->input, H = p->hidden, GH = nn_rnn_gate_count(p->cell) * H, S = act_width(p->cell, H);
    const int rows = p->steps * p->batch;
    if (fused_applies(p) && D % 16 == 0 && H % 16 == 0) { /* every level's vector divides the widths */
        const wg_rhs ih = {.b = x, .ldb = D, .c = g->w_ih, .ldc = D, .q = D}, hh = {.b = hprev, .ldb = H, .c = g->w_hh, .ldc = H, .q = H};
        if (dgh == dgx && g->w_ih && g->w_hh) {
            const wg_rhs both[2] = {ih, hh};
            NN_DISPATCH(wgrad)(GH, rows, dgx, GH, both, 2, scratch);
        } else {
            if (g->w_ih) NN_DISPATCH(wgrad)(GH, rows, dgx, GH, &ih, 1, scratch);
            if (g->w_hh) NN_DISPATCH(wgrad)(GH, rows, dgh, GH, &hh, 1, scratch);
        }
    } else {
        if (g->w_ih) nn_sgemm_blocked(1, 0, GH, D, rows, 1.0f, dgx, GH, x, D, 1.0f, g->w_ih, D);
        if (g->w_hh) {
            if (p->cell == NN_CELL_GRU_RESET_BEFORE) {
                const float *rh = act + 3 * H; /* r * h_prev, rows S apart */
                nn_sgemm_blocked(1, 0, 2 * H, H, rows, 1.0f, dgh, GH, hprev, H, 1.0f, g->w_hh, H);
                nn_sgemm_blocked(1, 0, H, H, rows, 1.0f, dgh + 2 * H, GH, rh, S, 1.0f, g->w_hh + (size_t)2 * H * H, H);
            } else {
                nn_sgemm_blocked(1, 0, GH, H, rows, 1.0f, dgh, GH, hprev, H, 1.0f, g->w_hh, H);
            }
        }
    }
    if (dx) nn_sgemm_blocked(0, 0, rows, D, GH, 1.0f, dgx, GH, w->w_ih, D, p->accumulate_dx ? 1.0f : 0.0f, dx, D);
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
    float *packed = drh + 2 * (size_t)N * H + GH;
    const int fused = fused_applies(p);

    bwd_ctx k = {.p = p, .H = H, .GH = GH, .S = S, .dy = dy, .dh_n = dh_n, .w = w, .hprev = saved,
                 .act = saved + rows * H, .dgx = dgx, .dgh = dgh, .dh = dh, .dc = dc, .drh = drh, .packed = packed};
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
    const int dx_in_loop = fused && steps > 0 && dx && dx_in_loop_applies(p);
    if (fused && steps > 0) {
        const pack_ctx pk = {.w_ih = w->w_ih, .w_hh = w->w_hh, .packed = packed, .G = G, .H = H, .D = dx_in_loop ? D : 0};
        NN_DISPATCH(pack_backward)(&pk);
        k.dx = dx_in_loop ? dx : NULL;
        k.pointwise = 1;
        if (dgh == dgx && (g->b_ih || g->b_hh)) { /* the [N*H + GH] after drh, unused by the fused loop */
            k.bsum = drh + (size_t)N * H;
            memset(k.bsum, 0, sizeof(float) * GH);
        }
        for (int s = steps - 1; s >= 0; s--) {
            k.s = s;
            k.rec_step = s + 1 < steps ? s + 1 : -1;
            k.rows = k.rec_step >= 0 ? gemm_rows(p, s + 1, sorted) : 0;
            NN_DISPATCH(bwd_blocks)(&k);
        }
        /* The carry through W_hh of step 0 completes dL/dh0. */
        k.rec_step = 0;
        k.rows = N;
        k.pointwise = 0;
        NN_DISPATCH(bwd_blocks)(&k);
    } else {
        const int uniform = uniform_time(p);
        k.dgs = uniform ? NULL : dgs;
        for (int s = steps - 1; s >= 0; s--) {
            const int m = gemm_rows(p, s, sorted);
            const int t = p->reverse ? T - 1 - s : s; /* the step's time when uniform */
            const float *rec = uniform ? dgh + (size_t)t * N * GH : dgs; /* this step's recurrent dG rows */
            k.s = s;
            if (p->cell == NN_CELL_GRU_RESET_BEFORE) {
                k.pass = 1;
                NN_DISPATCH(bwd_pass)(&k);
                nn_sgemm_blocked(0, 0, m, H, H, 1.0f, rec + 2 * H, GH, w->w_hh + (size_t)2 * H * H, H, 0.0f, drh, H);
                k.pass = 2;
                NN_DISPATCH(bwd_pass)(&k);
                nn_sgemm_blocked(0, 0, m, H, 2 * H, 1.0f, rec, GH, w->w_hh, H, 1.0f, dh, H);
            } else {
                k.pass = 0;
                NN_DISPATCH(bwd_pass)(&k);
                nn_sgemm_blocked(0, 0, m, H, GH, 1.0f, rec, GH, w->w_hh, H, 1.0f, dh, H);
            }
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
    /* The weight gradients read dG and the inputs in place on our tiles (wgrad): measured on the LSTM
     * bench's backward, 2 threads, AVX-512, interleaved in one process, 17.9 ms median against 18.6 with
     * OpenBLAS (best 16.9 against 17.7), and the standard LSTM's two in one pass over dG 17.5 against
     * 17.8 (same bits). An earlier try through a transposed dG lost to OpenBLAS (38 to 43 ms on one
     * thread): the transpose cost more than the packing it saved. */
    blas_products(dx_in_loop ? NULL : dx, g, x, w, k.hprev, k.act, dgx, dgh, packed, p);
    if (k.bsum) {
        for (int j = 0; j < GH; j++) {
            if (g->b_ih) g->b_ih[j] += k.bsum[j];
            if (g->b_hh) g->b_hh[j] += k.bsum[j];
        }
    } else if (dgh == dgx) { /* the same sums for both biases: one pass */
        NN_DISPATCH(column_sums)(g->b_ih, g->b_hh, dgx, GH, NULL, 0, (long)rows, GH);
    } else {
        NN_DISPATCH(column_sums)(g->b_ih, NULL, dgx, GH, NULL, 0, (long)rows, GH);
        NN_DISPATCH(column_sums)(g->b_hh, NULL, dgh, GH, NULL, 0, (long)rows, GH);
    }
    if (p->cell == NN_CELL_LSTM_PEEPHOLE) {
        NN_DISPATCH(column_sums)(g->w_ci, NULL, dgx, GH, k.cprev, H, (long)rows, H);
        NN_DISPATCH(column_sums)(g->w_cf, NULL, dgx + H, GH, k.cprev, H, (long)rows, H);
        NN_DISPATCH(column_sums)(g->w_co, NULL, dgx + 3 * H, GH, k.cnew, H, (long)rows, H);
    }
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

#else /* ---- per instruction level (levels.h compiles this part once per level) ---- */

/* Short copies and clears within a row (a unit block is 8 or 16 floats): plain loops the compiler
 * vectorises in place, where memcpy and memset would be library calls. */
static inline void NN_L(copy_units)(float *dst, const float *src, int j0, int j1) { UNITS for (int j = j0; j < j1; j++) dst[j] = src[j]; }
static inline void NN_L(clear_units)(float *dst, int j0, int j1) { UNITS for (int j = j0; j < j1; j++) dst[j] = 0.0f; }

/* fast_exp, fast_sigmoid and fast_tanh on whole vectors, operation for operation: the forward step applies
 * the LSTM and GRU cells to a tile's output straight from L1 with these, one vector per gate, where the
 * unit loops (vectorised behind run-time alias checks, a block being a single vector iteration) took
 * 40% of the step. */
typedef unsigned NN_L(vu_) __attribute__((vector_size(VW * 4)));
static inline vf NN_L(vexp)(vf x) {
    x = vselect(x > vsplat(88.3762626647949f), vsplat(88.3762626647949f), x);
    x = vselect(x < vsplat(-88.3762626647949f), vsplat(-88.3762626647949f), x);
    const vf t = x * 1.44269504088896341f + 12582912.0f;
    const vf fx = t - 12582912.0f;
    const vi n = (vi)t - 0x4B400000;
    vf r = x - fx * 0.693359375f;
    r = r - fx * -2.12194440e-4f;
    const vf z = r * r;
    const vf y = (((((1.9875691500E-4f * r + 1.3981999507E-3f) * r + 8.3334519073E-3f) * r + 4.1665795894E-2f) * r +
                   1.6666665459E-1f) * r + 5.0000001201E-1f) * z + r + 1.0f;
    const vi e = (vi)((NN_L(vu_))(n + 127) << 23);
    return y * (vf)e;
}
static inline vf NN_L(vsigmoid)(vf x) { return 1.0f / (1.0f + NN_L(vexp)(-x)); }
static inline vf NN_L(vtanh)(vf x) {
    const vf ax = vselect(x < vsplat(0.0f), -x, x);
    const vf z = x * x;
    const vf small = ((((-5.70498872745E-3f * z + 2.06390887954E-2f) * z - 5.37397155531E-2f) * z +
                       1.33314422036E-1f) * z - 3.33332819422E-1f) * z * x + x;
    vf big = 1.0f - 2.0f / (NN_L(vexp)(2.0f * ax) + 1.0f);
    big = vselect(x < vsplat(0.0f), -big, big);
    return vselect(ax < vsplat(0.625f), small, big);
}



static inline __attribute__((always_inline)) void NN_L(rnn_fwd_units_body)(const fwd_ctx *k, int j0, int j1, const fwd_rows *r, const int save) {
    const float *gx = r->gx, *gh = r->gh, *bh = k->bh;
    float *h = r->h, *y = r->y, *a = r->a;
    if (k->p->cell == NN_CELL_RNN_TANH) {
        UNITS for (int j = j0; j < j1; j++) {
            const float v = fast_tanh(gx[j] + gh[j] + bh[j]);
            h[j] = v;
            y[j] = v;
            if (save) a[j] = v;
        }
    } else {
        UNITS for (int j = j0; j < j1; j++) {
            float v = gx[j] + gh[j] + bh[j];
            v = v > 0 ? v : (v != v ? v : 0.0f); /* NaN passes as in PyTorch's relu */
            h[j] = v;
            y[j] = v;
            if (save) a[j] = v;
        }
    }
}

static inline __attribute__((always_inline)) void NN_L(lstm_fwd_units_body)(const fwd_ctx *k, int j0, int j1, const fwd_rows *r, const int save) {
    const int H = k->H;
    const float *gx = r->gx, *gh = r->gh, *bh = k->bh;
    float *h = r->h, *y = r->y, *a = r->a, *c = r->c, *cps = r->cprev_s, *cs = r->c_s;
    if (k->p->cell == NN_CELL_LSTM) {
        UNITS for (int j = j0; j < j1; j++) {
            const float i = fast_sigmoid(gx[j] + gh[j] + bh[j]);
            const float f = fast_sigmoid(gx[H + j] + gh[H + j] + bh[H + j]);
            const float g = fast_tanh(gx[2 * H + j] + gh[2 * H + j] + bh[2 * H + j]);
            const float o = fast_sigmoid(gx[3 * H + j] + gh[3 * H + j] + bh[3 * H + j]);
            const float cp = c[j], cn = f * cp + i * g, hv = o * fast_tanh(cn);
            c[j] = cn;
            h[j] = hv;
            y[j] = hv;
            if (save) { a[j] = i; a[H + j] = f; a[2 * H + j] = g; a[3 * H + j] = o; cps[j] = cp; cs[j] = cn; }
        }
    } else if (k->p->cell == NN_CELL_LSTM_PEEPHOLE) {
        const float *pi = k->w->w_ci, *pf = k->w->w_cf, *po = k->w->w_co;
        UNITS for (int j = j0; j < j1; j++) {
            const float cp = c[j];
            const float i = fast_sigmoid(gx[j] + gh[j] + bh[j] + pi[j] * cp);
            const float f = fast_sigmoid(gx[H + j] + gh[H + j] + bh[H + j] + pf[j] * cp);
            const float g = fast_tanh(gx[2 * H + j] + gh[2 * H + j] + bh[2 * H + j]);
            const float cn = f * cp + i * g;
            const float o = fast_sigmoid(gx[3 * H + j] + gh[3 * H + j] + bh[3 * H + j] + po[j] * cn);
            const float hv = o * fast_tanh(cn);
            c[j] = cn;
            h[j] = hv;
            y[j] = hv;
            if (save) { a[j] = i; a[H + j] = f; a[2 * H + j] = g; a[3 * H + j] = o; cps[j] = cp; cs[j] = cn; }
        }
    } else { /* coupled: f, g, o */
        UNITS for (int j = j0; j < j1; j++) {
            const float f = fast_sigmoid(gx[j] + gh[j] + bh[j]);
            const float g = fast_tanh(gx[H + j] + gh[H + j] + bh[H + j]);
            const float o = fast_sigmoid(gx[2 * H + j] + gh[2 * H + j] + bh[2 * H + j]);
            const float cp = c[j], cn = f * cp + (1.0f - f) * g, hv = o * fast_tanh(cn);
            c[j] = cn;
            h[j] = hv;
            y[j] = hv;
            if (save) { a[j] = f; a[H + j] = g; a[2 * H + j] = o; cps[j] = cp; cs[j] = cn; }
        }
    }
}

static inline __attribute__((always_inline)) void NN_L(gru_fwd_units_body)(const fwd_ctx *k, int j0, int j1, const fwd_rows *r, const int save) {
    const int H = k->H;
    const float *gx = r->gx, *gh = r->gh, *bh = k->bh, *hin = r->hin;
    float *h = r->h, *y = r->y, *a = r->a;
    UNITS for (int j = j0; j < j1; j++) {
        const float rg = fast_sigmoid(gx[j] + gh[j] + bh[j]);
        const float z = fast_sigmoid(gx[H + j] + gh[H + j] + bh[H + j]);
        const float hn = gh[2 * H + j] + bh[2 * H + j];
        const float n = fast_tanh(gx[2 * H + j] + rg * hn);
        const float hv = n + z * (hin[j] - n);
        h[j] = hv;
        y[j] = hv;
        if (save) { a[j] = rg; a[H + j] = z; a[2 * H + j] = n; a[3 * H + j] = hn; }
    }
}

/* Pass 1: r, z and r * h_prev (into rh and, when training, the act block), z kept in zbuf; pass 2: n and h. */
static inline __attribute__((always_inline)) void NN_L(gru_rb_fwd_units_body)(const fwd_ctx *k, int j0, int j1, const fwd_rows *r, float *rh, float *zbuf, const int save) {
    const int H = k->H;
    const float *gx = r->gx, *gh = r->gh, *bh = k->bh;
    float *h = r->h, *y = r->y, *a = r->a;
    if (k->pass == 1) {
        UNITS for (int j = j0; j < j1; j++) {
            const float rg = fast_sigmoid(gx[j] + gh[j] + bh[j]);
            const float z = fast_sigmoid(gx[H + j] + gh[H + j] + bh[H + j]);
            const float v = rg * h[j];
            rh[j] = v;
            zbuf[j] = z;
            if (save) { a[j] = rg; a[H + j] = z; a[3 * H + j] = v; }
        }
    } else {
        UNITS for (int j = j0; j < j1; j++) {
            const float n = fast_tanh(gx[2 * H + j] + gh[2 * H + j] + bh[2 * H + j]);
            const float hv = n + zbuf[j] * (h[j] - n);
            h[j] = hv;
            y[j] = hv;
            if (save) a[2 * H + j] = n;
        }
    }
}

static inline __attribute__((always_inline)) void NN_L(gru_simple_fwd_units_body)(const fwd_ctx *k, int j0, int j1, const fwd_rows *r, const int save) {
    const int H = k->H;
    const float *gx = r->gx, *gh = r->gh, *bh = k->bh, *hin = r->hin;
    float *h = r->h, *y = r->y, *a = r->a;
    UNITS for (int j = j0; j < j1; j++) {
        const float u = fast_sigmoid(gx[j] + gh[j] + bh[j]);
        const float n = fast_tanh(gx[H + j] + gh[H + j] + bh[H + j]);
        const float hp = hin[j], hv = hp + u * (n - hp);
        h[j] = hv;
        y[j] = hv;
        if (save) { a[j] = u; a[H + j] = n; }
    }
}


/* The saving and non-saving forms are separate loops: a loop-invariant `if (a)` inside the loop becomes
 * masked stores, which measured slower than the rest of the cell together. */
static void NN_L(rnn_fwd_units)(const fwd_ctx *k, int j0, int j1, const fwd_rows *r) {
    if (r->a) NN_L(rnn_fwd_units_body)(k, j0, j1, r, 1); else NN_L(rnn_fwd_units_body)(k, j0, j1, r, 0);
}
static void NN_L(lstm_fwd_units)(const fwd_ctx *k, int j0, int j1, const fwd_rows *r) {
    if (r->a) NN_L(lstm_fwd_units_body)(k, j0, j1, r, 1); else NN_L(lstm_fwd_units_body)(k, j0, j1, r, 0);
}
static void NN_L(gru_fwd_units)(const fwd_ctx *k, int j0, int j1, const fwd_rows *r) {
    if (r->a) NN_L(gru_fwd_units_body)(k, j0, j1, r, 1); else NN_L(gru_fwd_units_body)(k, j0, j1, r, 0);
}
static void NN_L(gru_rb_fwd_units)(const fwd_ctx *k, int j0, int j1, const fwd_rows *r, float *rh, float *zbuf) {
    if (r->a) NN_L(gru_rb_fwd_units_body)(k, j0, j1, r, rh, zbuf, 1); else NN_L(gru_rb_fwd_units_body)(k, j0, j1, r, rh, zbuf, 0);
}
static void NN_L(gru_simple_fwd_units)(const fwd_ctx *k, int j0, int j1, const fwd_rows *r) {
    if (r->a) NN_L(gru_simple_fwd_units_body)(k, j0, j1, r, 1); else NN_L(gru_simple_fwd_units_body)(k, j0, j1, r, 0);
}

/* Units [j0, j1) of batch row n at forward step k->s: applies the cell, saves what backward needs,
 * writes y. A row past its length carries its state over. */
static void NN_L(fwd_units)(const fwd_ctx *k, int n, int j0, int j1) {
    const nn_rnn_params *p = k->p;
    const int H = k->H, N = p->batch;
    const float *hin = k->hin + (size_t)n * H;
    float *h = k->hout + (size_t)n * H;
    if (k->s >= seq_len(p, n)) {
        if (h != hin) NN_L(copy_units)(h, hin, j0, j1);
        return;
    }
    const size_t tn = (size_t)time_of(p, k->s, n) * N + n;
    const fwd_rows r = {.gx = k->gx + tn * k->GH, .gh = k->gh + (size_t)n * k->GH, .hin = hin, .h = h,
                        .y = k->y + tn * p->ldy, .a = k->act ? k->act + tn * k->S : NULL, .c = k->c + (size_t)n * H,
                        .cprev_s = k->cprev ? k->cprev + tn * H : NULL, .c_s = k->cnew ? k->cnew + tn * H : NULL};
    if (k->hprev && k->pass != 2) NN_L(copy_units)(k->hprev + tn * H, hin, j0, j1);
    switch (p->cell) {
    case NN_CELL_RNN_TANH: case NN_CELL_RNN_RELU: NN_L(rnn_fwd_units)(k, j0, j1, &r); break;
    case NN_CELL_LSTM: case NN_CELL_LSTM_PEEPHOLE: case NN_CELL_LSTM_COUPLED: NN_L(lstm_fwd_units)(k, j0, j1, &r); break;
    case NN_CELL_GRU: NN_L(gru_fwd_units)(k, j0, j1, &r); break;
    case NN_CELL_GRU_RESET_BEFORE:
        /* z waits in c (unused by GRUs) between the passes. */
        NN_L(gru_rb_fwd_units)(k, j0, j1, &r, k->rh + (size_t)n * H, k->c + (size_t)n * H);
        break;
    case NN_CELL_GRU_SIMPLE: NN_L(gru_simple_fwd_units)(k, j0, j1, &r); break;
    }
}


static void NN_L(fwd_row)(const fwd_ctx *k, int n) { NN_L(fwd_units)(k, n, 0, k->H); }

static void NN_L(fwd_pass)(const fwd_ctx *k) {
    const int N = k->p->batch;
    NN_PARALLEL_FOR_IF((long)N * k->H >= RNN_PARALLEL_MIN)
    for (int n = 0; n < N; n++) NN_L(fwd_row)(k, n);
}

/* c [mr, nv*VW] (rows ldc apart) = (more ? c : 0) + sum over k < K of a[r][k*ak] * b[k*ldb .. + nv*VW):
 * rows of A through pointers, their elements ak apart; B rows ldb apart (a packed panel: ldb = nv*VW).
 * Each output element is one chain of fused multiply-adds in k order, whoever computes it. */
static inline __attribute__((always_inline)) void NN_L(tile_mk)(const int mr, const int nv, int K, const float *const *a,
                                                                long ak, const float *b, long ldb, float *c, long ldc,
                                                                const int more) {
    vf acc[TMR][TNV];
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++) acc[r][v] = more ? vload(c + r * ldc + v * VW) : vsplat(0.0f);
    /* The row broadcasts stay in registers and each vector of B is loaded once, used by every row and
     * dropped (rows·vectors + rows + 1 registers: 4x4 on AVX2 spilled with all of B held); where that
     * does not fit, B's vectors stay and each broadcast is used once (rows·vectors + vectors + 1: the
     * backward's 6x2 on AVX2, which spilled accumulators to the stack every k the first way and ran the
     * LSTM bench's backward at 101 ms on one thread against 75, Zen 3). The sums are the same either way.
     * Not unrolled: a second k in flight spilled accumulators on AVX2 too. */
    if (mr * nv + mr + 1 <= NREGS) {
#pragma clang loop unroll(disable)
        for (long k = 0; k < K; k++, b += ldb) {
            vf bc[TMR];
            for (int r = 0; r < mr; r++) bc[r] = vsplat(a[r][k * ak]);
            for (int v = 0; v < nv; v++) {
                const vf bv = vload(b + VW * v);
                for (int r = 0; r < mr; r++) acc[r][v] += bc[r] * bv;
            }
        }
    } else {
#pragma clang loop unroll(disable)
        for (long k = 0; k < K; k++, b += ldb) {
            vf bv[TNV];
            for (int v = 0; v < nv; v++) bv[v] = vload(b + VW * v);
            for (int r = 0; r < mr; r++) {
                const vf bc = vsplat(a[r][k * ak]);
                for (int v = 0; v < nv; v++) acc[r][v] += bc * bv[v];
            }
        }
    }
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++) vstore(c + r * ldc + v * VW, acc[r][v]);
}

/* Each tile shape is its own out-of-line function, so the register block does not compete with its
 * callers (CKernels/README.md) nor with the other shapes: with every shape's expansion behind one switch,
 * the compiler hoisted the first accumulator's load, common to all of them, above the switch, and that
 * accumulator then lived on the stack in each shape's loop (the LSTM bench's forward took 27 ms instead
 * of 17 on AVX2). Forward and matrix products: up to FMR rows of 3 or 4 vectors; backward: up to BMR rows
 * of 2; more continues the sums already in c, the same chain of fused multiply-adds as one call over the
 * whole K (c holds exactly the floats the registers held), so a block can run its rows over one K chunk
 * of its panel at a time while that chunk sits in L1. */
#define NN_TILE_SHAPE(r, v)                                                                                   \
    static __attribute__((noinline)) void NN_L(tile_##r##x##v)(int K, const float *const *a, const float *b, \
                                                               float *c, int more) {                          \
        NN_L(tile_mk)(r, v, K, a, 1, b, (v) * VW, c, (v) * VW, more);                                       \
    }
NN_TILE_SHAPE(4, 4) NN_TILE_SHAPE(3, 4) NN_TILE_SHAPE(2, 4) NN_TILE_SHAPE(1, 4)
NN_TILE_SHAPE(4, 3) NN_TILE_SHAPE(3, 3) NN_TILE_SHAPE(2, 3) NN_TILE_SHAPE(1, 3)
NN_TILE_SHAPE(8, 2) NN_TILE_SHAPE(7, 2) NN_TILE_SHAPE(6, 2) NN_TILE_SHAPE(5, 2)
NN_TILE_SHAPE(4, 2) NN_TILE_SHAPE(3, 2) NN_TILE_SHAPE(2, 2) NN_TILE_SHAPE(1, 2)
#undef NN_TILE_SHAPE

static void NN_L(tile)(int mr, int nv, int K, const float *const *a, const float *b, float *c, int more) {
#define NN_TILE_CASE(r, v) case (r) * 8 + (v): NN_L(tile_##r##x##v)(K, a, b, c, more); break;
    switch (mr * 8 + nv) {
    NN_TILE_CASE(4, 4) NN_TILE_CASE(3, 4) NN_TILE_CASE(2, 4) NN_TILE_CASE(1, 4)
    NN_TILE_CASE(4, 3) NN_TILE_CASE(3, 3) NN_TILE_CASE(2, 3) NN_TILE_CASE(1, 3)
    NN_TILE_CASE(8, 2) NN_TILE_CASE(7, 2) NN_TILE_CASE(6, 2) NN_TILE_CASE(5, 2)
    NN_TILE_CASE(4, 2) NN_TILE_CASE(3, 2) NN_TILE_CASE(2, 2)
    default: NN_L(tile_1x2)(K, a, b, c, more); break;
    }
#undef NN_TILE_CASE
}

/* ---- the input projection on the same tiles ----
 * C [m, n] = A B + bias, A(i, k) = a[i*lda + k], B [k, n] packed in panels of GW columns. The fused path's
 * input projection runs here rather than through OpenBLAS, so a forward pass runs in one OpenMP team:
 * OpenBLAS's own threads spin for a while after each call, on the cores the step loop then needs. */

/* Panel cb of B: [k][GW] from B(kk, j) = b[kk*bk + j*bj], zero past n. */
static void NN_L(pack_panel)(const rnn_gemm *g, int cb) {
    float *dst = g->panels + (size_t)cb * g->k * GW;
    const int j0 = cb * GW, cnt = g->n - j0 < GW ? g->n - j0 : GW;
    for (int kk = 0; kk < g->k; kk++) {
        const float *src = g->b + (size_t)kk * g->bk + (size_t)j0 * g->bj;
        float *row = dst + (size_t)kk * GW;
        if (g->bj == 1) {
            for (int u = 0; u < cnt; u++) row[u] = src[u];
        } else {
            for (int u = 0; u < cnt; u++) row[u] = src[(size_t)u * g->bj];
        }
        for (int u = cnt; u < GW; u++) row[u] = 0.0f;
    }
}

static void NN_L(pack_panels)(const rnn_gemm *g) {
    const int blocks = (g->n + GW - 1) / GW;
    NN_PARALLEL_FOR_IF((long)g->k * g->n >= NN_PARALLEL_MIN && blocks > 1)
    for (int cb = 0; cb < blocks; cb++) NN_L(pack_panel)(g, cb);
}

/* Item it of chunk k0: row block it / column blocks, column block it % column blocks: consecutive items
 * share their rows of A, which stay in L1 while the panels stream from L2 (column-block order, sharing a
 * panel, measured the LSTM bench input projection at 8.3 ms against 6.0 on one thread: every tile then took its A
 * rows from L2). The first chunk writes C (with the bias), later chunks add to it. */
static void NN_L(gemm_item)(const rnn_gemm *g, int k0, long it) {
    const long cblocks = (g->n + GW - 1) / GW;
    const int cb = (int)(it % cblocks), r0 = (int)(it / cblocks) * FMR;
    const int mr = g->m - r0 < FMR ? g->m - r0 : FMR, j0 = cb * GW, cnt = g->n - j0 < GW ? g->n - j0 : GW;
    const int kc = g->k - k0 < KC ? g->k - k0 : KC;
    const float *a[TMR];
    for (int r = 0; r < mr; r++) a[r] = g->a + (size_t)(r0 + r) * g->lda + k0;
    float out[TMR * TNV * VW];
    NN_L(tile)(mr, GW / VW, kc, a, g->panels + ((size_t)cb * g->k + k0) * GW, out, 0);
    for (int r = 0; r < mr; r++) {
        float *c = g->c + (size_t)(r0 + r) * g->ldc + j0;
        const float *o = out + r * GW;
        if (k0 > 0) {
            UNITS for (int u = 0; u < cnt; u++) c[u] += o[u];
        } else if (g->bias) {
            const float *bias = g->bias + j0;
            UNITS for (int u = 0; u < cnt; u++) c[u] = o[u] + bias[u];
        } else {
            UNITS for (int u = 0; u < cnt; u++) c[u] = o[u];
        }
    }
}

static void NN_L(gemm_chunk)(const rnn_gemm *g, int k0) {
    const long items = (long)((g->m + FMR - 1) / FMR) * ((g->n + GW - 1) / GW);
    NN_PARALLEL_FOR_IF(items > 1 && (double)g->m * g->n * KC >= NN_PARALLEL_MIN)
    for (long it = 0; it < items; it++) NN_L(gemm_item)(g, k0, it);
}

static void NN_L(gemm)(const rnn_gemm *g) {
    if (g->m == 0 || g->n == 0) return;
    NN_L(pack_panels)(g);
    for (int k0 = 0; k0 == 0 || k0 < g->k; k0 += KC) NN_L(gemm_chunk)(g, k0);
}

/* Forward block jb: [D + H][G*ub], column g*ub + u holding W_ih row g*H + jb*ub + u in its first D rows
 * (folded; D = 0 otherwise) and that row of W_hh in the next H (zero past H). */
static void NN_L(pack_forward_block)(const pack_ctx *k, int jb) {
    const int H = k->H, D = k->D, G = k->G, ub = FWD_UB(G), width = G * ub;
    float *dst = k->packed + (size_t)jb * (D + H) * width;
    for (int g = 0; g < G; g++)
        for (int u = 0; u < ub; u++) {
            const int j = jb * ub + u;
            const float *src_x = k->w_ih + ((size_t)g * H + j) * D, *src = k->w_hh + ((size_t)g * H + j) * H;
            for (int q = 0; q < D; q++) dst[(size_t)q * width + g * ub + u] = j < H ? src_x[q] : 0.0f;
            for (int q = 0; q < H; q++) dst[(size_t)(D + q) * width + g * ub + u] = j < H ? src[q] : 0.0f;
        }
}

static void NN_L(pack_forward)(const pack_ctx *k) {
    const int blocks = (k->H + FWD_UB(k->G) - 1) / FWD_UB(k->G);
    NN_PARALLEL_FOR_IF((long)k->G * k->H * k->H >= NN_PARALLEL_MIN)
    for (int jb = 0; jb < blocks; jb++) NN_L(pack_forward_block)(k, jb);
}

/* Backward block jb: [G*H][BUB], row q holding W_hh[q, jb*BUB ..] (zero past H); the blocks after
 * W_hh's hold W_ih's columns the same way (zero past D). */
static void NN_L(pack_backward_block)(const pack_ctx *k, int jb) {
    const int H = k->H, GH = k->G * H, hb = (H + BUB - 1) / BUB, of_x = jb >= hb;
    const int width = of_x ? k->D : H, j0 = (of_x ? jb - hb : jb) * BUB, cnt = width - j0 < BUB ? width - j0 : BUB;
    const float *w = of_x ? k->w_ih : k->w_hh;
    float *dst = k->packed + (size_t)jb * GH * BUB;
    for (int q = 0; q < GH; q++) {
        for (int u = 0; u < cnt; u++) dst[(size_t)q * BUB + u] = w[(size_t)q * width + j0 + u];
        for (int u = cnt; u < BUB; u++) dst[(size_t)q * BUB + u] = 0.0f;
    }
}

static void NN_L(pack_backward)(const pack_ctx *k) {
    const int blocks = (k->H + BUB - 1) / BUB + (k->D + BUB - 1) / BUB;
    NN_PARALLEL_FOR_IF((long)k->G * k->H * (k->H + k->D) >= NN_PARALLEL_MIN)
    for (int jb = 0; jb < blocks; jb++) NN_L(pack_backward_block)(k, jb);
}

/* Prefetches of what the fast rows read (and write) at step k->s: each row's slice sits 4 KB or more
 * from the next one's in buffers that no core has touched since the projection or the forward pass, so
 * the hardware prefetchers miss them and every row waited on L3 or memory (about 5 of the LSTM forward
 * step's 17 ms on one thread); issued before a block's tiles, they arrive while the tiles run. */
static void NN_L(fwd_prefetch)(const fwd_ctx *k, int n0, int n1, int j0) {
    const nn_rnn_params *p = k->p;
    const int G = k->GH / k->H;
    for (int n = n0; n < n1; n++) {
        if (k->s >= seq_len(p, n)) continue;
        const size_t tn = (size_t)time_of(p, k->s, n) * p->batch + n;
        if (!k->folded)
            for (int g = 0; g < G; g++) __builtin_prefetch(k->gx + tn * k->GH + (size_t)g * k->H + j0);
        __builtin_prefetch(k->y + tn * p->ldy + j0, 1);
        if (k->act)
            for (int g = 0; g < G; g++) __builtin_prefetch(k->act + tn * k->S + (size_t)g * k->H + j0, 1);
    }
}

static void NN_L(bwd_prefetch)(const bwd_ctx *k, int n0, int n1, int j0) {
    const nn_rnn_params *p = k->p;
    const int H = k->H, G = k->GH / H;
    for (int n = n0; n < n1; n++) {
        if (k->s >= seq_len(p, n)) continue;
        const size_t tn = (size_t)time_of(p, k->s, n) * p->batch + n;
        for (int j = j0; j < j0 + BUB; j += VW) {
            for (int g = 0; g < 4; g++) __builtin_prefetch(k->act + tn * k->S + (size_t)g * H + j);
            for (int g = 0; g < G; g++) __builtin_prefetch(k->dgx + tn * k->GH + (size_t)g * H + j, 1);
            if (k->dy) __builtin_prefetch(k->dy + tn * p->ldy + j);
            if (p->cell == NN_CELL_LSTM) {
                __builtin_prefetch(k->cnew + tn * H + j);
                __builtin_prefetch(cprev_row(k, n) + j);
            } else {
                __builtin_prefetch(k->hprev + tn * H + j);
                for (int g = 0; g < G; g++) __builtin_prefetch(k->dgh + tn * k->GH + (size_t)g * H + j, 1);
            }
        }
    }
}

/* The standard LSTM and the reset-after GRU on one full block (units j0 .. j0 + VW) of row n, from the
 * block's tile output o (G vectors: the gates' recurrent products): fwd_units' work with the gates in
 * registers, whole-vector loads and stores, no pass through gh. */
static void NN_L(fwd_fast_row)(const fwd_ctx *k, int n, int j0, const float *o) {
    const nn_rnn_params *p = k->p;
    const int H = k->H, N = p->batch;
    const float *hin = k->hin + (size_t)n * H;
    float *h = k->hout + (size_t)n * H;
    if (k->s >= seq_len(p, n)) {
        vstore(h + j0, vload(hin + j0));
        return;
    }
    const size_t tn = (size_t)time_of(p, k->s, n) * N + n;
    const float *gx = k->gx + tn * k->GH + j0, *bh = k->bh + j0;
    float *y = k->y + tn * p->ldy + j0, *a = k->act ? k->act + tn * k->S + j0 : NULL;
    const vf hp = vload(hin + j0);
    if (k->hprev) vstore(k->hprev + tn * H + j0, hp);
    if (p->cell == NN_CELL_LSTM) {
        float *c = k->c + (size_t)n * H + j0;
        vf pre[4]; /* folded: the tile's sums already hold the input's part, bh both biases */
        for (int q = 0; q < 4; q++)
            pre[q] = k->folded ? vload(o + q * VW) + vload(bh + q * H) : vload(gx + q * H) + vload(o + q * VW) + vload(bh + q * H);
        const vf i = NN_L(vsigmoid)(pre[0]);
        const vf f = NN_L(vsigmoid)(pre[1]);
        const vf g = NN_L(vtanh)(pre[2]);
        const vf og = NN_L(vsigmoid)(pre[3]);
        const vf cp = vload(c), cn = f * cp + i * g, hv = og * NN_L(vtanh)(cn);
        vstore(c, cn);
        vstore(h + j0, hv);
        vstore(y, hv);
        if (a) {
            vstore(a, i); vstore(a + H, f); vstore(a + 2 * H, g); vstore(a + 3 * H, og);
            if (!cprev_elided(p) || k->s == 0) vstore(k->cprev + tn * H + j0, cp);
            vstore(k->cnew + tn * H + j0, cn);
        }
    } else { /* NN_CELL_GRU */
        const vf rg = NN_L(vsigmoid)(vload(gx) + vload(o) + vload(bh));
        const vf z = NN_L(vsigmoid)(vload(gx + H) + vload(o + VW) + vload(bh + H));
        const vf hn = vload(o + 2 * VW) + vload(bh + 2 * H);
        const vf nv = NN_L(vtanh)(vload(gx + 2 * H) + rg * hn);
        const vf hv = nv + z * (hp - nv);
        vstore(h + j0, hv);
        vstore(y, hv);
        if (a) { vstore(a, rg); vstore(a + H, z); vstore(a + 2 * H, nv); vstore(a + 3 * H, hn); }
    }
}

/* Forward block jb of step k->s: the block's recurrent products for the running rows, then the cell on
 * the block's units of every row. */
static void NN_L(fwd_block)(const fwd_ctx *k, int jb) {
    const nn_rnn_params *p = k->p;
    const int H = k->H, GH = k->GH, G = GH / H, ub = FWD_UB(G), nv = G * ub / VW, D = k->D;
    const int j0 = jb * ub, j1 = j0 + ub < H ? j0 + ub : H;
    const float *panel = k->packed + (size_t)jb * (D + H) * G * ub;
    const int fast = j1 - j0 == VW && ub == VW && (k->p->cell == NN_CELL_LSTM || k->p->cell == NN_CELL_GRU);
    /* Rows in groups of FRG tiles; each group runs over the panel one FKC chunk at a time, so the chunk
     * (FKC x 4 vectors: 8 KB on AVX2, 32 KB on AVX-512) is read from L1 (or L2 right behind it) by every
     * tile of the group rather than the whole panel streamed from L2 by each tile. */
    float out[FRG * FMR * TNV * VW];
    for (int g0 = 0; g0 < k->rows; g0 += FRG * FMR) {
        const int grows = k->rows - g0 < FRG * FMR ? k->rows - g0 : FRG * FMR;
        if (fast) NN_L(fwd_prefetch)(k, g0, g0 + grows, j0);
        /* K runs over the inputs x_t (folded) then h; no chunk straddles the two. */
        for (int k0 = 0; k0 < D + H; k0 += FKC) {
            const int end = k0 < D ? D : D + H, kc = end - k0 < FKC ? end - k0 : FKC;
            for (int r0 = 0; r0 < grows; r0 += FMR) {
                const int mr = grows - r0 < FMR ? grows - r0 : FMR;
                const float *a[TMR];
                for (int r = 0; r < mr; r++) {
                    const int n = g0 + r0 + r;
                    if (k0 >= D) a[r] = k->hin + (size_t)n * H + (k0 - D);
                    /* A row past its length reads any valid input: its cell only carries the state over. */
                    else a[r] = k->x + (k->s < seq_len(p, n) ? ((size_t)time_of(p, k->s, n) * p->batch + n) * D : 0) + k0;
                }
                NN_L(tile)(mr, nv, kc, a, panel + (size_t)k0 * G * ub, out + r0 * nv * VW, k0 > 0);
            }
            if (end - k0 <= FKC) k0 = end - FKC; /* the next chunk starts at end */
        }
        if (fast) {
            for (int r = 0; r < grows; r++) NN_L(fwd_fast_row)(k, g0 + r, j0, out + r * nv * VW);
        } else {
            for (int r = 0; r < grows; r++)
                for (int g = 0; g < G; g++)
                    NN_L(copy_units)(k->gh + (size_t)(g0 + r) * GH + (size_t)g * H, out + r * nv * VW + g * ub - j0, j0, j1);
        }
    }
    for (int n = fast ? k->rows : 0; n < k->p->batch; n++) NN_L(fwd_units)(k, n, j0, j1);
}

static void NN_L(fwd_block_item)(const void *k, int jb) { NN_L(fwd_block)(k, jb); }

static void NN_L(fwd_blocks)(const fwd_ctx *k) {
    const int ub = FWD_UB(k->GH / k->H), blocks = (k->H + ub - 1) / ub;
    nn_parallel_items(blocks, (long)k->p->batch * k->GH * k->H >= NN_PARALLEL_MIN, NN_L(fwd_block_item), k);
}



static void NN_L(rnn_bwd_units)(const bwd_ctx *k, int j0, int j1, const float *dh, const float *a, float *dg) {
    if (k->p->cell == NN_CELL_RNN_TANH) {
        UNITS for (int j = j0; j < j1; j++) dg[j] = dh[j] * (1.0f - a[j] * a[j]);
    } else {
        UNITS for (int j = j0; j < j1; j++) dg[j] = a[j] > 0 ? dh[j] : 0.0f;
    }
}

/* The standard and peephole forms as separate loops: the conditional peephole loads keep a shared loop
 * from vectorising at all. */
static inline __attribute__((always_inline)) void NN_L(lstm_bwd_body)(const bwd_ctx *k, int j0, int j1, const float *dh,
                                                                float *dc, const float *a, const float *cp,
                                                                const float *cn, float *dg, const float *pi,
                                                                const float *pf, const float *po, const int peep) {
    const int H = k->H;
    UNITS for (int j = j0; j < j1; j++) {
        const float i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j];
        const float tc = fast_tanh(cn[j]);
        const float dao = dh[j] * tc * o * (1.0f - o);
        float d = dc[j] + dh[j] * o * (1.0f - tc * tc);
        if (peep) d += dao * po[j];
        const float dai = d * g * i * (1.0f - i);
        const float daf = d * cp[j] * f * (1.0f - f);
        dg[j] = dai;
        dg[H + j] = daf;
        dg[2 * H + j] = d * i * (1.0f - g * g);
        dg[3 * H + j] = dao;
        dc[j] = peep ? d * f + dai * pi[j] + daf * pf[j] : d * f;
    }
}

static void NN_L(lstm_bwd_units)(const bwd_ctx *k, int j0, int j1, const float *dh, float *dc, const float *a,
                           const float *cp, const float *cn, float *dg) {
    const int H = k->H;
    if (k->p->cell == NN_CELL_LSTM_COUPLED) {
        UNITS for (int j = j0; j < j1; j++) {
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
    if (k->p->cell == NN_CELL_LSTM_PEEPHOLE) {
        NN_L(lstm_bwd_body)(k, j0, j1, dh, dc, a, cp, cn, dg, k->w->w_ci, k->w->w_cf, k->w->w_co, 1);
    } else {
        NN_L(lstm_bwd_body)(k, j0, j1, dh, dc, a, cp, cn, dg, NULL, NULL, NULL, 0);
    }
}

/* dh_direct receives z * dh, the part of dh_prev that bypasses W_hh. */
static void NN_L(gru_bwd_units)(const bwd_ctx *k, int j0, int j1, const float *dh, const float *a, const float *hp,
                          float *dgx, float *dgh, float *dh_direct) {
    const int H = k->H;
    UNITS for (int j = j0; j < j1; j++) {
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
static void NN_L(gru_rb_bwd_units)(const bwd_ctx *k, int j0, int j1, float *dh_io, const float *a, const float *hp,
                             const float *drh, float *dg) {
    const int H = k->H;
    if (k->pass == 1) {
        UNITS for (int j = j0; j < j1; j++) {
            const float z = a[H + j], n = a[2 * H + j];
            dg[H + j] = dh_io[j] * (hp[j] - n) * z * (1.0f - z);
            dg[2 * H + j] = dh_io[j] * (1.0f - z) * (1.0f - n * n);
        }
    } else {
        UNITS for (int j = j0; j < j1; j++) {
            const float r = a[j], z = a[H + j];
            dg[j] = drh[j] * hp[j] * r * (1.0f - r);
            dh_io[j] = dh_io[j] * z + drh[j] * r;
        }
    }
}

static void NN_L(gru_simple_bwd_units)(const bwd_ctx *k, int j0, int j1, const float *dh, const float *a, const float *hp,
                                 float *dg, float *dh_direct) {
    const int H = k->H;
    UNITS for (int j = j0; j < j1; j++) {
        const float u = a[j], n = a[H + j];
        dg[j] = dh[j] * (n - hp[j]) * u * (1.0f - u);
        dg[H + j] = dh[j] * u * (1.0f - n * n);
        dh_direct[j] = dh[j] * (1.0f - u);
    }
}

/* Units [j0, j1) of batch row n at backward step k->s. The carry k->dh[n] holds dL/dh after this step
 * from the later steps (when the row ran a later step) and is replaced by the part of dL/dh_prev that
 * does not go through W_hh; the product dG W_hh is added to it next. */
static void NN_L(bwd_units)(const bwd_ctx *k, int n, int j0, int j1) {
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
            if (k->dh_n) NN_L(copy_units)(dh, k->dh_n + (size_t)n * H, j0, j1);
            else NN_L(clear_units)(dh, j0, j1);
        }
        if (k->dy) {
            const float *dy = k->dy + tn * p->ldy;
            UNITS for (int j = j0; j < j1; j++) dh[j] += dy[j];
        }
    }
    switch (p->cell) {
    case NN_CELL_RNN_TANH: case NN_CELL_RNN_RELU:
        NN_L(rnn_bwd_units)(k, j0, j1, dh, a, dgx);
        NN_L(clear_units)(dh, j0, j1);
        break;
    case NN_CELL_LSTM: case NN_CELL_LSTM_PEEPHOLE: case NN_CELL_LSTM_COUPLED:
        NN_L(lstm_bwd_units)(k, j0, j1, dh, k->dc + (size_t)n * H, a, cprev_row(k, n), k->cnew + tn * H, dgx);
        NN_L(clear_units)(dh, j0, j1);
        break;
    case NN_CELL_GRU: NN_L(gru_bwd_units)(k, j0, j1, dh, a, hp, dgx, dgh, dh); break;
    case NN_CELL_GRU_RESET_BEFORE: NN_L(gru_rb_bwd_units)(k, j0, j1, dh, a, hp, k->drh + (size_t)n * H, dgx); break;
    case NN_CELL_GRU_SIMPLE: NN_L(gru_simple_bwd_units)(k, j0, j1, dh, a, hp, dgx, dh); break;
    }
    if (k->dgs) memcpy(k->dgs + (size_t)n * GH, dgh, sizeof(float) * GH);
}

static void NN_L(bwd_row)(const bwd_ctx *k, int n) { NN_L(bwd_units)(k, n, 0, k->H); }

static void NN_L(bwd_pass)(const bwd_ctx *k) {
    const int N = k->p->batch;
    NN_PARALLEL_FOR_IF((long)N * k->H >= RNN_PARALLEL_MIN)
    for (int n = 0; n < N; n++) NN_L(bwd_row)(k, n);
}

/* bwd_units for the standard LSTM and the reset-after GRU on a full block (BUB units) of row n, in whole
 * vectors (see fwd_fast_row). */
static void NN_L(bwd_fast_row)(const bwd_ctx *k, int n, int j0) {
    const nn_rnn_params *p = k->p;
    const int len = seq_len(p, n);
    if (k->s >= len) return;
    const int H = k->H, GH = k->GH, N = p->batch;
    const size_t tn = (size_t)time_of(p, k->s, n) * N + n;
    float *dhr = k->dh + (size_t)n * H;
    const float *a = k->act + tn * k->S, *dy = k->dy ? k->dy + tn * p->ldy : NULL;
    float *dgx = k->dgx + tn * GH;
    for (int j = j0; j < j0 + BUB; j += VW) {
        vf dh;
        if (k->s == len - 1) dh = k->dh_n ? vload(k->dh_n + (size_t)n * H + j) : vsplat(0.0f);
        else dh = vload(dhr + j);
        if (dy) dh = dh + vload(dy + j);
        if (p->cell == NN_CELL_LSTM) {
            float *dc = k->dc + (size_t)n * H + j;
            const vf i = vload(a + j), f = vload(a + H + j), g = vload(a + 2 * H + j), o = vload(a + 3 * H + j);
            const vf tc = NN_L(vtanh)(vload(k->cnew + tn * H + j));
            const vf dao = dh * tc * o * (1.0f - o);
            const vf d = vload(dc) + dh * o * (1.0f - tc * tc);
            const vf dai = d * g * i * (1.0f - i);
            const vf daf = d * vload(cprev_row(k, n) + j) * f * (1.0f - f);
            vstore(dgx + j, dai);
            vstore(dgx + H + j, daf);
            vstore(dgx + 2 * H + j, d * i * (1.0f - g * g));
            vstore(dgx + 3 * H + j, dao);
            vstore(dc, d * f);
            vstore(dhr + j, vsplat(0.0f));
        } else { /* NN_CELL_GRU */
            float *dgh = k->dgh + tn * GH;
            const vf r = vload(a + j), z = vload(a + H + j), nv = vload(a + 2 * H + j), hn = vload(a + 3 * H + j);
            const vf dan = dh * (1.0f - z) * (1.0f - nv * nv);
            const vf dar = dan * hn * r * (1.0f - r);
            const vf daz = dh * (vload(k->hprev + tn * H + j) - nv) * z * (1.0f - z);
            vstore(dgx + j, dar); vstore(dgx + H + j, daz); vstore(dgx + 2 * H + j, dan);
            vstore(dgh + j, dar); vstore(dgh + H + j, daz); vstore(dgh + 2 * H + j, dan * r);
            vstore(dhr + j, dh * z);
        }
    }
}

/* dx block xb (dx in the loop): dx of rec_step's rows over columns xb*BUB .. of W_ih, from their dG. */
static void NN_L(bwd_dx_block)(const bwd_ctx *k, int xb) {
    const nn_rnn_params *p = k->p;
    if (k->rec_step < 0) return;
    const int GH = k->GH, N = p->batch, D = p->input, hb = (k->H + BUB - 1) / BUB;
    const int d0 = xb * BUB, d1 = d0 + BUB < D ? d0 + BUB : D;
    const float *panel = k->packed + (size_t)(hb + xb) * GH * BUB;
    const size_t t = (size_t)time_of(p, k->rec_step, 0); /* every row at full length: one time per step */
    float out[TMR * 2 * VW];
    for (int r0 = 0; r0 < N; r0 += BMR) {
        const int mr = N - r0 < BMR ? N - r0 : BMR;
        const float *a[TMR];
        for (int r = 0; r < mr; r++) a[r] = k->dgx + (t * N + r0 + r) * GH;
        NN_L(tile)(mr, BUB / VW, GH, a, panel, out, 0);
        for (int r = 0; r < mr; r++) {
            float *dx = k->dx + (t * N + r0 + r) * D;
            const float *o = out + r * BUB - d0;
            if (p->accumulate_dx) {
                for (int d = d0; d < d1; d++) dx[d] += o[d];
            } else {
                for (int d = d0; d < d1; d++) dx[d] = o[d];
            }
        }
    }
}

/* Adds step k->s's dG rows to the bias sums over the block's units [j0, j1) of every gate: a separate
 * pass over all of dG after the loop read 8 MB back from L3 (LSTM bench). Each column is summed by the
 * one block that owns it, steps from the last, rows in order, so any thread count gives the same sums. */
static void NN_L(bias_sums)(const bwd_ctx *k, int j0, int j1) {
    const nn_rnn_params *p = k->p;
    const int H = k->H, GH = k->GH, N = p->batch;
    for (int g = 0; g < GH / H; g++) {
        float acc[BUB];
        float *out = k->bsum + (size_t)g * H + j0;
        for (int j = 0; j < j1 - j0; j++) acc[j] = out[j];
        for (int n = 0; n < N; n++) {
            if (k->s >= seq_len(p, n)) continue;
            const float *row = k->dgx + ((size_t)time_of(p, k->s, n) * N + n) * GH + (size_t)g * H + j0;
            UNITS for (int j = 0; j < j1 - j0; j++) acc[j] += row[j];
        }
        for (int j = 0; j < j1 - j0; j++) out[j] = acc[j];
    }
}

/* Backward block jb: adds dG(rec_step) W_hh to the block's units of the carry, then (unless only the
 * carry is asked for) runs step k->s on them. The blocks past H's are dx's (bwd_dx_block). */
static void NN_L(bwd_block)(const bwd_ctx *k, int jb) {
    const nn_rnn_params *p = k->p;
    const int H = k->H, GH = k->GH, N = p->batch;
    if (jb >= (H + BUB - 1) / BUB) {
        NN_L(bwd_dx_block)(k, jb - (H + BUB - 1) / BUB);
        return;
    }
    const int j0 = jb * BUB, j1 = j0 + BUB < H ? j0 + BUB : H;
    const float *panel = k->packed + (size_t)jb * GH * BUB;
    const int fast = k->pointwise && j1 - j0 == BUB && !k->dgs && (p->cell == NN_CELL_LSTM || p->cell == NN_CELL_GRU);
    float out[TMR * 2 * VW];
    if (fast) NN_L(bwd_prefetch)(k, k->rows, N, j0); /* rows past the product's */
    for (int r0 = 0; r0 < k->rows; r0 += BMR) {
        const int mr = k->rows - r0 < BMR ? k->rows - r0 : BMR;
        if (fast) NN_L(bwd_prefetch)(k, r0, r0 + mr, j0);
        const float *a[TMR];
        for (int r = 0; r < mr; r++) {
            const int n = r0 + r;
            /* A row that did not run rec_step reads any valid row: its carry is replaced by dh_n. */
            a[r] = k->rec_step < seq_len(p, n) ? k->dgh + ((size_t)time_of(p, k->rec_step, n) * N + n) * GH : k->dgh;
        }
        NN_L(tile)(mr, BUB / VW, GH, a, panel, out, 0);
        for (int r = 0; r < mr; r++) {
            float *dh = k->dh + (size_t)(r0 + r) * H;
            for (int j = j0; j < j1; j++) dh[j] += out[r * BUB + j - j0];
        }
    }
    if (!k->pointwise) return;
    if (fast)
        for (int n = 0; n < N; n++) NN_L(bwd_fast_row)(k, n, j0);
    else
        for (int n = 0; n < N; n++) NN_L(bwd_units)(k, n, j0, j1);
    if (k->bsum) NN_L(bias_sums)(k, j0, j1);
}

/* The carry blocks also run the step's gate maths and the dx blocks do not, so item i takes carry and dx
 * blocks in turn, spread evenly (carry block floor(i·hb/n) where that count steps up, else a dx block):
 * every thread's first share then holds the same mix of each kind. In index order, one thread took
 * every carry block of a layer with input = hidden and the other every dx block. */
static void NN_L(bwd_block_item)(const void *ctx, int i) {
    const bwd_ctx *k = ctx;
    const int hb = (k->H + BUB - 1) / BUB, blocks = hb + (k->dx ? (k->p->input + BUB - 1) / BUB : 0);
    const int carried = (int)((long)i * hb / blocks), carry = (long)(i + 1) * hb / blocks > carried;
    NN_L(bwd_block)(k, carry ? carried : hb + i - carried);
}

static void NN_L(bwd_blocks)(const bwd_ctx *k) {
    const int hb = (k->H + BUB - 1) / BUB, blocks = hb + (k->dx ? (k->p->input + BUB - 1) / BUB : 0);
    nn_parallel_items(blocks, (long)k->p->batch * k->GH * k->H >= NN_PARALLEL_MIN, NN_L(bwd_block_item), k);
}

/* ---- weight gradients: C [M, q] += A^T B over K rows for each right-hand side (dW = dG^T X) ---------
 * Tiles of WGR rows of C (columns of A) by four vectors of C's columns (rows of B). K runs in chunks of
 * WKC rows; each chunk of both operands is packed first, so the tiles read contiguous memory: B's chunk
 * in strips of four vectors, shared by every tile (wgrad_pack_b), and A's columns by each group of WGM
 * rows of C as it starts the chunk. In place, every k of a tile broadcast from a new row of dG, 4 KB
 * from the last (one L1 set for all of them, at 1024 gate columns), and B's strip came from L2 rows
 * 512 B or 1 KB apart: the LSTM bench's backward on one thread took 68.6 ms at best against 55.5 packed,
 * on two 37.2 against 32.1 (Zen 3, AVX2, in-process alternation). Each element of C is one chain of
 * fused multiply-adds in k order, owned by one thread: the same bits for any thread count. Each side's q
 * must be a multiple of VW. */
#define WGR FMR
#define WGM (16 * WGR)
/* The step's tiles with A's rows as columns of dG (packed): row r of the tile reads a[r + k*lda]; one
 * function per shape, as for the step's. */
#define NN_WG_SHAPE(r, v)                                                                                     \
    static __attribute__((noinline)) void NN_L(wg_tile_##r##x##v)(int K, const float *a, long lda,          \
                                                                  const float *b, long ldb, float *c, long ldc) { \
        const float *rows[TMR];                                                                               \
        for (int q = 0; q < (r); q++) rows[q] = a + q;                                                        \
        NN_L(tile_mk)(r, v, K, rows, lda, b, ldb, c, ldc, 1);                                                 \
    }
NN_WG_SHAPE(4, 4) NN_WG_SHAPE(3, 4) NN_WG_SHAPE(2, 4) NN_WG_SHAPE(1, 4)
NN_WG_SHAPE(4, 3) NN_WG_SHAPE(3, 3) NN_WG_SHAPE(2, 3) NN_WG_SHAPE(1, 3)
NN_WG_SHAPE(4, 2) NN_WG_SHAPE(3, 2) NN_WG_SHAPE(2, 2) NN_WG_SHAPE(1, 2)
NN_WG_SHAPE(4, 1) NN_WG_SHAPE(3, 1) NN_WG_SHAPE(2, 1) NN_WG_SHAPE(1, 1)
#undef NN_WG_SHAPE

static void NN_L(wg_tile)(int mr, int nv, int K, const float *a, long lda, const float *b, long ldb, float *c, long ldc) {
#define NN_TILE_CASE(r, v) case (r) * 8 + (v): NN_L(wg_tile_##r##x##v)(K, a, lda, b, ldb, c, ldc); break;
    switch (mr * 8 + nv) {
    NN_TILE_CASE(4, 4) NN_TILE_CASE(3, 4) NN_TILE_CASE(2, 4) NN_TILE_CASE(1, 4)
    NN_TILE_CASE(4, 3) NN_TILE_CASE(3, 3) NN_TILE_CASE(2, 3) NN_TILE_CASE(1, 3)
    NN_TILE_CASE(4, 2) NN_TILE_CASE(3, 2) NN_TILE_CASE(2, 2) NN_TILE_CASE(1, 2)
    NN_TILE_CASE(4, 1) NN_TILE_CASE(3, 1) NN_TILE_CASE(2, 1)
    default: NN_L(wg_tile_1x1)(K, a, lda, b, ldb, c, ldc); break;
    }
#undef NN_TILE_CASE
}

/* Strip it of B, counting every side's strips in order; the packed chunk bp holds each at the columns of B
 * before it, times WKC. */
static wg_strip NN_L(wgrad_strip)(const wg_rhs *rhs, int it, float *bp) {
    long before = 0;
    for (const wg_rhs *o = rhs;; o++) {
        const int strips = (o->q + 4 * VW - 1) / (4 * VW);
        if (it < strips) {
            const int q0 = it * 4 * VW;
            return (wg_strip){.o = o, .q0 = q0, .w = o->q - q0 < 4 * VW ? o->q - q0 : 4 * VW, .packed = bp + (before + q0) * WKC};
        }
        it -= strips;
        before += o->q;
    }
}

/* Strip it of B's rows k0 .. k0 + kc, packed to [kc][its width]. */
static void NN_L(wgrad_pack_b)(const wg_rhs *rhs, int it, int k0, int kc, float *bp) {
    const wg_strip s = NN_L(wgrad_strip)(rhs, it, bp);
    for (int k = 0; k < kc; k++) NN_L(copy_units)(s.packed + (size_t)k * s.w, s.o->b + (size_t)(k0 + k) * s.o->ldb + s.q0, 0, s.w);
}

/* Group grp's rows of C over K rows k0 .. k0 + kc: A's columns m0 .. m1 packed first to ap, as tiles of
 * WGR columns each [kc][WGR] and a last one of fewer ([kc][its rows], inside the group's share), then
 * every strip of B (packed by wgrad_pack_b) across all the group's tiles. */
static void NN_L(wgrad_group)(int M, const float *A, long lda, const wg_rhs *rhs, int strips, int grp, int k0, int kc,
                              float *scratch) {
    const int m0 = grp * WGM, m1 = m0 + WGM < M ? m0 + WGM : M;
    float *ap = scratch + (size_t)m0 * WKC, *bp = scratch + (size_t)M * WKC;
    const int whole = (m1 - m0) / WGR * WGR, rest = m1 - m0 - whole;
    float *last = ap + (size_t)whole * kc;
    for (int k = 0; k < kc; k++) {
        const float *src = A + (size_t)(k0 + k) * lda + m0;
        float *dst = ap + (size_t)k * WGR;
        /* Each row of dG is on its own page, out of the hardware prefetchers' reach: backward 38.4 ms
         * median against 40.5 without (2 threads, Zen 3, in-process alternation). */
        for (int m = 0; m < m1 - m0; m += 16) __builtin_prefetch(src + 8 * lda + m);
        for (int m = 0; m < whole; m += WGR)
            for (int r = 0; r < WGR; r++) dst[(size_t)m * kc + r] = src[m + r];
        for (int r = 0; r < rest; r++) last[(size_t)k * rest + r] = src[whole + r];
    }
    for (int it = 0; it < strips; it++) {
        const wg_strip s = NN_L(wgrad_strip)(rhs, it, bp);
        for (int r0 = m0; r0 < m1; r0 += WGR) {
            const int mr = m1 - r0 < WGR ? m1 - r0 : WGR;
            NN_L(wg_tile)(mr, s.w / VW, kc, ap + (size_t)(r0 - m0) * kc, mr, s.packed, s.w,
                          s.o->c + (size_t)r0 * s.o->ldc + s.q0, s.o->ldc);
        }
    }
}

static void NN_L(wgrad)(int M, int K, const float *A, long lda, const wg_rhs *rhs, int sides, float *scratch) {
    const int groups = (M + WGM - 1) / WGM;
    int strips = 0;
    for (int side = 0; side < sides; side++) strips += (rhs[side].q + 4 * VW - 1) / (4 * VW);
    float *bp = scratch + (size_t)M * WKC;
    for (int k0 = 0; k0 < K; k0 += WKC) {
        const int kc = K - k0 < WKC ? K - k0 : WKC;
        NN_PARALLEL_FOR_IF(strips > 1 && (double)kc * strips * 4 * VW >= NN_PARALLEL_MIN)
        for (int it = 0; it < strips; it++) NN_L(wgrad_pack_b)(rhs, it, k0, kc, bp);
        NN_PARALLEL_FOR_IF(groups > 1 && (double)M * kc * WGM >= NN_PARALLEL_MIN)
        for (int grp = 0; grp < groups; grp++) NN_L(wgrad_group)(M, A, lda, rhs, strips, grp, k0, kc, scratch);
    }
}

/* out[j] += sum over rows r of a[r*lda + j] (times b[r*ldb + j] when b is given), for j < cols; each
 * column is summed in row order by one thread, so the result does not depend on the thread count. */

static void NN_L(colsum_block)(float *out, float *out2, const float *a, long lda, const float *b, long ldb, long rows, int j0, int width) {
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
    if (out2)
        for (int j = 0; j < width; j++) out2[j0 + j] += acc[j];
}

static void NN_L(column_sums)(float *out, float *out2, const float *a, long lda, const float *b, long ldb, long rows, int cols) {
    if (!out) {
        out = out2;
        out2 = NULL;
    }
    if (!out) return;
    const int blocks = (cols + COLSUM_BLOCK - 1) / COLSUM_BLOCK;
    NN_PARALLEL_FOR_IF(rows * cols >= NN_PARALLEL_MIN && blocks > 1)
    for (int bi = 0; bi < blocks; bi++) {
        const int j0 = bi * COLSUM_BLOCK;
        NN_L(colsum_block)(out, out2, a, lda, b, ldb, rows, j0, cols - j0 < COLSUM_BLOCK ? cols - j0 : COLSUM_BLOCK);
    }
}

#endif
