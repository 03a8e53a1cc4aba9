/* 2-D convolution, forward and backward, NCHW float32 (shapes and semantics in include/conv2d.h).
 *
 * Paths, chosen by shape:
 *   - stride 1, at most MAX_TAPS taps (the "grid" path; pointwise convolutions are its simplest case):
 *     a direct convolution written as an implicit GEMM. The input sits on a zero-padded grid whose rows
 *     are as wide as the padded image, so output position q (row-major on that grid) reads
 *     grid[c][q + i*dil_h*grid_w + j*dil_w] for tap (i, j) of channel c: NR consecutive outputs read NR
 *     consecutive floats for every tap. No im2col matrix is built; each whole tile of NR outputs reads
 *     its (channel, tap) rows in place through a table of offsets (K up to KOFF_MAX), the others copy
 *     them into a small panel that stays in L1 while every output channel is computed from it (reading
 *     in place measured 10-25% faster on the 3- and 64-channel 3x3 benchmark shapes). The grid columns
 *     past the valid width are computed and dropped (2 of 30 for a 28-wide 3x3 "same" convolution), the
 *     price of contiguous rows.
 *     Backward: dx is the same kernel on dy padded by (k-1)*dil - pad with the taps mirrored (at stride 1
 *     a transposed convolution is a convolution); dw is a dot-product kernel over the grid,
 *     dw[o, c, tap] = sum over q of dy_grid[o][q] * x_grid[c][q + offset(tap)], with dy_grid zero in the
 *     dropped columns.
 *   - stride > 1, forward, groups 1 (cv_path): output channels across the vector lanes, a tile of 6
 *     output positions times 4 vectors of channels reading the zero-padded image at the stride through
 *     broadcasts; no phase split and no dropped columns. On conv_fwd_s2 and conv_fwd_stem7x7 (2 Zen 4
 *     cores) it measured 4.6-4.8 ms and 2.35 ms best of a run, 82-85% of the FMA peak, against 5.7-6.2 ms
 *     and 2.4-2.7 ms for the grid kernel on phase planes below.
 *   - stride > 1, forward, grouped: the grid kernel on the input split into stride_h x stride_w phase
 *     planes, where every tap reads a stride-1 grid again (strided_grid_path); about 1.5x faster than
 *     im2col + OpenBLAS.
 *   - depthwise (groups == C_in == C_out): a direct loop per (image, channel) plane.
 *   - Winograd F(2x2, 3x3) (winograd.c) for 3x3 stride-1 convolutions with many channels.
 *   - anything else (strided backward, padding wider than (k-1)*dil for dx, huge kernels): im2col into the
 *     workspace and OpenBLAS GEMMs, col2im for dx.
 * Why not im2col + OpenBLAS everywhere: im2col writes and rereads KH*KW copies of the input, and
 * per-image GEMMs of these shapes (64 x 784 x 576) keep OpenBLAS's two threads waiting on each other
 * and on the OpenMP copies between them; the grid kernels run as one OpenMP loop of independent tiles.
 * The grid and depthwise kernels own whole outputs per thread (output tiles; blocks of dw, whose images
 * are summed in order), so their results are bit-identical for any thread count. OpenBLAS is only called
 * in the im2col path, between OpenMP loops and never inside one: its pthread build runs its own threads.
 * Built per instruction level (CKernels/README.md): the microkernels are written over simd.h's `vf` (VW
 * floats: 4, 8 or 16), so a tile is NR = 3*VW grid positions wide at every level, and every parallel loop
 * runs one per-level call per tile, plane, row or block. */
#ifndef NN_LEVEL /* ---- common to every level ---- */
#include "nn_internal.h"
#include <limits.h>
#include <string.h>

/* Rounds toward minus infinity, so a kernel larger than the padded input gives no output, not one. */
static long floor_div(long a, long b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }

/* In 64 bits: padding and dilation near INT_MAX must not wrap into a plausible size. Saturates at
 * INT_MAX, which the Swift layer rejects along with every size the kernels cannot index in int. */
static int out_size(long in, long pads, long k, long dil, long stride) {
    long out = floor_div(in + pads - dil * (k - 1) - 1, stride) + 1;
    return out > INT_MAX ? INT_MAX : out < INT_MIN ? INT_MIN : (int)out;
}

int nn_conv2d_out_h(const nn_conv2d_params *p) {
    return out_size(p->h, (long)p->pad_top + p->pad_bottom, p->kh, p->dil_h, p->stride_h);
}

int nn_conv2d_out_w(const nn_conv2d_params *p) {
    return out_size(p->w, (long)p->pad_left + p->pad_right, p->kw, p->dil_w, p->stride_w);
}

/* Empty inputs are valid: with C_in = 0 or an empty plane every output is an empty sum plus the bias. */
static void check_params(const nn_conv2d_params *p) {
    (void)p;
    assert(p->n >= 0 && p->c_in >= 0 && p->h >= 0 && p->w >= 0 && p->c_out >= 0);
    assert(p->kh >= 1 && p->kw >= 1 && p->stride_h >= 1 && p->stride_w >= 1 && p->dil_h >= 1 && p->dil_w >= 1);
    assert(p->pad_top >= 0 && p->pad_bottom >= 0 && p->pad_left >= 0 && p->pad_right >= 0);
    assert(p->groups >= 1 && p->c_in % p->groups == 0 && p->c_out % p->groups == 0);
    assert(nn_conv2d_out_h(p) >= 1 && nn_conv2d_out_w(p) >= 1);
}

/* Tile shapes. MR and the dot blocks are the same at every level; a tile's width NR is NV registers of
 * the level's VW floats (simd.h), and KC keeps an NR*KC panel at 18 KB, inside L1. */
enum {
    MR = 4,       /* output rows (channels) per microkernel call */
    RB = 64,      /* output rows whose tile is accumulated on the stack across panels */
    MAX_TAPS = 256,
    DOT_O = 4,    /* dw rows per dot block */
    DOT_T = 3,    /* dw taps per dot block */
};
#define NV 3              /* registers of output positions per row */
#define NR (VW * NV)      /* output grid positions per tile */
#define KC (4608 / NR)    /* k-rows per packed panel */

/* out (rows per group, out_h, out_w) per image = A * taps of src, for every image and group:
 * out[n, g*rows + r, oy, ox] = bias + sum over ch < chans, t < kk of
 *     A(g, r, ch, t) * src_n[g*chans + ch][q + toff[t]],   q = oy*grid_w + ox,
 * with A(g, r, ch, t) = a[g*a_grp + r*lda + ch*a_ch + t]. */
typedef struct {
    const float *src;      /* image 0, channel 0 of the source grid */
    long src_len;          /* floats readable from src */
    long src_img, src_ch;  /* floats between images and between channels */
    int grid_w;            /* row width of the source grid */
    int kk;                /* taps */
    const int *toff;       /* tap offsets within a channel, kk of them */
    const float *a;
    long a_grp, lda, a_ch;
    int rows, chans, groups, n;
    float *out;
    int out_h, out_w;      /* valid outputs; the grid's extra columns are dropped */
    const float *bias;     /* per output channel, or null */
    float *a_packed;       /* scratch for A: groups * round_up(rows, MR) * chans*kk floats */
} grid_conv;

static int round_up(int v, int m) { return (v + m - 1) / m * m; }

/* Where a tile's nr grid positions from q0 land in the output: runs of valid columns. */
typedef struct { int j, len; long at; } tile_run;

/* What one run of the grid kernel shares between its tiles. */
typedef struct {
    const grid_conv *g;
    int q_end, tiles, K, max_toff;
    long plane;          /* output floats per channel */
    const int *koff;     /* k-row offsets for tiles read in place, or null */
} grid_tiles;

/* The stride-1 geometry every grid kernel shares. */
typedef struct {
    int oh, ow;
    int xh, xw;          /* padded input grid: (H + pads) x (W + pads) */
    int x_copy;          /* 1 when x needs a padded copy (any padding) */
    int dh, dw;          /* dy padded for dx: (H + (KH-1)*dil_h) x (W + (KW-1)*dil_w) */
    int dtop, dleft;     /* where dy sits in it */
    int dy_copy;         /* 1 when that padding is not empty */
    int dx_ok;           /* the transposed convolution needs pads <= (k-1)*dil on every side */
    int dyg_separate;    /* dw needs dy on a grid as wide as x's; 0 when the dx grid already is */
} grid_geom;

static grid_geom grid_geometry(const nn_conv2d_params *p) {
    grid_geom g;
    g.oh = nn_conv2d_out_h(p);
    g.ow = nn_conv2d_out_w(p);
    g.xh = p->h + p->pad_top + p->pad_bottom;
    g.xw = p->w + p->pad_left + p->pad_right;
    g.x_copy = g.xh != p->h || g.xw != p->w;
    const int eh = (p->kh - 1) * p->dil_h, ew = (p->kw - 1) * p->dil_w;
    g.dh = p->h + eh;
    g.dw = p->w + ew;
    g.dtop = eh - p->pad_top;
    g.dleft = ew - p->pad_left;
    g.dx_ok = p->pad_top <= eh && p->pad_bottom <= eh && p->pad_left <= ew && p->pad_right <= ew;
    g.dy_copy = g.dh != g.oh || g.dw != g.ow;
    g.dyg_separate = !(g.dx_ok && g.dw == g.xw);
    return g;
}

/* toff[t] for tap t = (i, j): where it reads on a grid of row width grid_w, relative to its output
 * position; `mirror` turns the kernel around (i -> KH-1-i, j -> KW-1-j) for dx. */
static void tap_offsets(int *toff, const nn_conv2d_params *p, int grid_w, int mirror) {
    for (int t = 0; t < p->kh * p->kw; t++) {
        const int i = mirror ? p->kh - 1 - t / p->kw : t / p->kw, j = mirror ? p->kw - 1 - t % p->kw : t % p->kw;
        toff[t] = i * p->dil_h * grid_w + j * p->dil_w;
    }
}

static int is_depthwise(const nn_conv2d_params *p) { return p->groups == p->c_in && p->groups == p->c_out; }

static int grid_path(const nn_conv2d_params *p) {
    return p->stride_h == 1 && p->stride_w == 1 && p->kh * p->kw <= MAX_TAPS;
}

/* Strided forward on the grid: the padded input split into stride_h x stride_w phase planes (phase
 * (a, b) holds padded rows a, a + stride_h, ... and columns b, b + stride_w, ...), on which output (oy, ox)
 * reads tap (i, j) at phase ((i*dil_h) % stride_h, (j*dil_w) % stride_w), position (oy + i*dil_h/stride_h,
 * ox + j*dil_w/stride_w): a stride-1 grid again, every channel being stride_h*stride_w phase planes. */
static int strided_grid_path(const nn_conv2d_params *p) {
    return (p->stride_h > 1 || p->stride_w > 1) && p->kh * p->kw <= MAX_TAPS && !is_depthwise(p);
}

typedef struct { int gh, gw; long plane, ch; } phase_geom; /* a phase plane gh x gw; plane * phases per channel */

static phase_geom phase_geometry(const nn_conv2d_params *p) {
    phase_geom g;
    g.gh = (p->h + p->pad_top + p->pad_bottom + p->stride_h - 1) / p->stride_h;
    g.gw = (p->w + p->pad_left + p->pad_right + p->stride_w - 1) / p->stride_w;
    g.plane = (long)g.gh * g.gw;
    g.ch = g.plane * p->stride_h * p->stride_w;
    return g;
}

/* Strided forward with groups 1 (cv_path): output channels across the vector lanes instead of output
 * positions. A tile is CV_PM output positions times CV_PV vectors of output channels; each k-row
 * (channel, tap) loads CV_PV vectors of packed weights and broadcasts one input float per position, so
 * the positions need not be consecutive floats: the kernel reads the zero-padded image at the stride
 * itself (no phase planes), and computes only valid outputs (the position-vector grid kernel computed
 * 224 grid positions for conv_fwd_s2's 196 outputs: a 15-wide phase row holds 14 outputs, and the
 * 209-position plane rounds up to whole tiles). An item is one image: it pads the image into its
 * thread's slice of the workspace (L2-sized for these shapes, where a padded or phase-split copy of
 * the whole batch went to memory and back), then computes every output channel from it. Weights are
 * packed in blocks of CV_OC_MAX channels at every level, so the workspace does not depend on the level;
 * the slices are CV_SLOTS, a constant, so it does not depend on the thread count either. */
enum {
    CV_PM = 6,          /* output positions per tile */
    CV_OC_MAX = 64,     /* output channels per packed block: 4 vectors of 16 at AVX-512 */
    CV_K_MAX = 4608,    /* k-rows (channels x taps) whose offsets fit the stack table */
    CV_SLOTS = 16,      /* threads with a slice of scratch */
};

/* The team of the cv_path loop: nn_threads(), at most CV_SLOTS. */
static int cv_team(void) { return nn_threads() < CV_SLOTS ? nn_threads() : CV_SLOTS; }

static long cv_image_floats(const nn_conv2d_params *p) {
    return (long)p->c_in * (p->h + p->pad_top + p->pad_bottom) * (p->w + p->pad_left + p->pad_right);
}

/* The CV_SLOTS slices make the scratch 16 images whatever the batch, so large images keep the phase
 * planes (one copy of the batch) once the slices would outgrow both that copy and 16 MB. */
static int cv_path(const nn_conv2d_params *p) {
    if (!strided_grid_path(p) || p->groups != 1 || p->c_in * p->kh * p->kw > CV_K_MAX) return 0;
    const long image = cv_image_floats(p);
    const double slices = (double)CV_SLOTS * image, phases = (double)p->n * p->c_in * phase_geometry(p).ch;
    return image < INT_MAX / 2 && (slices <= (double)(1 << 22) || slices <= phases);
}

/* One cv_path convolution: out (n, c_out, out_h, out_w) = bias + sum over k < K of w(oc, k) *
 * xpad_n[base(oy, ox) + koff[k]], base(oy, ox) = oy*stride_h*xw + ox*stride_w, where xpad_n is image n
 * of x zero-padded to xh x xw. */
typedef struct {
    const nn_conv2d_params *p;
    const float *x;
    int xh, xw;
    const int *koff;
    int K;
    const float *wp;      /* blocks of CV_OC_MAX channels: wp[(b*K + k)*CV_OC_MAX + j] = w(b*CV_OC_MAX + j, k) */
    int out_h, out_w;
    float *out;
    const float *bias;
    float *scratch;       /* CV_SLOTS slices of cv_image_floats */
} cv_conv;

/* Forward on phases: [packed weights | phase planes of x], or cv_path's [packed weights | slices]. */
static size_t strided_workspace(const nn_conv2d_params *p) {
    const int G = p->groups, K = p->c_in / G * p->kh * p->kw;
    const size_t grid_a = (size_t)G * round_up(p->c_out / G, MR) * K, cv_a = (size_t)round_up(p->c_out, CV_OC_MAX) * K;
    if (cv_path(p)) return cv_a + (size_t)CV_SLOTS * cv_image_floats(p);
    return grid_a + (size_t)p->n * p->c_in * phase_geometry(p).ch;
}


/* Workspace layout of the grid path, in floats: [packed weights | x grid | dy grid for dx | dy grid for dw]. */
typedef struct { size_t a, x, dyd, dyg; } grid_space;

/* What the forward pass (need_fwd) and the grid path's dw and dx need; a backward call that takes the
 * im2col path for dx uses the same workspace afterwards, from its start. */
static grid_space grid_workspace(const nn_conv2d_params *p, const grid_geom *g, int need_fwd, int need_dw,
                                 int need_dx) {
    grid_space s = {0, 0, 0, 0};
    const int G = p->groups, K_fwd = p->c_in / G * p->kh * p->kw, K_dx = p->c_out / G * p->kh * p->kw;
    if (need_fwd) s.a = (size_t)G * round_up(p->c_out / G, MR) * K_fwd;
    if (need_dx && (size_t)G * round_up(p->c_in / G, MR) * K_dx > s.a) s.a = (size_t)G * round_up(p->c_in / G, MR) * K_dx;
    if ((need_fwd || need_dw) && g->x_copy) s.x = (size_t)p->n * p->c_in * g->xh * g->xw;
    if ((need_dx || (need_dw && !g->dyg_separate)) && g->dy_copy) s.dyd = (size_t)p->n * p->c_out * g->dh * g->dw;
    if (need_dw && g->dyg_separate && g->xw != g->ow) s.dyg = (size_t)p->n * p->c_out * g->oh * g->xw;
    return s;
}

/* Output positions o in [*lo, *hi) whose input coordinate o*stride + off falls inside [0, size): the
 * taps that read pixels rather than padding. Empty ranges come back as lo == hi. */
static inline void tap_range(int off, int stride, int size, int out, int *lo, int *hi) {
    int l = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int h = size - 1 - off < 0 ? 0 : (size - 1 - off) / stride + 1;
    if (h > out) h = out;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* One tap (i, j): input offsets of output (0, 0) and the output rectangle that reads real pixels. */
typedef struct { int off_y, off_x, y0, y1, x0, x1; } tap_window;

static inline tap_window tap_at(const nn_conv2d_params *p, int i, int j, int oh, int ow) {
    tap_window t;
    t.off_y = i * p->dil_h - p->pad_top;
    t.off_x = j * p->dil_w - p->pad_left;
    tap_range(t.off_y, p->stride_h, p->h, oh, &t.y0, &t.y1);
    tap_range(t.off_x, p->stride_w, p->w, ow, &t.x0, &t.x1);
    return t;
}

/* Winograd (winograd.c) pays where the GEMMs over channels dominate its transforms. Measured on one Zen 4
 * core (best of 25, interleaved): 16 -> 16 channels at 28 x 28 the direct kernel is 1.5x faster; from
 * 32 -> 32 on Winograd is, 1.3-1.6x (64 -> 64 at 28 x 28 and 56 x 56, 128 -> 128 at 14 x 14, 256 -> 256
 * and 512 -> 512 at 7 x 7). */
static int winograd_wins(const nn_conv2d_params *p) {
    return nn_conv2d_winograd_applies(p) && p->c_in >= 32 && p->c_out >= 32;
}

/* Winograd's weight gradient transforms 16 values per 4 outputs of x and dy for 2.25x fewer multiplies, so it
 * needs more channels to pay than the forward pass. Measured against the direct kernel's on Zen 4, 2
 * threads, N32, medians: 64 -> 64 at 28 x 28 1.2-1.5x faster, 128 -> 128 at 14 x 14 1.6-2.3x, 256 -> 256 at
 * 7 x 7 2.8-3.5x; 32 -> 32 at 56 x 56 1.6-1.7x slower. */
static int winograd_wgrad_wins(const nn_conv2d_params *p) {
    return winograd_wins(p) && p->c_in >= 64 && p->c_out >= 64;
}

int nn_conv2d_algorithm_applies(const nn_conv2d_params *p, nn_conv2d_algorithm a) {
    check_params(p);
    switch (a) {
    case NN_CONV2D_AUTO: case NN_CONV2D_IM2COL: return 1;
    case NN_CONV2D_DIRECT: return grid_path(p) || is_depthwise(p) || strided_grid_path(p);
    case NN_CONV2D_WINOGRAD: return nn_conv2d_winograd_applies(p);
    }
    return 0;
}

nn_conv2d_algorithm nn_conv2d_auto_algorithm(const nn_conv2d_params *p) {
    check_params(p);
    if (winograd_wins(p)) return NN_CONV2D_WINOGRAD;
    return grid_path(p) || is_depthwise(p) || strided_grid_path(p) ? NN_CONV2D_DIRECT : NN_CONV2D_IM2COL;
}

static size_t im2col_workspace(const nn_conv2d_params *p) {
    return (size_t)p->c_in * p->kh * p->kw * nn_conv2d_out_h(p) * nn_conv2d_out_w(p);
}

/* The direct path's: depthwise none, the grid path its grids (or im2col's columns when its dx falls back). */
static size_t direct_workspace(const nn_conv2d_params *p) {
    if (is_depthwise(p)) return 0;
    if (strided_grid_path(p)) { /* backward takes im2col */
        const size_t fwd = strided_workspace(p), cols = im2col_workspace(p);
        return fwd > cols ? fwd : cols;
    }
    const size_t cols = im2col_workspace(p);
    const grid_geom g = grid_geometry(p);
    const grid_space s = grid_workspace(p, &g, 1, 1, g.dx_ok);
    const size_t grid = s.a + s.x + s.dyd + s.dyg;
    return g.dx_ok || grid > cols ? grid : cols; /* without dx_ok, backward's dx takes the im2col path */
}

size_t nn_conv2d_workspace_size_with(const nn_conv2d_params *p, nn_conv2d_algorithm a) {
    check_params(p);
    assert(nn_conv2d_algorithm_applies(p, a));
    if (a == NN_CONV2D_AUTO) a = nn_conv2d_auto_algorithm(p);
    switch (a) {
    case NN_CONV2D_WINOGRAD: { /* the direct kernel stands in for a source holding Inf or NaN */
        const size_t wino = nn_conv2d_winograd_workspace_size(p, 2), direct = direct_workspace(p);
        return wino > direct ? wino : direct;
    }
    case NN_CONV2D_DIRECT: return direct_workspace(p);
    default: return im2col_workspace(p);
    }
}

size_t nn_conv2d_workspace_size(const nn_conv2d_params *p) { return nn_conv2d_workspace_size_with(p, NN_CONV2D_AUTO); }

#define NN_LEVEL_SOURCE "conv2d.c"
#include "levels.h"

/* ---- public kernels ---------------------------------------------------------------------------------------- */

/* y (N, C_out, OH, OW); x (N, C_in, H, W); w (C_out, C_in/groups, KH, KW); bias (C_out) or null;
 * workspace: nn_conv2d_workspace_size_with(p, a) floats. */
void nn_conv2d_forward_with(float *y, const float *x, const float *w, const float *bias, float *workspace,
                            const nn_conv2d_params *p, nn_conv2d_algorithm a) {
    check_params(p);
    assert(y && x && w && nn_conv2d_algorithm_applies(p, a));
    NN_DISPATCH(forward)(y, x, w, bias, workspace, p, a == NN_CONV2D_AUTO ? nn_conv2d_auto_algorithm(p) : a);
}

void nn_conv2d_forward(float *y, const float *x, const float *w, const float *bias, float *workspace,
                       const nn_conv2d_params *p) {
    nn_conv2d_forward_with(y, x, w, bias, workspace, p, NN_CONV2D_AUTO);
}

/* dx (N, C_in, H, W) written; dw (C_out, C_in/groups, KH, KW) and db (C_out) accumulated; each may be
 * null. dy (N, C_out, OH, OW); x (N, C_in, H, W), needed for dw; w (C_out, C_in/groups, KH, KW), needed
 * for dx; workspace: nn_conv2d_workspace_size_with(p, a) floats. */
void nn_conv2d_backward_with(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                             float *workspace, const nn_conv2d_params *p, nn_conv2d_algorithm a) {
    check_params(p);
    assert(dy && (!dx || w) && (!dw || x) && nn_conv2d_algorithm_applies(p, a));
    /* AUTO takes Winograd's weight gradient only where it measured faster; WINOGRAD always does. */
    const int winograd_dw = a == NN_CONV2D_WINOGRAD || (a == NN_CONV2D_AUTO && winograd_wgrad_wins(p));
    NN_DISPATCH(backward)(dx, dw, db, dy, x, w, workspace, p, a == NN_CONV2D_AUTO ? nn_conv2d_auto_algorithm(p) : a,
                          winograd_dw);
}

void nn_conv2d_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                        float *workspace, const nn_conv2d_params *p) {
    nn_conv2d_backward_with(dx, dw, db, dy, x, w, workspace, p, NN_CONV2D_AUTO);
}

/* ---- references ---------------------------------------------------------------------------------------------- */

/* Same buffers as nn_conv2d_forward, without workspace. */
void nn_conv2d_forward_ref(float *y, const float *x, const float *w, const float *bias, const nn_conv2d_params *p) {
    check_params(p);
    const int oh = nn_conv2d_out_h(p), ow = nn_conv2d_out_w(p);
    const int cg = p->c_in / p->groups, mg = p->c_out / p->groups;
    for (int n = 0; n < p->n; n++)
        for (int o = 0; o < p->c_out; o++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    double acc = bias ? bias[o] : 0.0;
                    for (int c = 0; c < cg; c++)
                        for (int i = 0; i < p->kh; i++)
                            for (int j = 0; j < p->kw; j++) {
                                int iy = oy * p->stride_h - p->pad_top + i * p->dil_h;
                                int ix = ox * p->stride_w - p->pad_left + j * p->dil_w;
                                if (iy < 0 || iy >= p->h || ix < 0 || ix >= p->w) continue;
                                int ci = o / mg * cg + c;
                                acc += (double)w[((o * cg + c) * p->kh + i) * p->kw + j] *
                                       x[(((size_t)n * p->c_in + ci) * p->h + iy) * p->w + ix];
                            }
                    y[(((size_t)n * p->c_out + o) * oh + oy) * ow + ox] = (float)acc;
                }
}

/* Same buffers as nn_conv2d_backward, without workspace. dx gathers from the outputs each pixel feeds
 * (the opposite direction to col2im's scatter), so the two check each other. */
void nn_conv2d_backward_ref(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                            const nn_conv2d_params *p) {
    check_params(p);
    const int oh = nn_conv2d_out_h(p), ow = nn_conv2d_out_w(p);
    const int cg = p->c_in / p->groups, mg = p->c_out / p->groups;
#define DY(n, o, oy, ox) dy[(((size_t)(n) * p->c_out + (o)) * oh + (oy)) * ow + (ox)]
#define X(n, c, iy, ix) x[(((size_t)(n) * p->c_in + (c)) * p->h + (iy)) * p->w + (ix)]
    if (dx)
        for (int n = 0; n < p->n; n++)
            for (int c = 0; c < p->c_in; c++)
                for (int iy = 0; iy < p->h; iy++)
                    for (int ix = 0; ix < p->w; ix++) {
                        double acc = 0.0;
                        for (int oo = 0; oo < mg; oo++)
                            for (int i = 0; i < p->kh; i++)
                                for (int j = 0; j < p->kw; j++) {
                                    int ty = iy + p->pad_top - i * p->dil_h, tx = ix + p->pad_left - j * p->dil_w;
                                    if (ty < 0 || tx < 0 || ty % p->stride_h || tx % p->stride_w) continue;
                                    int oy = ty / p->stride_h, ox = tx / p->stride_w;
                                    if (oy >= oh || ox >= ow) continue;
                                    int o = c / cg * mg + oo;
                                    acc += (double)w[((o * cg + c % cg) * p->kh + i) * p->kw + j] * DY(n, o, oy, ox);
                                }
                        dx[(((size_t)n * p->c_in + c) * p->h + iy) * p->w + ix] = (float)acc;
                    }
    if (dw)
        for (int o = 0; o < p->c_out; o++)
            for (int c = 0; c < cg; c++)
                for (int i = 0; i < p->kh; i++)
                    for (int j = 0; j < p->kw; j++) {
                        double acc = 0.0;
                        for (int n = 0; n < p->n; n++)
                            for (int oy = 0; oy < oh; oy++)
                                for (int ox = 0; ox < ow; ox++) {
                                    int iy = oy * p->stride_h - p->pad_top + i * p->dil_h;
                                    int ix = ox * p->stride_w - p->pad_left + j * p->dil_w;
                                    if (iy < 0 || iy >= p->h || ix < 0 || ix >= p->w) continue;
                                    acc += (double)DY(n, o, oy, ox) * X(n, o / mg * cg + c, iy, ix);
                                }
                        dw[((o * cg + c) * p->kh + i) * p->kw + j] += (float)acc;
                    }
    if (db)
        for (int o = 0; o < p->c_out; o++) {
            double acc = 0.0;
            for (int n = 0; n < p->n; n++)
                for (int q = 0; q < oh * ow; q++) acc += DY(n, o, q / ow, q % ow);
            db[o] += (float)acc;
        }
#undef DY
#undef X
}

#else /* ---- per instruction level (levels.h compiles this part once per level) ---- */

/* ---- microkernels ---- */

/* c (mr, VW*nv), rows NR apart, (+)= sum over k of a[k*lda + r] * b[k*ldb + 0..VW*nv): A packed k-major,
 * B a panel or rows of the source; `more` adds to c (a later panel of the same tile) instead of
 * overwriting it.
 * Twelve accumulators fed by three loads of B and four broadcasts per k (16 registers, so it fits the
 * baseline's and AVX2's register files): on Zen 3 this shape measured 30 of 32 flops per cycle, 6x16 26. `mr` and `nv` are constants in every expansion. */
static inline __attribute__((always_inline)) void NN_L(micro_tile)(const int mr, const int nv, int k, const float *a,
                                                             long lda, const float *b, long ldb, float *c,
                                                             int more, const int *koff) {
    vf acc[MR][NV];
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++) acc[r][v] = more ? vload(c + r * NR + VW * v) : vsplat(0.0f);
    for (; k > 0; k--, a += lda, b += ldb) {
        vf bv[NV];
        const float *bk = koff ? b + *koff++ : b; /* with koff (and ldb 0), row k is read at b + koff[k] */
        for (int v = 0; v < nv; v++) bv[v] = vload(bk + VW * v);
        for (int r = 0; r < mr; r++) {
            const vf s = vsplat(a[r]);
            for (int v = 0; v < nv; v++) acc[r][v] += s * bv[v];
        }
    }
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++) vstore(c + r * NR + VW * v, acc[r][v]);
}

/* One expansion per (rows, registers) shape: partial tiles at the edges get their own straight-line code. */
static __attribute__((noinline)) void NN_L(micro_dispatch)(int mr, int nv, int k, const float *a, long lda, const float *b, long ldb, float *c,
                           int more) {
#define NN_MICRO_CASE(r, v) case (r) * 4 + (v): NN_L(micro_tile)(r, v, k, a, lda, b, ldb, c, more, NULL); break;
    switch (mr * 4 + nv) {
    NN_MICRO_CASE(4, 3) NN_MICRO_CASE(4, 2) NN_MICRO_CASE(4, 1)
    NN_MICRO_CASE(3, 3) NN_MICRO_CASE(3, 2) NN_MICRO_CASE(3, 1)
    NN_MICRO_CASE(2, 3) NN_MICRO_CASE(2, 2) NN_MICRO_CASE(2, 1)
    NN_MICRO_CASE(1, 3) NN_MICRO_CASE(1, 2)
    default: NN_L(micro_tile)(1, 1, k, a, lda, b, ldb, c, more, NULL); break;
    }
#undef NN_MICRO_CASE
}

/* The same tiles with B read in place: row k of the tile is b + koff[k] (whole tiles only). */
static __attribute__((noinline)) void NN_L(micro_dispatch_taps)(int mr, int k, const float *a, long lda, const float *b, const int *koff, float *c,
                                int more) {
    switch (mr) {
    case 4: NN_L(micro_tile)(4, NV, k, a, lda, b, 0, c, more, koff); break;
    case 3: NN_L(micro_tile)(3, NV, k, a, lda, b, 0, c, more, koff); break;
    case 2: NN_L(micro_tile)(2, NV, k, a, lda, b, 0, c, more, koff); break;
    default: NN_L(micro_tile)(1, NV, k, a, lda, b, 0, c, more, koff); break;
    }
}

/* dw[o*ldw + t] += sum over images i < nimg and q < len of dy_i[o*ldd + q] * x_i[toff[t] + q], for o < mo
 * and t < mt, where dy_i = dy + i*dy_img and x_i = x + i*x_img: lanes hold partial sums over all images in
 * a fixed order, so the result does not depend on who computes it, and each sum is reduced across lanes
 * once, not once per image (for LeNet's short rows the reductions cost as much as the products). Narrow
 * vectors (simd.h's vn): seven unaligned row loads feed twelve multiply-adds. */
static inline __attribute__((always_inline)) void NN_L(dot_block)(const int mo, const int mt, int len, int nimg,
                                                                  const float *dy, long ldd, long dy_img,
                                                                  const float *x, long x_img, const int *toff,
                                                                  float *dw, long ldw) {
    vn acc[DOT_O][DOT_T];
    float rest[DOT_O][DOT_T]; /* rows shorter than a vector: summed in scalars */
    for (int o = 0; o < mo; o++)
        for (int t = 0; t < mt; t++) acc[o][t] = vnsplat(0.0f), rest[o][t] = 0.0f;
    const vni keep = vniota() >= VN - len % VN; /* the tail's lanes not already summed */
    for (int img = 0; img < nimg; img++, dy += dy_img, x += x_img) {
        const float *xt[DOT_T];
        for (int t = 0; t < mt; t++) xt[t] = x + toff[t];
        int q = 0;
        for (; q + VN <= len; q += VN) {
            vn xv[DOT_T];
            for (int t = 0; t < mt; t++) xv[t] = vnload(xt[t] + q);
            for (int o = 0; o < mo; o++) {
                const vn d = vnload(dy + o * ldd + q);
                for (int t = 0; t < mt; t++) acc[o][t] += d * xv[t];
            }
        }
        if (q < len && len >= VN) {
            /* The last len - q positions: reload the final VN and zero the lanes already summed, rather
             * than a scalar loop whose dependent adds would cost as much as the vector part. */
            vn xv[DOT_T];
            for (int t = 0; t < mt; t++) xv[t] = vnload(xt[t] + len - VN);
            for (int o = 0; o < mo; o++) {
                const vn d = vnselect(keep, vnload(dy + o * ldd + len - VN), vnsplat(0.0f));
                for (int t = 0; t < mt; t++) acc[o][t] += d * xv[t];
            }
        } else if (len < VN) {
            for (int o = 0; o < mo; o++)
                for (int t = 0; t < mt; t++)
                    for (int r = 0; r < len; r++) rest[o][t] += dy[o * ldd + r] * xt[t][r];
        }
    }
    for (int o = 0; o < mo; o++)
        for (int t = 0; t < mt; t++) dw[o * ldw + t] += vnhsum(acc[o][t]) + rest[o][t];
}

static __attribute__((noinline)) void NN_L(dot_dispatch)(int mo, int mt, int len, int nimg, const float *dy, long ldd,
                                                         long dy_img, const float *x, long x_img, const int *toff,
                                                         float *dw, long ldw) {
#define NN_DOT_CASE(o, t)                                                                                  \
    case (o) * 8 + (t): NN_L(dot_block)(o, t, len, nimg, dy, ldd, dy_img, x, x_img, toff, dw, ldw); break;
    switch (mo * 8 + mt) {
    NN_DOT_CASE(4, 3) NN_DOT_CASE(4, 2) NN_DOT_CASE(4, 1)
    NN_DOT_CASE(3, 3) NN_DOT_CASE(3, 2) NN_DOT_CASE(3, 1)
    NN_DOT_CASE(2, 3) NN_DOT_CASE(2, 2) NN_DOT_CASE(2, 1)
    NN_DOT_CASE(1, 3) NN_DOT_CASE(1, 2)
    default: NN_L(dot_block)(1, 1, len, nimg, dy, ldd, dy_img, x, x_img, toff, dw, ldw); break;
    }
#undef NN_DOT_CASE
}

/* A of every group in blocks of MR rows, each k-major: block b of group g holds
 * A(g, b*MR + r, k / kk, k % kk) at [(g*blocks + b)*K + k]*MR + r (zero past the last row), K = chans*kk.
 * The microkernel then reads its broadcasts for one k from MR consecutive floats. */
static void NN_L(pack_a)(const grid_conv *g) {
    const int K = g->chans * g->kk, rows = round_up(g->rows, MR);
    for (int grp = 0; grp < g->groups; grp++)
        for (int r = 0; r < rows; r++) {
            const float *a = g->a + grp * g->a_grp + r * g->lda;
            float *d = g->a_packed + ((long)grp * rows + r / MR * MR) * K + r % MR;
            for (int ch = 0; ch < g->chans; ch++)
                for (int t = 0; t < g->kk; t++, d += MR) *d = r < g->rows ? a[ch * g->a_ch + t] : 0.0f;
        }
}

static int NN_L(tile_runs)(const grid_conv *g, int q0, int nr, int q_end, tile_run *runs) {
    int count = 0;
    for (int q = q0; q < q0 + nr && q < q_end;) {
        const int oy = q / g->grid_w, ox = q % g->grid_w;
        const int row_end = q - ox + g->grid_w; /* first position of the next grid row */
        if (ox < g->out_w) {
            const int len = g->out_w - ox < q0 + nr - q ? g->out_w - ox : q0 + nr - q;
            const long at = (long)oy * g->out_w + ox;
            tile_run *last = count > 0 ? &runs[count - 1] : NULL;
            if (last && last->j + last->len == q - q0 && last->at + last->len == at) /* nothing dropped between */
                last->len += len;
            else
                runs[count++] = (tile_run){q - q0, len, at};
        }
        q = row_end;
    }
    return count;
}

/* Writes rows [0, mr) of a computed tile c (rows NR apart) into out (rows plane floats apart), plus bias. */
static void NN_L(tile_store)(float *out, long plane, const float *c, int mr, const tile_run *runs, int nruns,
                       const float *bias) {
    if (nruns == 1 && runs[0].len == NR) { /* the common whole tile: three vector copies per row */
        for (int r = 0; r < mr; r++) {
            const vf b0 = vsplat(bias ? bias[r] : 0.0f);
            float *d = out + r * plane + runs[0].at;
            for (int v = 0; v < NV; v++) vstore(d + VW * v, vload(c + r * NR + VW * v) + b0);
        }
        return;
    }
    for (int r = 0; r < mr; r++) {
        float *o = out + r * plane;
        const float *cr = c + r * NR;
        const float b0 = bias ? bias[r] : 0.0f;
        for (int s = 0; s < nruns; s++) {
            float *d = o + runs[s].at;
            const float *v = cr + runs[s].j;
            int k = 0;
            for (; k + VW <= runs[s].len; k += VW) vstore(d + k, vload(v + k) + vsplat(b0));
            for (; k < runs[s].len; k++) d[k] = v[k] + b0;
        }
    }
}

/* B panel of width VW*nv for k-rows [k0, k0 + kc) of a tile whose first read is src[at]: panel[k - k0][j] =
 * src[at + ch*src_ch + toff[t] + j] for k = ch*kk + t. `checked` reads zero past the end of the source;
 * otherwise `ahead` (the next tile lies inside the source) prefetches the next tile's rows. */
static void NN_L(pack_b)(float *panel, const grid_conv *g, long at, int k0, int kc, int nv, int checked, int ahead) {
    int ch = k0 / g->kk, t = k0 % g->kk;
    for (int k = 0; k < kc; k++, panel += VW * nv) {
        const long o = at + ch * g->src_ch + g->toff[t];
        if (!checked) {
            for (int v = 0; v < nv; v++) vstore(panel + VW * v, vload(g->src + o + VW * v));
            /* The next tile reads the next NR floats of the same rows: too many streams for the hardware
             * prefetcher (one per channel and tap), so ask for them while this tile computes. */
            if (ahead) {
                for (int f = NR; f < 2 * NR; f += 16) __builtin_prefetch(g->src + o + f);
                __builtin_prefetch(g->src + o + 2 * NR - 1);
            }
        } else {
            for (int j = 0; j < VW * nv; j++) panel[j] = o + j < g->src_len ? g->src[o + j] : 0.0f;
        }
        if (++t == g->kk) { t = 0; ch++; }
    }
}

/* Tile `it` of a grid run (an index over images, groups and tiles): all of its output channels. */
static void NN_L(grid_tile)(const grid_tiles *run, long it) {
    const grid_conv *g = run->g;
    const int tiles = run->tiles, q_end = run->q_end, K = run->K;
    const int tile = (int)(it % tiles), grp = (int)(it / tiles % g->groups), n = (int)(it / tiles / g->groups);
    /* The last tile narrows to the registers it needs. */
    const int q0 = tile * NR, nv = q_end - q0 < NR ? (q_end - q0 + VW - 1) / VW : NV;
    tile_run runs[NR];
    const int nruns = NN_L(tile_runs)(g, q0, VW * nv, q_end, runs);
    const long at = n * g->src_img + (long)grp * g->chans * g->src_ch + q0;
    /* Only dropped positions read past the last channel of an image; at the end of the source that
     * would leave the buffer, so the last tiles copy with a bounds check (the values do not matter). */
    const long reach = at + (g->chans - 1) * g->src_ch + run->max_toff;
    const int checked = reach + VW * nv > g->src_len, ahead = reach + 2 * NR <= g->src_len;
    const float *a = g->a_packed + (long)grp * K * round_up(g->rows, MR);
    float *out = g->out + ((long)n * g->groups + grp) * g->rows * run->plane;
    const float *bias = g->bias ? g->bias + grp * g->rows : NULL;
    float panel[KC * NR] __attribute__((aligned(64)));
    float c[RB * NR] __attribute__((aligned(64)));
    /* A pointwise tile's rows are already contiguous rows of the source: the microkernel reads them in
     * place instead of from a copy. */
    const int direct = g->kk == 1 && !checked;
    const int taps = run->koff && !direct && !checked && nv == NV;
    const float *b = direct ? g->src + at : panel;
    const long ldb = direct ? g->src_ch : VW * nv;
    /* Rows in groups whose tile fits the stack; a group with more than one panel of k re-packs B. */
    for (int rb = 0; rb < g->rows; rb += RB) {
        const int nrows = g->rows - rb < RB ? g->rows - rb : RB;
        for (int k0 = 0; k0 < K; k0 += KC) {
            const int kc = K - k0 < KC ? K - k0 : KC;
            if (!direct && !taps && (rb == 0 || K > KC)) NN_L(pack_b)(panel, g, at, k0, kc, nv, checked, ahead);
            for (int r0 = 0; r0 < nrows; r0 += MR) {
                const int mr = nrows - r0 < MR ? nrows - r0 : MR;
                if (taps)
                    NN_L(micro_dispatch_taps)(mr, kc, a + ((long)(rb + r0) * K + k0 * MR), MR, g->src + at,
                                              run->koff + k0, c + r0 * NR, k0 > 0);
                else
                    NN_L(micro_dispatch)(mr, nv, kc, a + ((long)(rb + r0) * K + k0 * MR), MR,
                                         direct ? b + k0 * ldb : b, ldb, c + r0 * NR, k0 > 0);
            }
        }
        NN_L(tile_store)(out + rb * run->plane, run->plane, c, nrows, runs, nruns, bias ? bias + rb : NULL);
    }
}

static void NN_L(grid_conv_run)(const grid_conv *g) {
    const int q_end = (g->out_h - 1) * g->grid_w + g->out_w;
    const int tiles = (q_end + NR - 1) / NR, K = g->chans * g->kk;
    const long items = (long)g->n * g->groups * tiles;
    int max_toff = 0;
    for (int t = 0; t < g->kk; t++) max_toff = g->toff[t] > max_toff ? g->toff[t] : max_toff;
    NN_L(pack_a)(g);
    /* koff[k] = where k-row k = (channel, tap) of a tile starts relative to the tile's first read. */
    enum { KOFF_MAX = 4608 }; /* 512 channels of 3x3 */
    int koff[KOFF_MAX];
    const int use_koff = g->kk > 1 && K <= KOFF_MAX &&
                         (long)(g->chans - 1) * g->src_ch + max_toff + NR < 2147483647L;
    if (use_koff)
        for (int k = 0; k < K; k++) koff[k] = (int)(k / g->kk * g->src_ch + g->toff[k % g->kk]);
    const grid_tiles run = {g, q_end, tiles, K, max_toff, (long)g->out_h * g->out_w, use_koff ? koff : NULL};
    const double flops = 2.0 * items * NR * g->rows * K;
    (void)flops; /* read only by the OpenMP clause */
    NN_PARALLEL_FOR_IF(flops >= 64.0 * NN_PARALLEL_MIN)
    for (long it = 0; it < items; it++) NN_L(grid_tile)(&run, it);
}

/* ---- output channels across vector lanes (cv_path) ---- */

/* Vectors of output channels per tile: CV_PM x CV_PV accumulators plus CV_PV weight vectors fit AVX-512's
 * 32 registers at 6 x 4, the other levels' 16 at 6 x 2. On conv_fwd_s2 and the stem, 7 x 4 spilled and
 * measured 10% slower; 8 x 2, 5 x 4 and 4 x 4 were no faster. */
#undef CV_PV
#undef CV_OC
#define CV_PV (VW == 16 ? 4 : 2)
#define CV_OC (CV_PV * VW)

/* Positions p < pm of one tile, for the CV_OC output channels of a block: t[p][oc] = sum over k < kn of
 * wp[k*CV_OC_MAX + oc] * src[base[p] + koff[k]]. */
static inline __attribute__((always_inline)) void NN_L(cv_tile)(const int pm, int kn, const float *wp, const float *src,
                                                                const long *base, const int *koff, float *t) {
    vf acc[CV_PM][CV_PV];
    const float *bp[CV_PM];
    for (int p = 0; p < pm; p++) {
        bp[p] = src + base[p];
        for (int v = 0; v < CV_PV; v++) acc[p][v] = vsplat(0.0f);
    }
    for (int k = 0; k < kn; k++, wp += CV_OC_MAX) {
        const int o = koff[k];
        vf wv[CV_PV];
        for (int v = 0; v < CV_PV; v++) wv[v] = vload(wp + VW * v);
        for (int p = 0; p < pm; p++) {
            const vf s = vsplat(bp[p][o]);
            for (int v = 0; v < CV_PV; v++) acc[p][v] += s * wv[v];
        }
    }
    for (int p = 0; p < pm; p++)
        for (int v = 0; v < CV_PV; v++) vstore(t + p * CV_OC + VW * v, acc[p][v]);
}

static __attribute__((noinline)) void NN_L(cv_dispatch)(int pm, int kn, const float *wp, const float *src,
                                                        const long *base, const int *koff, float *t) {
#define NN_CV_CASE(m) case m: NN_L(cv_tile)(m, kn, wp, src, base, koff, t); break;
    switch (pm) {
    NN_CV_CASE(6) NN_CV_CASE(5) NN_CV_CASE(4) NN_CV_CASE(3) NN_CV_CASE(2)
    default: NN_L(cv_tile)(1, kn, wp, src, base, koff, t); break;
    }
#undef NN_CV_CASE
}

/* A computed tile t (pm x CV_OC, position-major) into the output rows of channels [0, ocn): y[oc*plane + p0
 * + p] = t[p][oc] + bias[oc]. Run one tile late, so that t's vector stores have left the store queue
 * before these loads, narrower than the stores, read them. */
static void NN_L(cv_flush)(const float *t, int pm, float *y, long plane, long p0, int ocn, const float *bias) {
    /* Blocks of 8 channels x 8 positions (rows past pm repeat the last one) transposed in registers, so
     * each channel's positions leave as one short vector instead of pm scalar loads and stores. */
    typedef float v8 __attribute__((vector_size(32)));
    for (int o8 = 0; o8 < ocn; o8 += 8) {
        v8 r[8];
        for (int i = 0; i < 8; i++) r[i] = *(const v8 *)(t + (i < pm ? i : pm - 1) * CV_OC + o8);
        v8 u[8], w[8], c[8];
        for (int i = 0; i < 8; i += 2) {
            u[i] = __builtin_shufflevector(r[i], r[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
            u[i + 1] = __builtin_shufflevector(r[i], r[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
        }
        for (int i = 0; i < 8; i += 4)
            for (int h = 0; h < 2; h++) {
                w[i + 2 * h] = __builtin_shufflevector(u[i + h], u[i + 2 + h], 0, 1, 8, 9, 4, 5, 12, 13);
                w[i + 2 * h + 1] = __builtin_shufflevector(u[i + h], u[i + 2 + h], 2, 3, 10, 11, 6, 7, 14, 15);
            }
        for (int j = 0; j < 4; j++) {
            c[j] = __builtin_shufflevector(w[j], w[4 + j], 0, 1, 2, 3, 8, 9, 10, 11);
            c[j + 4] = __builtin_shufflevector(w[j], w[4 + j], 4, 5, 6, 7, 12, 13, 14, 15);
        }
        for (int j = 0; j < 8 && o8 + j < ocn; j++) {
            const float b0 = bias ? bias[o8 + j] : 0.0f;
            float out[8] __attribute__((aligned(32)));
            *(v8 *)out = c[j] + (v8){b0, b0, b0, b0, b0, b0, b0, b0};
            float *d = y + (long)(o8 + j) * plane + p0;
            if (pm == CV_PM) memcpy(d, out, CV_PM * sizeof(float));
            else for (int p = 0; p < pm; p++) d[p] = out[p];
        }
    }
}

/* One plane: d (dst_h, dst_w) = zeros with s (h, w) placed at (top, left). */
static void NN_L(pad_plane)(float *d, int dst_h, int dst_w, const float *s, int h, int w, int top, int left);

/* Image n of a cv_path run: pads it into `slice`, then every output channel of every position. */
static void NN_L(cv_image)(const cv_conv *g, int n, float *slice) {
    const nn_conv2d_params *p = g->p;
    const long plane = (long)g->out_h * g->out_w, xplane = (long)g->xh * g->xw, img = (long)p->h * p->w;
    for (int c = 0; c < p->c_in; c++)
        NN_L(pad_plane)(slice + c * xplane, g->xh, g->xw, g->x + ((long)n * p->c_in + c) * img, p->h, p->w,
                        p->pad_top, p->pad_left);
    const int sub = CV_OC_MAX / CV_OC, blocks = (p->c_out + CV_OC - 1) / CV_OC;
    for (int ob = 0; ob < blocks; ob++) {
        const int oc0 = ob * CV_OC, ocn = p->c_out - oc0 < CV_OC ? p->c_out - oc0 : CV_OC;
        const float *wp = g->wp + (long)(ob / sub) * g->K * CV_OC_MAX + ob % sub * CV_OC;
        float *y = g->out + ((long)n * p->c_out + oc0) * plane;
        const float *bias = g->bias ? g->bias + oc0 : NULL;
        float t[2][CV_PM * CV_OC] __attribute__((aligned(64)));
        int last = 0, oy = 0, ox = 0;
        for (long p0 = 0; p0 < plane; p0 += CV_PM) {
            const int pm = plane - p0 < CV_PM ? (int)(plane - p0) : CV_PM, i = (int)(p0 / CV_PM) & 1;
            long base[CV_PM];
            for (int q = 0; q < pm; q++) {
                base[q] = (long)oy * p->stride_h * g->xw + (long)ox * p->stride_w;
                if (++ox == g->out_w) ox = 0, oy++;
            }
            NN_L(cv_dispatch)(pm, g->K, wp, slice, base, g->koff, t[i]);
            if (p0 > 0) NN_L(cv_flush)(t[!i], CV_PM, y, plane, p0 - CV_PM, ocn, bias);
            last = pm;
        }
        NN_L(cv_flush)(t[(int)((plane - 1) / CV_PM) & 1], last, y, plane, (plane - 1) / CV_PM * CV_PM, ocn, bias);
    }
}

/* Packed block b of wp from w (c_out, K): zero past the last channel. */
static void NN_L(cv_pack_block)(float *wp, const float *w, int c_out, int K, int b) {
    for (int k = 0; k < K; k++)
        for (int j = 0; j < CV_OC_MAX; j++) {
            const int oc = b * CV_OC_MAX + j;
            wp[((long)b * K + k) * CV_OC_MAX + j] = oc < c_out ? w[(long)oc * K + k] : 0.0f;
        }
}

static void NN_L(cv_run)(const cv_conv *g, float *wp, const float *w) {
    const nn_conv2d_params *p = g->p;
    const int packs = (p->c_out + CV_OC_MAX - 1) / CV_OC_MAX;
    for (int b = 0; b < packs; b++) NN_L(cv_pack_block)(wp, w, p->c_out, g->K, b);
    const long slice = cv_image_floats(p);
    const double flops = 2.0 * p->n * p->c_out * g->out_h * g->out_w * (double)g->K;
    (void)flops; /* read only by the OpenMP clause */
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(cv_team()) if (flops >= 64.0 * NN_PARALLEL_MIN)
#endif
    for (int n = 0; n < p->n; n++) {
#ifdef _OPENMP
        const int tid = omp_get_thread_num();
#else
        const int tid = 0;
#endif
        NN_L(cv_image)(g, n, g->scratch + tid * slice);
    }
}

/* One plane: d (dst_h, dst_w) = zeros with s (h, w) placed at (top, left). */
static void NN_L(pad_plane)(float *d, int dst_h, int dst_w, const float *s, int h, int w, int top, int left) {
    memset(d, 0, (size_t)top * dst_w * sizeof(float));
    for (int y = 0; y < h; y++) {
        float *row = d + (long)(top + y) * dst_w;
        memset(row, 0, (size_t)left * sizeof(float));
        memcpy(row + left, s + (long)y * w, (size_t)w * sizeof(float));
        memset(row + left + w, 0, (size_t)(dst_w - left - w) * sizeof(float));
    }
    memset(d + (long)(top + h) * dst_w, 0, (size_t)(dst_h - top - h) * dst_w * sizeof(float));
}

/* dst planes (dst_h, dst_w), dst_plane floats apart, = zeros with the src plane (h, w) placed at
 * (top, left). One plane per iteration. */
static void NN_L(pad_planes)(float *dst, long dst_plane, int dst_h, int dst_w, const float *src, int planes, int h,
                             int w, int top, int left) {
    assert(top >= 0 && left >= 0 && top + h <= dst_h && left + w <= dst_w);
    NN_PARALLEL_FOR_IF((size_t)planes * dst_plane >= NN_PARALLEL_MIN)
    for (int pl = 0; pl < planes; pl++)
        NN_L(pad_plane)(dst + pl * dst_plane, dst_h, dst_w, src + (long)pl * h * w, h, w, top, left);
}

/* One channel's phase planes (strided_grid_path): d holds stride_h*stride_w planes (gh, gw), phase (a, b)
 * at d + (a*stride_w + b)*plane, with d_ab[u][v] = s[u*stride_h + a - pad_top][v*stride_w + b - pad_left],
 * zero outside s (H, W). */
static void NN_L(phase_plane)(float *d, const float *s, const nn_conv2d_params *p, const phase_geom *g) {
    for (int a = 0; a < p->stride_h; a++)
        for (int b = 0; b < p->stride_w; b++) {
            float *dp = d + (a * p->stride_w + b) * g->plane;
            const int off = b - p->pad_left;
            /* columns v*stride_w + off inside [0, W): v in [lo, hi) */
            int lo = off >= 0 ? 0 : (-off + p->stride_w - 1) / p->stride_w;
            int hi = p->w - off <= 0 ? 0 : (p->w - off + p->stride_w - 1) / p->stride_w;
            if (hi > g->gw) hi = g->gw;
            if (lo > hi) lo = hi;
            for (int u = 0; u < g->gh; u++) {
                const int iy = u * p->stride_h + a - p->pad_top;
                float *row = dp + (long)u * g->gw;
                if (iy < 0 || iy >= p->h) {
                    memset(row, 0, (size_t)g->gw * sizeof(float));
                    continue;
                }
                const float *sr = s + (long)iy * p->w + off;
                for (int v = 0; v < lo; v++) row[v] = 0.0f;
                for (int v = lo; v < hi; v++) row[v] = sr[(long)v * p->stride_w];
                for (int v = hi; v < g->gw; v++) row[v] = 0.0f;
            }
        }
}

/* Every (image, channel) of x into its phase planes, one channel per iteration. */
static void NN_L(phase_planes)(float *d, const float *x, const nn_conv2d_params *p, const phase_geom *g) {
    const long planes = (long)p->n * p->c_in, img = (long)p->h * p->w;
    NN_PARALLEL_FOR_IF(planes * g->ch >= NN_PARALLEL_MIN)
    for (long pl = 0; pl < planes; pl++) NN_L(phase_plane)(d + pl * g->ch, x + pl * img, p, g);
}

/* Row r = (c*KH + i)*KW + j of im2col's columns: dst (OH*OW) = the pixels tap (i, j) of channel c reads. */
static void NN_L(im2col_row)(float *dst, const float *x, const nn_conv2d_params *p, int oh, int ow, int r) {
    const int kk = p->kh * p->kw, sw = p->stride_w;
    const int c = r / kk, i = r % kk / p->kw, j = r % p->kw;
    const tap_window t = tap_at(p, i, j, oh, ow);
    const float *xc = x + (size_t)c * p->h * p->w;
    memset(dst, 0, (size_t)t.y0 * ow * sizeof(float));
    for (int oy = t.y0; oy < t.y1; oy++) {
        float *d = dst + (size_t)oy * ow;
        const float *s = xc + (size_t)(oy * p->stride_h + t.off_y) * p->w + t.off_x;
        for (int ox = 0; ox < t.x0; ox++) d[ox] = 0.0f;
        if (sw == 1) memcpy(d + t.x0, s + t.x0, (size_t)(t.x1 - t.x0) * sizeof(float));
        else for (int ox = t.x0; ox < t.x1; ox++) d[ox] = s[ox * sw];
        for (int ox = t.x1; ox < ow; ox++) d[ox] = 0.0f;
    }
    memset(dst + (size_t)t.y1 * ow, 0, (size_t)(oh - t.y1) * ow * sizeof(float));
}

/* col (C_in*KH*KW, OH*OW) from one image x (C_in, H, W): row (c*KH + i)*KW + j holds the pixels tap
 * (i, j) of channel c reads, zero where it reads padding. Rows are independent: split over threads. */
static void NN_L(im2col)(float *col, const float *x, const nn_conv2d_params *p, int oh, int ow) {
    const int rows = p->c_in * p->kh * p->kw;
    const size_t plane = (size_t)oh * ow;
    NN_PARALLEL_FOR_IF(rows * plane >= NN_PARALLEL_MIN)
    for (int r = 0; r < rows; r++) NN_L(im2col_row)(col + r * plane, x, p, oh, ow, r);
}

/* Channel c of col2im: dxc (H, W) = the sum of its KH*KW column rows dcolc (KH*KW, OH*OW), taps in order. */
static void NN_L(col2im_channel)(float *dxc, const float *dcolc, const nn_conv2d_params *p, int oh, int ow) {
    const int kk = p->kh * p->kw, sw = p->stride_w;
    const size_t plane = (size_t)oh * ow;
    memset(dxc, 0, (size_t)p->h * p->w * sizeof(float));
    for (int t_ = 0; t_ < kk; t_++) {
        const tap_window t = tap_at(p, t_ / p->kw, t_ % p->kw, oh, ow);
        const float *src = dcolc + t_ * plane;
        for (int oy = t.y0; oy < t.y1; oy++) {
            const float *s = src + (size_t)oy * ow;
            float *d = dxc + (size_t)(oy * p->stride_h + t.off_y) * p->w + t.off_x;
            for (int ox = t.x0; ox < t.x1; ox++) d[ox * sw] += s[ox];
        }
    }
}

/* dx (C_in, H, W) = the adjoint of im2col applied to dcol (C_in*KH*KW, OH*OW): every column entry added
 * back onto the pixel it was copied from. A thread owns whole channels, so taps are summed in the same
 * order for any thread count. */
static void NN_L(col2im)(float *dx, const float *dcol, const nn_conv2d_params *p, int oh, int ow) {
    const int kk = p->kh * p->kw;
    const size_t plane = (size_t)oh * ow, img = (size_t)p->h * p->w;
    NN_PARALLEL_FOR_IF(p->c_in * kk * plane >= NN_PARALLEL_MIN)
    for (int c = 0; c < p->c_in; c++) NN_L(col2im_channel)(dx + c * img, dcol + (size_t)c * kk * plane, p, oh, ow);
}

/* ---- depthwise: one (image, channel) plane per iteration ---- */

/* One plane: yc (OH, OW) = b0 + the taps wc (KH*KW) over xc (H, W). */
static void NN_L(depthwise_plane)(float *yc, const float *xc, const float *wc, float b0, const nn_conv2d_params *p,
                                  int oh, int ow) {
    const int kk = p->kh * p->kw, sw = p->stride_w;
    const size_t plane = (size_t)oh * ow;
    for (size_t q = 0; q < plane; q++) yc[q] = b0;
    for (int t_ = 0; t_ < kk; t_++) {
        const tap_window t = tap_at(p, t_ / p->kw, t_ % p->kw, oh, ow);
        const float wv = wc[t_];
        for (int oy = t.y0; oy < t.y1; oy++) {
            const float *s = xc + (size_t)(oy * p->stride_h + t.off_y) * p->w + t.off_x;
            float *d = yc + (size_t)oy * ow;
            for (int ox = t.x0; ox < t.x1; ox++) d[ox] += wv * s[ox * sw];
        }
    }
}

/* y (N, C, OH, OW) from x (N, C, H, W), w (C, 1, KH, KW), bias (C) or null. */
static void NN_L(depthwise_forward)(float *y, const float *x, const float *w, const float *bias,
                                    const nn_conv2d_params *p, int oh, int ow) {
    const int kk = p->kh * p->kw, planes = p->n * p->c_in;
    const size_t plane = (size_t)oh * ow, img = (size_t)p->h * p->w;
    NN_PARALLEL_FOR_IF((size_t)planes * plane * kk >= NN_PARALLEL_MIN)
    for (int nc = 0; nc < planes; nc++)
        NN_L(depthwise_plane)(y + nc * plane, x + nc * img, w + nc % p->c_in * kk, bias ? bias[nc % p->c_in] : 0.0f,
                              p, oh, ow);
}

/* One plane of dx: dxc (H, W) = the taps wc (KH*KW) scattered from dyc (OH, OW). */
static void NN_L(depthwise_dx_plane)(float *dxc, const float *dyc, const float *wc, const nn_conv2d_params *p, int oh,
                                     int ow) {
    const int kk = p->kh * p->kw, sw = p->stride_w;
    memset(dxc, 0, (size_t)p->h * p->w * sizeof(float));
    for (int t_ = 0; t_ < kk; t_++) {
        const tap_window t = tap_at(p, t_ / p->kw, t_ % p->kw, oh, ow);
        const float wv = wc[t_];
        for (int oy = t.y0; oy < t.y1; oy++) {
            const float *s = dyc + (size_t)oy * ow;
            float *d = dxc + (size_t)(oy * p->stride_h + t.off_y) * p->w + t.off_x;
            for (int ox = t.x0; ox < t.x1; ox++) d[ox * sw] += wv * s[ox];
        }
    }
}

/* Channel c of dw: dwc (KH*KW) += the sum over images, in order, of dy's plane times x's under each tap. */
static void NN_L(depthwise_dw_channel)(float *dwc, const float *dy, const float *x, int c, const nn_conv2d_params *p,
                                       int oh, int ow) {
    const int kk = p->kh * p->kw, C = p->c_in, sw = p->stride_w;
    const size_t plane = (size_t)oh * ow, img = (size_t)p->h * p->w;
    for (int t_ = 0; t_ < kk; t_++) {
        const tap_window t = tap_at(p, t_ / p->kw, t_ % p->kw, oh, ow);
        double acc = 0.0;
        for (int n = 0; n < p->n; n++) {
            const float *dyc = dy + ((size_t)n * C + c) * plane, *xc = x + ((size_t)n * C + c) * img;
            for (int oy = t.y0; oy < t.y1; oy++) {
                const float *s = xc + (size_t)(oy * p->stride_h + t.off_y) * p->w + t.off_x;
                const float *g = dyc + (size_t)oy * ow;
                float row = 0.0f;
                for (int ox = t.x0; ox < t.x1; ox++) row += g[ox] * s[ox * sw];
                acc += row;
            }
        }
        dwc[t_] += (float)acc;
    }
}

/* dx (N, C, H, W) written, dw (C, 1, KH, KW) accumulated, from dy (N, C, OH, OW), x, w. Two race-free
 * passes: dx over (image, channel) planes, dw over channels with images summed in order. */
static void NN_L(depthwise_backward)(float *dx, float *dw, const float *dy, const float *x, const float *w,
                                     const nn_conv2d_params *p, int oh, int ow) {
    const int kk = p->kh * p->kw, C = p->c_in;
    const size_t plane = (size_t)oh * ow, img = (size_t)p->h * p->w;
    const size_t work = (size_t)p->n * C * plane * kk;
    (void)work; /* read only by the OpenMP clauses */
    if (dx) {
        NN_PARALLEL_FOR_IF(work >= NN_PARALLEL_MIN)
        for (int nc = 0; nc < p->n * C; nc++)
            NN_L(depthwise_dx_plane)(dx + nc * img, dy + nc * plane, w + nc % C * kk, p, oh, ow);
    }
    if (dw) {
        NN_PARALLEL_FOR_IF(work >= NN_PARALLEL_MIN)
        for (int c = 0; c < C; c++) NN_L(depthwise_dw_channel)(dw + c * kk, dy, x, c, p, oh, ow);
    }
}

/* ---- shared by every path ---- */

static void NN_L(add_bias_row)(float *row, float b0, size_t plane) {
    for (size_t q = 0; q < plane; q++) row[q] += b0;
}

/* y (N, C_out, OH*OW) += bias (C_out), one (image, channel) row per iteration. */
static void NN_L(add_bias)(float *y, const float *bias, int n, int c_out, size_t plane) {
    NN_PARALLEL_FOR_IF((size_t)n * c_out * plane >= NN_PARALLEL_MIN)
    for (int r = 0; r < n * c_out; r++) NN_L(add_bias_row)(y + r * plane, bias[r % c_out], plane);
}

/* db[o] += the sum of channel o of dy (N, C_out, plane): each image's plane in float, images in double. */
static void NN_L(bias_grad_channel)(float *db, const float *dy, int o, int n, int c_out, size_t plane) {
    double acc = 0.0;
    for (int i = 0; i < n; i++) {
        const float *row = dy + ((size_t)i * c_out + o) * plane;
        float s = 0.0f;
        for (size_t q = 0; q < plane; q++) s += row[q];
        acc += s;
    }
    db[o] += (float)acc;
}

/* db (C_out) += sum of dy (N, C_out, OH*OW) over images and positions, in double, images in order. */
static void NN_L(bias_grad)(float *db, const float *dy, int n, int c_out, size_t plane) {
    NN_PARALLEL_FOR_IF((size_t)n * c_out * plane >= NN_PARALLEL_MIN)
    for (int o = 0; o < c_out; o++) NN_L(bias_grad_channel)(db, dy, o, n, c_out, plane);
}

/* y (N, C_out, OH, OW); x (N, C_in, H, W); w (C_out, C_in/groups, KH, KW); bias (C_out) or null;
 * workspace: nn_conv2d_workspace_size(p) floats (the padded input grid, or one image's im2col columns). */
static void NN_L(forward)(float *y, const float *x, const float *w, const float *bias, float *workspace,
                          const nn_conv2d_params *p, nn_conv2d_algorithm algo) {
    const int oh = nn_conv2d_out_h(p), ow = nn_conv2d_out_w(p), kk = p->kh * p->kw;
    const int G = p->groups, mg = p->c_out / G, cg = p->c_in / G, plane = oh * ow;
    if (p->n == 0 || p->c_out == 0) return;
    if (p->c_in == 0 || p->h == 0 || p->w == 0) { /* nothing to sum: every output is its bias */
        memset(y, 0, (size_t)p->n * p->c_out * plane * sizeof(float));
        if (bias) NN_L(add_bias)(y, bias, p->n, p->c_out, plane);
        return;
    }
    if (algo == NN_CONV2D_WINOGRAD) {
        if (nn_conv2d_winograd_forward(y, x, w, bias, workspace, p, 2)) return;
        algo = NN_CONV2D_DIRECT; /* x holds Inf or NaN */
    }
    if (algo == NN_CONV2D_DIRECT && is_depthwise(p)) {
        NN_L(depthwise_forward)(y, x, w, bias, p, oh, ow);
        return;
    }
    if (algo == NN_CONV2D_DIRECT && cv_path(p)) {
        int koff[CV_K_MAX];
        const int K = p->c_in * kk, xh = p->h + p->pad_top + p->pad_bottom, xw = p->w + p->pad_left + p->pad_right;
        for (int k = 0; k < K; k++)
            koff[k] = k / kk * xh * xw + k % kk / p->kw * p->dil_h * xw + k % p->kw * p->dil_w;
        const size_t packed = (size_t)round_up(p->c_out, CV_OC_MAX) * K;
        const cv_conv g = {p, x, xh, xw, koff, K, workspace, oh, ow, y, bias, workspace + packed};
        NN_L(cv_run)(&g, workspace, w);
        return;
    }
    if (algo == NN_CONV2D_DIRECT && strided_grid_path(p)) {
        const phase_geom ph = phase_geometry(p);
        float *phased = workspace + strided_workspace(p) - (size_t)p->n * p->c_in * ph.ch;
        NN_L(phase_planes)(phased, x, p, &ph);
        int toff[MAX_TAPS];
        for (int t = 0; t < kk; t++) {
            const int i = t / p->kw * p->dil_h, j = t % p->kw * p->dil_w;
            toff[t] = (int)((i % p->stride_h * p->stride_w + j % p->stride_w) * ph.plane) + i / p->stride_h * ph.gw +
                      j / p->stride_w;
        }
        const grid_conv g = {phased, (long)p->n * p->c_in * ph.ch, p->c_in * ph.ch, ph.ch, ph.gw, kk, toff,
                             w, (long)mg * cg * kk, (long)cg * kk, kk, mg, cg, G, p->n, y, oh, ow, bias, workspace};
        NN_L(grid_conv_run)(&g);
        return;
    }
    if (algo == NN_CONV2D_DIRECT) {
        const grid_geom gm = grid_geometry(p);
        const grid_space s = grid_workspace(p, &gm, 1, 0, 0);
        const float *src = x;
        assert(workspace);
        if (gm.x_copy) {
            NN_L(pad_planes)(workspace + s.a, (long)gm.xh * gm.xw, gm.xh, gm.xw, x, p->n * p->c_in, p->h, p->w,
                       p->pad_top, p->pad_left);
            src = workspace + s.a;
        }
        int toff[MAX_TAPS];
        tap_offsets(toff, p, gm.xw, 0);
        const long xplane = (long)gm.xh * gm.xw;
        const grid_conv g = {src, (long)p->n * p->c_in * xplane, p->c_in * xplane, xplane, gm.xw, kk, toff,
                             w, (long)mg * cg * kk, (long)cg * kk, kk, mg, cg, G, p->n, y, oh, ow, bias, workspace};
        NN_L(grid_conv_run)(&g);
        return;
    }
    const size_t img = (size_t)p->c_in * p->h * p->w, out_img = (size_t)p->c_out * plane;
    const int kg = cg * kk;
    assert(workspace);
    for (int n = 0; n < p->n; n++) {
        NN_L(im2col)(workspace, x + n * img, p, oh, ow);
        for (int g = 0; g < G; g++)
            nn_sgemm(0, 0, mg, plane, kg, 1.0f, w + (size_t)g * mg * kg, kg, workspace + (size_t)g * kg * plane,
                     plane, 0.0f, y + n * out_img + (size_t)g * mg * plane, plane);
    }
    if (bias) NN_L(add_bias)(y, bias, p->n, p->c_out, plane);
}

/* Block `it` of grid_weight_grad over nimg images: DOT_O rows x DOT_T taps of one input channel of dw. */
static void NN_L(weight_grad_block)(float *dw, const float *xg, long x_img, long x_ch, const float *dyg, long dy_img,
                                    long dy_ch, const int *toff, int q_len, int nimg, const nn_conv2d_params *p,
                                    int it) {
    const int kk = p->kh * p->kw, G = p->groups, mg = p->c_out / G, cg = p->c_in / G;
    const int oblocks = (mg + DOT_O - 1) / DOT_O, tblocks = (kk + DOT_T - 1) / DOT_T;
    const int t0 = it % tblocks * DOT_T, c = it / tblocks % cg, ob = it / tblocks / cg;
    const int g = ob / oblocks, o0 = ob % oblocks * DOT_O;
    const int mo = mg - o0 < DOT_O ? mg - o0 : DOT_O, mt = kk - t0 < DOT_T ? kk - t0 : DOT_T;
    const float *dy = dyg + (long)(g * mg + o0) * dy_ch;
    const float *xc = xg + (long)(g * cg + c) * x_ch;
    float *d = dw + ((long)(g * mg + o0) * cg + c) * kk + t0;
    NN_L(dot_dispatch)(mo, mt, q_len, nimg, dy, dy_ch, dy_img, xc, x_img, toff + t0, d, (long)cg * kk);
}

/* dw (C_out, C_in/groups, KH, KW) += the grid dot products summed over images, in blocks of images whose
 * grids fit in L2 (256 KB): within a block each item (DOT_O rows x DOT_T taps of one input channel) sums
 * all its images before one reduction across lanes; blocks follow in order. The same static split for
 * every block keeps an item on one thread, so no two threads touch an element (and nowait is race-free),
 * and the block size depends on the shapes only, not on the thread count. xg is the input grid (x_img,
 * x_ch floats apart), dyg dy on a grid of the same row width (dy_img, dy_ch apart), q_len the positions
 * to sum. */
static void NN_L(grid_weight_grad)(float *dw, const float *xg, long x_img, long x_ch, const float *dyg, long dy_img,
                                   long dy_ch, const int *toff, int q_len, const nn_conv2d_params *p) {
    const int kk = p->kh * p->kw, G = p->groups, mg = p->c_out / G, cg = p->c_in / G;
    const int items = G * ((mg + DOT_O - 1) / DOT_O) * cg * ((kk + DOT_T - 1) / DOT_T);
    const long image_floats = (long)p->c_in * x_ch + (long)p->c_out * dy_ch;
    const int per = image_floats >= 65536 ? 1 : (int)(65536 / image_floats);
    const double flops = 2.0 * p->n * p->c_out * cg * kk * q_len;
    (void)flops; /* read only by the OpenMP clause */
#ifdef _OPENMP
#pragma omp parallel num_threads(nn_threads()) if (flops >= 64.0 * NN_PARALLEL_MIN)
#endif
    for (int n0 = 0; n0 < p->n; n0 += per) {
        const int nimg = p->n - n0 < per ? p->n - n0 : per;
#ifdef _OPENMP
#pragma omp for schedule(static) nowait
#endif
        for (int it = 0; it < items; it++)
            NN_L(weight_grad_block)(dw, xg + n0 * x_img, x_img, x_ch, dyg + n0 * dy_img, dy_img, dy_ch, toff, q_len,
                                    nimg, p, it);
    }
}

/* dx (N, C_in, H, W) written; dw (C_out, C_in/groups, KH, KW) and db (C_out) accumulated; each may be
 * null. dy (N, C_out, OH, OW); x (N, C_in, H, W), needed for dw; w (C_out, C_in/groups, KH, KW), needed
 * for dx; workspace: nn_conv2d_workspace_size(p) floats (padded grids of x and dy, or im2col columns). */
static void NN_L(backward)(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                           float *workspace, const nn_conv2d_params *p, nn_conv2d_algorithm algo, int winograd_dw) {
    const int oh = nn_conv2d_out_h(p), ow = nn_conv2d_out_w(p), plane = oh * ow, kk = p->kh * p->kw;
    const int G = p->groups, mg = p->c_out / G, cg = p->c_in / G, kg = cg * kk;
    const size_t img = (size_t)p->c_in * p->h * p->w, out_img = (size_t)p->c_out * plane;
    if (p->n == 0) return;
    if (p->c_out == 0) { /* no output reads the input: dx is zero, dw and db (empty) stay */
        if (dx) memset(dx, 0, p->n * img * sizeof(float));
        return;
    }
    if (db) NN_L(bias_grad)(db, dy, p->n, p->c_out, (size_t)plane);
    if (p->c_in == 0 || p->h == 0 || p->w == 0) return; /* dx is empty and dw gains only zeros */
    if (algo == NN_CONV2D_DIRECT && is_depthwise(p)) {
        NN_L(depthwise_backward)(dx, dw, dy, x, w, p, oh, ow);
        return;
    }
    if (!dx && !dw) return;
    assert(workspace);
    int dx_done = 0, dw_done = 0;
    if (algo == NN_CONV2D_WINOGRAD && dx && nn_conv2d_winograd_backward_data(dx, dy, w, workspace, p, 2)) {
        /* Done before dw, whose direct kernel below reuses the workspace; dy holding Inf or NaN leaves dx
         * to the direct kernel. */
        dx_done = 1;
        dx = NULL;
    }
    if (winograd_dw && dw && nn_conv2d_winograd_backward_weights(dw, dy, x, workspace, p)) {
        dw_done = 1; /* x or dy holding Inf or NaN leaves dw to the direct kernel */
        dw = NULL;
    }
    if (!dx && !dw) return;
    if (algo != NN_CONV2D_IM2COL && grid_path(p)) {
        const grid_geom gm = grid_geometry(p);
        const int grid_dx = dx && gm.dx_ok;
        const grid_space s = grid_workspace(p, &gm, 0, dw != NULL, grid_dx);
        float *x_grid = workspace + s.a, *dyd_grid = x_grid + s.x, *dyg_grid = dyd_grid + s.dyd;
        const long dplane = (long)gm.dh * gm.dw;
        const float *dyd = dy;
        if ((grid_dx || (dw && !gm.dyg_separate)) && gm.dy_copy) {
            NN_L(pad_planes)(dyd_grid, dplane, gm.dh, gm.dw, dy, p->n * p->c_out, oh, ow, gm.dtop, gm.dleft);
            dyd = dyd_grid;
        }
        if (grid_dx) {
            /* dx[c, q] = sum over o, (i, j) of w[o, c, i, j] * dyd[o][q + (KH-1-i)*dil_h*dw + (KW-1-j)*dil_w]. */
            int toff[MAX_TAPS];
            tap_offsets(toff, p, gm.dw, 1);
            const grid_conv g = {dyd, (long)p->n * p->c_out * dplane, p->c_out * dplane, dplane, gm.dw, kk, toff,
                                 w, (long)mg * cg * kk, kk, (long)cg * kk, cg, mg, G, p->n, dx, p->h, p->w, NULL,
                                 workspace};
            NN_L(grid_conv_run)(&g);
            dx_done = 1;
        }
        if (dw) {
            const float *xg = x;
            const long xplane = (long)gm.xh * gm.xw;
            if (gm.x_copy) {
                NN_L(pad_planes)(x_grid, xplane, gm.xh, gm.xw, x, p->n * p->c_in, p->h, p->w, p->pad_top, p->pad_left);
                xg = x_grid;
            }
            const float *dyg = dyd + (long)gm.dtop * gm.dw + gm.dleft; /* dy's corner in the dx grid */
            long dyg_plane = dplane;
            if (gm.dyg_separate) {
                dyg_plane = (long)oh * gm.xw;
                dyg = dy;
                if (gm.xw != ow) {
                    NN_L(pad_planes)(dyg_grid, dyg_plane, oh, gm.xw, dy, p->n * p->c_out, oh, ow, 0, 0);
                    dyg = dyg_grid;
                }
            }
            int toff[MAX_TAPS];
            tap_offsets(toff, p, gm.xw, 0);
            NN_L(grid_weight_grad)(dw, xg, p->c_in * xplane, xplane, dyg, p->c_out * dyg_plane, dyg_plane, toff,
                             (oh - 1) * gm.xw + ow, p);
            dw_done = 1;
        }
    }
    if ((dx && !dx_done) || (dw && !dw_done)) {
        for (int n = 0; n < p->n; n++) {
            const float *dyn = dy + n * out_img;
            if (dw && !dw_done) { /* dw_g += dy_g (mg, plane) col_g^T (plane, kg), images in order. */
                NN_L(im2col)(workspace, x + n * img, p, oh, ow);
                for (int g = 0; g < G; g++)
                    nn_sgemm(0, 1, mg, kg, plane, 1.0f, dyn + (size_t)g * mg * plane, plane,
                             workspace + (size_t)g * kg * plane, plane, 1.0f, dw + (size_t)g * mg * kg, kg);
            }
            if (dx && !dx_done) { /* dcol_g (kg, plane) = w_g^T (kg, mg) dy_g (mg, plane), then col2im. */
                for (int g = 0; g < G; g++)
                    nn_sgemm(1, 0, kg, plane, mg, 1.0f, w + (size_t)g * mg * kg, kg, dyn + (size_t)g * mg * plane,
                             plane, 0.0f, workspace + (size_t)g * kg * plane, plane);
                NN_L(col2im)(dx + n * img, workspace, p, oh, ow);
            }
        }
    }
}

#endif
