/* Winograd convolution for 3x3, stride 1, dilation 1, groups 1 (shapes in include/conv2d.h): the forward
 * pass, and the input gradient as the same convolution of dy with the kernel turned around and its
 * channel axes swapped. F(m x m, 3 x 3) for m = 2 (4 x 4 transformed tiles) or m = 4 (6 x 6), Lavin & Gray
 * 2016 with the points 0, 1, -1 (and 2, -2) and infinity:
 *   y_tile (m x m) = A^T [ sum over c of (G g_{k,c} G^T) .* (B^T d_c B) ] A
 * where d_c is the (m+2) x (m+2) input patch of channel c under the tile and g_{k,c} the 3 x 3 kernel.
 * The element-wise products summed over c are alpha^2 = (m+2)^2 independent GEMMs:
 *   M[xi] (K x tiles) = U[xi] (K x C) V[xi] (C x tiles).
 *
 * Work split: first the source is copied, zero-padded, with each row split into its m phases (columns
 * congruent mod m side by side), so that element (i, j) of the patches of consecutive tiles of a tile row
 * is one contiguous vector. A block of WT consecutive output tiles (row-major over images, tile rows,
 * tile columns) is one item of the parallel loop and owns every output channel of those tiles; it is a
 * few runs of consecutive tiles of one tile row. An item transforms its patches channel by channel with
 * the tiles across vector lanes into V (alpha^2 x C x WT, in the thread's slice of the workspace:
 * L2-sized for the channel counts this path is chosen for), then for each block of WMR output channels
 * runs the alpha^2 GEMMs (a WMR x WT register tile, the K axis of the GEMM being C) into M and transforms
 * M straight into the output rows (the m output columns of a tile interleaved back in vector code). The
 * weights are transformed once per call, in double, packed k-blocked for the microkernel's broadcasts.
 * No float is summed across items, and a tile's arithmetic does not depend on its lane, so results are
 * bit-identical for any thread count.
 *
 * Accuracy (CKernels/README.md has the table): the transforms multiply rounding errors by up to the
 * size of their coefficients, so F(4x4) errs more than F(2x2), which errs a little more than the direct
 * kernel. The F(2x2) weight gradient (below nn_conv2d_winograd_workspace_size), measured by test_winograd on
 * N2, 64 -> 64, 28 x 28, unit-scale x and dy, errors relative to the RMS of dw against the double reference
 * (largest, RMS): direct 8.9e-7 / 1.8e-7, F(2x2) 9.7e-7 / 1.9e-7 at AVX-512 (1.08x, 1.02x); 1.35x, 1.27x
 * at AVX2 and 1.50x, 1.25x at the baseline (direct 1.2e-6 / 2.5e-7 there), inside the 4x budget. Inf or NaN in one input pixel would reach every output of the tiles whose patch holds it (the
 * direct kernel confines it to the outputs whose 3 x 3 window does), so the copy that splits the source
 * into phases also looks for them, and a source holding any makes the call return 0 for the caller to
 * run the direct kernel instead. */
#ifndef NN_LEVEL /* ---- common to every level ---- */
#include "nn_internal.h"
#include <string.h>

enum {
    WG_WT_MAX = 48,  /* tiles per block at the widest level: 3 vectors of 16 */
    WG_MR_MAX = 8,   /* output channels per register tile at the widest level */
    WG_ALPHA_MAX = 6,
    /* Threads that run the blocks, each with its own slice of scratch. A constant, so the workspace size
     * depends on the shapes only and stays right when the thread count changes between asking for it
     * and running; slices never touched cost address space, not memory. */
    WG_SLOTS = 16,
};

/* The team of the loops that use a thread's scratch slice: nn_threads(), at most WG_SLOTS. */
static int wg_team(void) { return nn_threads() < WG_SLOTS ? nn_threads() : WG_SLOTS; }

/* One parallel loop whose body indexes scratch by thread: a team of wg_team(). */
#define WG_PARALLEL_FOR_IF(cond) _Pragma(NN_STR(omp parallel for schedule(static) num_threads(wg_team()) if(cond)))

/* One Winograd convolution: out (N, K, OH, OW) = conv3x3(src (N, C, H, W)) with the taps of u
 * (transformed), the patch of output (oy, ox) starting at src row oy - pad_top, column ox - pad_left
 * (negative pads crop: the input gradient of a convolution padded by more than 2). */
typedef struct {
    const float *src;
    int n, c, h, w;
    int k, oh, ow;
    int pad_top, pad_left;
    int m;                 /* output tile: 2 or 4 */
    const float *u;        /* alpha^2 x ceil(K / mr) x C x mr transformed taps (wg_pack_weights) */
    const float *bias;     /* K, or null */
    float *out;
    float *phased;         /* the phase-split source: N*C planes of wg_phased_plane floats */
    int rows, lanes;       /* rows of a phased plane; floats per phase row (tiles per row + 1) */
    float *scratch;        /* WG_SLOTS slices of scratch_stride floats */
    long scratch_stride;
    long row_at;           /* where a slice's padded row for the phase split starts */
} wg_conv;

/* A run of a block: `len` consecutive tiles of one tile row, from tile column tx, in lanes from `lane`. */
typedef struct { int n, ty, tx, len, lane; } wg_run_of_tiles;

static int wg_alpha(int m) { return m + 2; }

/* Per thread: V (alpha^2 x C x WTS), M (alpha^2 x MR x WTS) and one vector's transformed outputs
 * (m^2 x 16), at the widest level's sizes; WTS = WT + a vector, where the last run's vector may spill. */
static long wg_thread_floats(int c, int m) {
    const long a2 = (long)wg_alpha(m) * wg_alpha(m), wts = WG_WT_MAX + 16;
    return a2 * c * wts + a2 * WG_MR_MAX * wts + (long)m * m * 16;
}

/* The phase-split copy of a source of h x w planes read with padding pad_top/pad_left for an output of
 * oh x ow: rows (tile rows * m + 2) of m phases of (tile columns + 1) floats. */
static void wg_phased_shape(int oh, int ow, int m, int *rows, int *lanes) {
    *rows = (oh + m - 1) / m * m + 2;
    *lanes = (ow + m - 1) / m + 1;
}

/* Floats of the phase-split copy of n*c planes, plus a vector of slack for the last loads' spare lanes,
 * plus one flag per plane (non-finite values seen). */
static long wg_phased_floats(int n, int c, int oh, int ow, int m) {
    int rows, lanes;
    wg_phased_shape(oh, ow, m, &rows, &lanes);
    return (long)n * c * rows * m * lanes + 16 + (long)n * c;
}

static long wg_weight_floats(int k, int c, int m) {
    return (long)wg_alpha(m) * wg_alpha(m) * ((k + WG_MR_MAX - 1) / WG_MR_MAX * WG_MR_MAX) * c;
}

/* The kernel transform G (alpha x 3) for each tile size; B^T and A^T are written out in the per-level
 * transforms, and all three as matrices in the reference below. */
static const double wg_g2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
static const double wg_g4[6][3] = {{1.0 / 4, 0, 0},
                                   {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                   {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                   {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                   {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                   {0, 0, 1}};
static const float wg_bt2[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
static const float wg_bt4[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                                   {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
static const float wg_at2[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};
static const float wg_at4[4][6] = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};

/* Taps of output channel `ko` reading source channel `ci`: w (K, C, 3, 3) as is, or for the input
 * gradient w (C_src, K_out, 3, 3) read as w[ci, ko] turned around. */
static void wg_taps(double g[3][3], const float *w, int ko, int ci, int k_out, int c_src, int flip) {
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            g[i][j] = flip ? w[(((long)ci * k_out + ko) * 3 + 2 - i) * 3 + 2 - j] : w[(((long)ko * c_src + ci) * 3 + i) * 3 + j];
}

/* u[xi][kb][c][r] = (G g_{kb*mr + r, c} G^T)[xi] in double, zero for channels past K. One block of mr
 * output channels per call, so the parallel loop below owns whole outputs. */
static void wg_pack_block(float *u, const float *w, int kb, int k_out, int c_src, int m, int mr, int flip) {
    const int alpha = wg_alpha(m), blocks = (k_out + mr - 1) / mr;
    const double(*G)[3] = m == 2 ? wg_g2 : wg_g4;
    for (int r = 0; r < mr; r++) {
        const int ko = kb * mr + r;
        for (int ci = 0; ci < c_src; ci++) {
            double g[3][3] = {{0}}, gg[WG_ALPHA_MAX][3];
            if (ko < k_out) wg_taps(g, w, ko, ci, k_out, c_src, flip);
            for (int a = 0; a < alpha; a++)
                for (int j = 0; j < 3; j++) gg[a][j] = G[a][0] * g[0][j] + G[a][1] * g[1][j] + G[a][2] * g[2][j];
            for (int a = 0; a < alpha; a++)
                for (int b = 0; b < alpha; b++) {
                    const double v = gg[a][0] * G[b][0] + gg[a][1] * G[b][1] + gg[a][2] * G[b][2];
                    u[(((long)(a * alpha + b) * blocks + kb) * c_src + ci) * mr + r] = (float)v;
                }
        }
    }
}

static void wg_pack_weights(float *u, const float *w, int k_out, int c_src, int m, int mr, int flip) {
    const int blocks = (k_out + mr - 1) / mr;
    NN_PARALLEL_FOR_IF((long)blocks * mr * c_src * 256 >= NN_PARALLEL_MIN)
    for (int kb = 0; kb < blocks; kb++) wg_pack_block(u, w, kb, k_out, c_src, m, mr, flip);
}

int nn_conv2d_winograd_applies(const nn_conv2d_params *p) {
    return p->kh == 3 && p->kw == 3 && p->stride_h == 1 && p->stride_w == 1 && p->dil_h == 1 && p->dil_w == 1 &&
           p->groups == 1;
}

/* Workspace layout: [transformed weights | phase-split source | per-thread scratch]; the forward pass and
 * the input gradient share one size, the larger of the two at each part. */
typedef struct { long u, phased, thread, row; } wg_space;

static wg_space wg_workspace(const nn_conv2d_params *p, int m) {
    const int oh = nn_conv2d_out_h(p), ow = nn_conv2d_out_w(p);
    const long u_fwd = wg_weight_floats(p->c_out, p->c_in, m), u_dx = wg_weight_floats(p->c_in, p->c_out, m);
    const long x_fwd = wg_phased_floats(p->n, p->c_in, oh, ow, m), x_dx = wg_phased_floats(p->n, p->c_out, p->h, p->w, m);
    const int cmax = p->c_in > p->c_out ? p->c_in : p->c_out;
    int rows, lanes_fwd, lanes_dx; /* and one padded row of the phase split, after the thread's other scratch */
    wg_phased_shape(oh, ow, m, &rows, &lanes_fwd);
    wg_phased_shape(p->h, p->w, m, &rows, &lanes_dx);
    const long row = (long)m * (lanes_fwd > lanes_dx ? lanes_fwd : lanes_dx);
    wg_space s = {u_fwd > u_dx ? u_fwd : u_dx, x_fwd > x_dx ? x_fwd : x_dx, wg_thread_floats(cmax, m) + row, row};
    return s;
}

/* ---- weight gradient, F(2x2, 3x3) ----
 * dw[o, c] += G^T [ sum over tiles of (A dy_tile A^T) .* (B^T x_tile B) ] G: the transpose of the forward
 * pass's algebra (y = A^T (U .* V) A with U = G g G^T), so dL/dU = (A dy A^T) .* V and dL/dg = G^T dL/dU G.
 * The 16 sums over tiles are GEMMs M[xi] (K x C) = dyT[xi] (K x tiles) xT[xi] (C x tiles)^T. Tiles go in
 * chunks of whole tile rows (in order: images, tile rows); per chunk one parallel loop transforms every
 * channel of x and dy (one channel per item, tiles along the row of the chunk buffer), then one parallel
 * loop over (xi, block of 4 output channels) adds the chunk's dot products into M, which that item owns.
 * M is summed in chunk order whatever the thread count. Last, G^T M G in double is added into dw. */
enum { WGW_CB = 4, WGW_TILES = 1024 };

typedef struct { long phx, phd, buf, m, row, rows_per_chunk, tcs; int cp, kp; } wgw_space;

/* Floats from one transformed element's rows to the next: the channels' rows and 3 cache lines more, so
 * that the 16 rows one transform writes do not all fall in one set of the L1 cache (with 64 channels on
 * each side (CP + KP) * TCS floats are a multiple of 4 KiB). */
static long wgw_xi_stride(int cp, int kp, long tcs) { return (long)(cp + kp) * tcs + 48; }

static wgw_space wgw_workspace(const nn_conv2d_params *p) {
    const int oh = nn_conv2d_out_h(p), ow = nn_conv2d_out_w(p), tw = (ow + 1) / 2;
    int rows, lanes;
    wg_phased_shape(oh, ow, 2, &rows, &lanes);
    wgw_space s;
    s.cp = (p->c_in + WGW_CB - 1) / WGW_CB * WGW_CB;
    s.kp = (p->c_out + WGW_CB - 1) / WGW_CB * WGW_CB;
    s.phx = wg_phased_floats(p->n, p->c_in, oh, ow, 2);
    s.phd = wg_phased_floats(p->n, p->c_out, oh, ow, 2);
    s.rows_per_chunk = tw > 0 && WGW_TILES / tw > 0 ? WGW_TILES / tw : 1;
    /* a chunk row: its tiles, the last vector's spill, rounded to the widest vector */
    s.tcs = (s.rows_per_chunk * tw + 16 + 15) / 16 * 16;
    s.buf = 16L * wgw_xi_stride(s.cp, s.kp, s.tcs);
    s.m = 16L * s.kp * s.cp;
    s.row = 2L * lanes;
    return s;
}

static long wgw_floats(const nn_conv2d_params *p) {
    const wgw_space s = wgw_workspace(p);
    return s.phx + s.phd + s.buf + s.m + WG_SLOTS * s.row;
}

/* One chunk of tile rows for the per-level transforms and dot products. */
typedef struct {
    const wg_conv *gx, *gd; /* the phase-split x (C planes per image) and dy (K planes per image) */
    int C, K, cp, kp, tw, th;
    long tcs, row0, rows;   /* chunk row stride; the chunk's first global tile row and its tile rows */
    float *buf;             /* 16 x (CP + KP) x TCS, rows wgw_xi_stride apart: x's transformed tiles, then dy's */
    float *M;               /* 16 x KP x CP */
} wgw_chunk;

/* dw[o, c, :, :] += G^T M[., o, c] G for every c of output channel o; M (16 x KP x CP). */
static void wgw_output_channel(float *dw, const float *M, int o, int C, int cp, int kp) {
    for (int c = 0; c < C; c++) {
        double t[4][3]; /* M G */
        for (int a = 0; a < 4; a++)
            for (int j = 0; j < 3; j++) {
                double s = 0;
                for (int b = 0; b < 4; b++) s += (double)M[((long)(a * 4 + b) * kp + o) * cp + c] * wg_g2[b][j];
                t[a][j] = s;
            }
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++) {
                double s = 0;
                for (int a = 0; a < 4; a++) s += wg_g2[a][i] * t[a][j];
                dw[(((long)o * C + c) * 3 + i) * 3 + j] += (float)s;
            }
    }
}

size_t nn_conv2d_winograd_workspace_size(const nn_conv2d_params *p, int m) {
    assert(nn_conv2d_winograd_applies(p) && (m == 2 || m == 4));
    const wg_space s = wg_workspace(p, m);
    const long fwd = s.u + s.phased + (long)WG_SLOTS * s.thread, wgrad = m == 2 ? wgw_floats(p) : 0;
    return (size_t)(fwd > wgrad ? fwd : wgrad);
}

#define NN_LEVEL_SOURCE "winograd.c"
#include "levels.h"

/* Geometry shared by the forward pass and the input gradient; `flip` selects the input gradient. */
static void wg_setup(wg_conv *g, float *out, const float *src, const float *bias, float *workspace,
                     const nn_conv2d_params *p, int m, int flip) {
    const int oh = nn_conv2d_out_h(p), ow = nn_conv2d_out_w(p);
    g->src = src;
    g->n = p->n;
    g->c = flip ? p->c_out : p->c_in;
    g->h = flip ? oh : p->h;
    g->w = flip ? ow : p->w;
    g->k = flip ? p->c_in : p->c_out;
    g->oh = flip ? p->h : oh;
    g->ow = flip ? p->w : ow;
    g->pad_top = flip ? 2 - p->pad_top : p->pad_top;
    g->pad_left = flip ? 2 - p->pad_left : p->pad_left;
    g->m = m;
    g->bias = bias;
    g->out = out;
    const wg_space s = wg_workspace(p, m);
    g->u = workspace;
    g->phased = workspace + s.u;
    wg_phased_shape(g->oh, g->ow, m, &g->rows, &g->lanes);
    g->scratch = g->phased + s.phased;
    g->scratch_stride = s.thread;
    g->row_at = s.thread - s.row;
}

/* y (N, C_out, OH, OW) = x (N, C_in, H, W) convolved with w (C_out, C_in, 3, 3), plus bias (C_out) or
 * null; workspace: nn_conv2d_winograd_workspace_size(p, m) floats. Returns 0, having written nothing,
 * when x holds Inf or NaN: the caller then runs the direct kernel. */
int nn_conv2d_winograd_forward(float *y, const float *x, const float *w, const float *bias, float *workspace,
                               const nn_conv2d_params *p, int m) {
    assert(nn_conv2d_winograd_applies(p) && (m == 2 || m == 4) && y && x && w && workspace);
    if (p->n == 0 || p->c_out == 0) return 1;
    wg_conv g;
    wg_setup(&g, y, x, bias, workspace, p, m, 0);
    return NN_DISPATCH(wg_run)(&g, w, 0);
}

/* dx (N, C_in, H, W) = dy (N, C_out, OH, OW) convolved with w (C_out, C_in, 3, 3) turned around, written;
 * workspace: nn_conv2d_winograd_workspace_size(p, m) floats. Returns 0, having written nothing, when dy
 * holds Inf or NaN. */
int nn_conv2d_winograd_backward_data(float *dx, const float *dy, const float *w, float *workspace,
                                     const nn_conv2d_params *p, int m) {
    assert(nn_conv2d_winograd_applies(p) && (m == 2 || m == 4) && dx && dy && w && workspace);
    if (p->n == 0 || p->c_in == 0) return 1;
    wg_conv g;
    wg_setup(&g, dx, dy, NULL, workspace, p, m, 1);
    return NN_DISPATCH(wg_run)(&g, w, 1);
}

/* dw (C_out, C_in, 3, 3) += the weight gradient of y = conv(x, w) for dy (N, C_out, OH, OW) and x (N, C_in,
 * H, W), by F(2x2, 3x3); workspace: nn_conv2d_winograd_workspace_size(p, 2) floats. Returns 0, having
 * written nothing, when x or dy holds Inf or NaN. */
int nn_conv2d_winograd_backward_weights(float *dw, const float *dy, const float *x, float *workspace,
                                        const nn_conv2d_params *p) {
    assert(nn_conv2d_winograd_applies(p) && dw && dy && x && workspace);
    if (p->n == 0 || p->c_out == 0 || p->c_in == 0) return 1;
    return NN_DISPATCH(wgw_run)(dw, dy, x, workspace, p);
}

/* dw (C_out, C_in, 3, 3) += the same sums as nn_conv2d_winograd_backward_weights, as plain loops in
 * float, one output channel, input channel and tile at a time, with the transforms as matrix products. */
void nn_conv2d_winograd_backward_weights_ref(float *dw, const float *dy, const float *x, const nn_conv2d_params *p) {
    assert(nn_conv2d_winograd_applies(p));
    const int oh = nn_conv2d_out_h(p), ow = nn_conv2d_out_w(p), C = p->c_in, K = p->c_out, H = p->h, W = p->w;
    static const float a2[4][2] = {{1, 0}, {1, 1}, {1, -1}, {0, -1}}; /* A = (A^T)^T */
    for (int ko = 0; ko < K; ko++)
        for (int ci = 0; ci < C; ci++) {
            float acc[4][4] = {{0}};
            for (int n = 0; n < p->n; n++)
                for (int ty = 0; ty < oh; ty += 2)
                    for (int tx = 0; tx < ow; tx += 2) {
                        float d[4][4], e[2][2], t[4][4], v[4][4], u[4][2];
                        for (int i = 0; i < 4; i++)
                            for (int j = 0; j < 4; j++) {
                                const int iy = ty - p->pad_top + i, ix = tx - p->pad_left + j;
                                d[i][j] = iy >= 0 && iy < H && ix >= 0 && ix < W ? x[(((long)n * C + ci) * H + iy) * W + ix] : 0.0f;
                            }
                        for (int i = 0; i < 2; i++)
                            for (int j = 0; j < 2; j++)
                                e[i][j] = ty + i < oh && tx + j < ow ? dy[(((long)n * K + ko) * oh + ty + i) * ow + tx + j] : 0.0f;
                        for (int a = 0; a < 4; a++) /* t = B^T d, v = t B */
                            for (int j = 0; j < 4; j++) {
                                float s = 0.0f;
                                for (int i = 0; i < 4; i++) s += wg_bt2[a][i] * d[i][j];
                                t[a][j] = s;
                            }
                        for (int a = 0; a < 4; a++)
                            for (int b = 0; b < 4; b++) {
                                float s = 0.0f;
                                for (int j = 0; j < 4; j++) s += t[a][j] * wg_bt2[b][j];
                                v[a][b] = s;
                            }
                        for (int a = 0; a < 4; a++) /* u = A e, then (u A^T) .* v */
                            for (int j = 0; j < 2; j++) u[a][j] = a2[a][0] * e[0][j] + a2[a][1] * e[1][j];
                        for (int a = 0; a < 4; a++)
                            for (int b = 0; b < 4; b++) acc[a][b] += (u[a][0] * a2[b][0] + u[a][1] * a2[b][1]) * v[a][b];
                    }
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++) {
                    double s = 0;
                    for (int a = 0; a < 4; a++)
                        for (int b = 0; b < 4; b++) s += wg_g2[a][i] * (double)acc[a][b] * wg_g2[b][j];
                    dw[(((long)ko * C + ci) * 3 + i) * 3 + j] += (float)s;
                }
        }
}

/* The same algorithm as plain loops in float, one tile and output channel at a time, with the
 * transforms as matrix products: what the tests compare the blocked kernel against. Same buffers as
 * nn_conv2d_winograd_forward, without workspace. */
void nn_conv2d_winograd_forward_ref(float *y, const float *x, const float *w, const float *bias,
                                    const nn_conv2d_params *p, int m) {
    assert(nn_conv2d_winograd_applies(p) && (m == 2 || m == 4));
    const int alpha = wg_alpha(m), oh = nn_conv2d_out_h(p), ow = nn_conv2d_out_w(p);
    const int C = p->c_in, K = p->c_out, H = p->h, W = p->w;
    const double(*G)[3] = m == 2 ? wg_g2 : wg_g4;
    for (int n = 0; n < p->n; n++)
        for (int ko = 0; ko < K; ko++)
            for (int ty = 0; ty < oh; ty += m)
                for (int tx = 0; tx < ow; tx += m) {
                    float acc[WG_ALPHA_MAX][WG_ALPHA_MAX] = {{0}};
                    for (int ci = 0; ci < C; ci++) {
                        double g[3][3], gg[WG_ALPHA_MAX][3];
                        float u[WG_ALPHA_MAX][WG_ALPHA_MAX], d[WG_ALPHA_MAX][WG_ALPHA_MAX], t[WG_ALPHA_MAX][WG_ALPHA_MAX];
                        wg_taps(g, w, ko, ci, K, C, 0);
                        for (int a = 0; a < alpha; a++)
                            for (int j = 0; j < 3; j++) gg[a][j] = G[a][0] * g[0][j] + G[a][1] * g[1][j] + G[a][2] * g[2][j];
                        for (int a = 0; a < alpha; a++)
                            for (int b = 0; b < alpha; b++)
                                u[a][b] = (float)(gg[a][0] * G[b][0] + gg[a][1] * G[b][1] + gg[a][2] * G[b][2]);
                        for (int i = 0; i < alpha; i++)
                            for (int j = 0; j < alpha; j++) {
                                const int iy = ty - p->pad_top + i, ix = tx - p->pad_left + j;
                                d[i][j] = iy >= 0 && iy < H && ix >= 0 && ix < W
                                              ? x[(((long)n * C + ci) * H + iy) * W + ix] : 0.0f;
                            }
                        for (int a = 0; a < alpha; a++) /* t = B^T d */
                            for (int j = 0; j < alpha; j++) {
                                float s = 0.0f;
                                for (int i = 0; i < alpha; i++) s += (m == 2 ? wg_bt2[a][i] : wg_bt4[a][i]) * d[i][j];
                                t[a][j] = s;
                            }
                        for (int a = 0; a < alpha; a++) /* acc += u .* (t B) */
                            for (int b = 0; b < alpha; b++) {
                                float s = 0.0f;
                                for (int j = 0; j < alpha; j++) s += t[a][j] * (m == 2 ? wg_bt2[b][j] : wg_bt4[b][j]);
                                acc[a][b] += u[a][b] * s;
                            }
                    }
                    for (int i = 0; i < m; i++) /* y = A^T acc A */
                        for (int j = 0; j < m; j++) {
                            if (ty + i >= oh || tx + j >= ow) continue;
                            float s = 0.0f;
                            for (int a = 0; a < alpha; a++)
                                for (int b = 0; b < alpha; b++)
                                    s += (m == 2 ? wg_at2[i][a] * wg_at2[j][b] : wg_at4[i][a] * wg_at4[j][b]) * acc[a][b];
                            y[(((long)n * K + ko) * oh + ty + i) * ow + tx + j] = s + (bias ? bias[ko] : 0.0f);
                        }
                }
}

#else /* ---- per instruction level (levels.h compiles this part once per level) ---- */

/* A WMR x WT register tile: WNV vectors of tiles times WMR broadcast channels. AVX-512 has 32 registers,
 * room for 8 x 3 accumulators; the narrower levels have 16, room for 4 x 3. WTS is a lane row of V and
 * M: WT plus one vector, into which a run's last vector may spill (the next run overwrites it). */
#undef WMR
#undef WNV
#undef WT
#undef WTS
#define WMR (VW == 16 ? 8 : 4)
#define WNV 3
#define WT (VW * WNV)
#define WTS (WT + VW)

/* 1-D input transform B^T d over alpha vectors of tiles. */
static inline __attribute__((always_inline)) void NN_L(wg_bt)(const int m, const vn *d, vn *o) {
    if (m == 2) {
        o[0] = d[0] - d[2];
        o[1] = d[1] + d[2];
        o[2] = d[2] - d[1];
        o[3] = d[1] - d[3];
    } else {
        const vn four = vnsplat(4.0f), five = vnsplat(5.0f), two = vnsplat(2.0f);
        o[0] = four * d[0] - five * d[2] + d[4];
        o[1] = (d[3] + d[4]) - four * (d[1] + d[2]);
        o[2] = four * (d[1] - d[2]) + (d[4] - d[3]);
        o[3] = two * (d[3] - d[1]) + (d[4] - d[2]);
        o[4] = two * (d[1] - d[3]) + (d[4] - d[2]);
        o[5] = four * d[1] - five * d[3] + d[5];
    }
}

/* 1-D output transform A^T s over alpha vectors. */
static inline __attribute__((always_inline)) void NN_L(wg_at)(const int m, const vn *s, vn *o) {
    if (m == 2) {
        o[0] = s[0] + s[1] + s[2];
        o[1] = s[1] - s[2] - s[3];
    } else {
        const vn a = s[1] + s[2], b = s[1] - s[2], c = s[3] + s[4], d = s[3] - s[4];
        o[0] = s[0] + a + c;
        o[1] = b + vnsplat(2.0f) * d;
        o[2] = a + vnsplat(4.0f) * c;
        o[3] = b + vnsplat(8.0f) * d + s[5];
    }
}

/* v[xi*v_xi] (VN lanes) = (B^T d B)[xi] for VN consecutive tiles of a tile row: patch element (i, j)
 * of those tiles is the vector at src + (i*m + j%m)*lanes + j/m of the phase-split copy. */
static inline __attribute__((always_inline)) void NN_L(wg_input_tf)(const int m, float *v, long v_xi, const float *src,
                                                                    int lanes) {
    const int alpha = m + 2;
    vn t[WG_ALPHA_MAX][WG_ALPHA_MAX];
    for (int j = 0; j < alpha; j++) { /* columns: t[.][j] = B^T d[.][j] */
        vn col[WG_ALPHA_MAX], o[WG_ALPHA_MAX];
        for (int i = 0; i < alpha; i++) col[i] = vnload(src + (long)(i * m + j % m) * lanes + j / m);
        NN_L(wg_bt)(m, col, o);
        for (int a = 0; a < alpha; a++) t[a][j] = o[a];
    }
    for (int a = 0; a < alpha; a++) { /* rows: (t B)[a][.] */
        vn o[WG_ALPHA_MAX];
        NN_L(wg_bt)(m, t[a], o);
        for (int b = 0; b < alpha; b++) vnstore(v + (a * alpha + b) * v_xi, o[b]);
    }
}

/* c (WMR x WT, rows WTS apart) = a (C x WMR, k-major) times b (C x WT, rows WTS apart): the alpha^2
 * GEMMs' register tile. */
static __attribute__((noinline)) void NN_L(wg_micro)(int kc, const float *a, const float *b, float *c) {
    vf acc[WMR][WNV];
    for (int r = 0; r < WMR; r++)
        for (int q = 0; q < WNV; q++) acc[r][q] = vsplat(0.0f);
    for (; kc > 0; kc--, a += WMR, b += WTS) {
        vf bv[WNV];
        for (int q = 0; q < WNV; q++) bv[q] = vload(b + q * VW);
        for (int r = 0; r < WMR; r++) {
            const vf s = vsplat(a[r]);
            for (int q = 0; q < WNV; q++) acc[r][q] += s * bv[q];
        }
    }
    for (int r = 0; r < WMR; r++)
        for (int q = 0; q < WNV; q++) vstore(c + r * WTS + q * VW, acc[r][q]);
}

/* Outputs of one channel for `cnt` (<= VN) consecutive tiles of a tile row: A^T M A of the VN lanes at
 * mk (alpha^2 sums, mk_xi floats apart) plus b0, into ob (m^2 x VN), then interleaved into the output
 * rows at out (rows ow floats apart): vh rows, cols columns. */
static inline __attribute__((always_inline)) void NN_L(wg_output_tf)(const int m, float *out, int ow, int vh, int cols,
                                                                     const float *mk, long mk_xi, float *ob, float b0) {
    const int alpha = m + 2;
    vn t[4][WG_ALPHA_MAX];
    for (int j = 0; j < alpha; j++) {
        vn col[WG_ALPHA_MAX], o[4];
        for (int i = 0; i < alpha; i++) col[i] = vnload(mk + (i * alpha + j) * mk_xi);
        NN_L(wg_at)(m, col, o);
        for (int a = 0; a < m; a++) t[a][j] = o[a];
    }
    for (int a = 0; a < m; a++) {
        vn o[4];
        NN_L(wg_at)(m, t[a], o);
        for (int b = 0; b < m; b++) vnstore(ob + (a * m + b) * VN, o[b] + vnsplat(b0));
    }
    const int whole = cols / m;
    for (int i = 0; i < vh; i++) {
        float *d = out + (long)i * ow;
        const float *o = ob + i * m * VN;
        for (int l = 0; l < whole; l++)
            for (int j = 0; j < m; j++) d[l * m + j] = o[j * VN + l];
        for (int x = whole * m; x < cols; x++) d[x] = o[(x % m) * VN + x / m];
    }
}

/* Block `blk` of WT tiles: every output channel of those tiles. */
static inline __attribute__((always_inline)) void NN_L(wg_block_m)(const int m, const wg_conv *g, long blk,
                                                                   float *scratch) {
    const int alpha = m + 2, a2 = alpha * alpha, C = g->c, K = g->k;
    const int th = (g->oh + m - 1) / m, tw = (g->ow + m - 1) / m;
    const long per_img = (long)th * tw, total = g->n * per_img, t0 = blk * WT;
    const int nt = total - t0 < WT ? (int)(total - t0) : WT;
    const long out_plane = (long)g->oh * g->ow, ph_row = (long)m * g->lanes, ph_plane = g->rows * ph_row;
    const long v_xi = (long)C * WTS, mk_xi = (long)WMR * WTS;
    float *v = scratch, *mk = v + a2 * v_xi, *ob = mk + a2 * mk_xi;
    wg_run_of_tiles runs[WT];
    int nruns = 0;
    for (int t = 0; t < nt;) {
        const long q = t0 + t;
        const int n = (int)(q / per_img), r = (int)(q % per_img), ty = r / tw, tx = r % tw;
        const int len = tw - tx < nt - t ? tw - tx : nt - t;
        runs[nruns++] = (wg_run_of_tiles){n, ty, tx, len, t};
        t += len;
    }
    for (int ci = 0; ci < C; ci++)
        for (int k = 0; k < nruns; k++) {
            const wg_run_of_tiles *ru = &runs[k];
            const float *src = g->phased + ((long)ru->n * C + ci) * ph_plane + (long)ru->ty * m * ph_row + ru->tx;
            /* The rows of a run are a few cache lines per channel, planes apart: too many short streams for
             * the hardware prefetcher, so ask for the channel after next while this one is transformed. */
            if (ci + 2 < C)
                for (int i = 0; i < alpha * m; i++) {
                    __builtin_prefetch(src + 2 * ph_plane + (long)i * g->lanes);
                    __builtin_prefetch(src + 2 * ph_plane + (long)i * g->lanes + ru->len);
                }
            for (int l = 0; l < ru->len; l += VN)
                NN_L(wg_input_tf)(m, v + (long)ci * WTS + ru->lane + l, v_xi, src + l, g->lanes);
        }
    const int blocks = (K + WMR - 1) / WMR;
    for (int kb = 0; kb < blocks; kb++) {
        for (int xi = 0; xi < a2; xi++)
            NN_L(wg_micro)(C, g->u + ((long)xi * blocks + kb) * C * WMR, v + xi * v_xi, mk + xi * mk_xi);
        const int rows = K - kb * WMR < WMR ? K - kb * WMR : WMR;
        for (int r = 0; r < rows; r++) {
            const int ko = kb * WMR + r;
            const float b0 = g->bias ? g->bias[ko] : 0.0f;
            for (int k = 0; k < nruns; k++) {
                const wg_run_of_tiles *ru = &runs[k];
                const int oy = ru->ty * m, vh = g->oh - oy < m ? g->oh - oy : m;
                for (int l = 0; l < ru->len; l += VN) {
                    const int ox = (ru->tx + l) * m, cnt = ru->len - l < VN ? ru->len - l : VN;
                    const int cols = g->ow - ox < cnt * m ? g->ow - ox : cnt * m;
                    float *out = g->out + ((long)ru->n * K + ko) * out_plane + (long)oy * g->ow + ox;
                    NN_L(wg_output_tf)(m, out, g->ow, vh, cols, mk + (long)r * WTS + ru->lane + l, mk_xi, ob, b0);
                }
            }
        }
    }
}

static __attribute__((noinline)) void NN_L(wg_block)(const wg_conv *g, long blk, float *scratch) {
    if (g->m == 2) NN_L(wg_block_m)(2, g, blk, scratch);
    else NN_L(wg_block_m)(4, g, blk, scratch);
}

/* One plane of the phase-split copy: d (rows x m x lanes) with d[yy][p][l] = s[yy - pad_top][l*m + p -
 * pad_left], zero outside s (h x w); row is scratch for one padded row (lanes*m floats). Returns 1 when
 * s holds Inf or NaN (the exponent bits all ones). The padded row is built first so the split is one
 * loop with a constant stride, which the compiler turns into vector shuffles. */
static inline __attribute__((always_inline)) int NN_L(wg_phase_plane_m)(const int m, float *d, const float *s, int h,
                                                                        int w, int pad_top, int pad_left, int rows,
                                                                        int lanes, float *row) {
    unsigned bad = 0;
    const int width = lanes * m;
    /* columns of the padded row that hold pixels: [x0, x1) */
    const int x0 = pad_left < 0 ? 0 : pad_left < width ? pad_left : width;
    const int x1 = pad_left + w < x0 ? x0 : pad_left + w > width ? width : pad_left + w;
    const int src0 = x0 - pad_left;
    for (int yy = 0; yy < rows; yy++) {
        const int iy = yy - pad_top;
        float *dr = d + (long)yy * m * lanes;
        if (iy < 0 || iy >= h) {
            memset(dr, 0, (size_t)m * lanes * sizeof(float));
            continue;
        }
        const float *sr = s + (long)iy * w + src0;
        memset(row, 0, (size_t)x0 * sizeof(float));
        for (int x = x0; x < x1; x++) {
            const float v = sr[x - x0];
            unsigned bits;
            memcpy(&bits, &v, sizeof bits);
            bad |= (bits & 0x7f800000u) == 0x7f800000u;
            row[x] = v;
        }
        memset(row + x1, 0, (size_t)(width - x1) * sizeof(float));
        for (int l = 0; l < lanes; l++)
            for (int p = 0; p < m; p++) dr[p * lanes + l] = row[l * m + p];
    }
    return bad != 0;
}

static __attribute__((noinline)) int NN_L(wg_phase_plane)(const wg_conv *g, float *d, const float *s, float *row) {
    if (g->m == 2) return NN_L(wg_phase_plane_m)(2, d, s, g->h, g->w, g->pad_top, g->pad_left, g->rows, g->lanes, row);
    return NN_L(wg_phase_plane_m)(4, d, s, g->h, g->w, g->pad_top, g->pad_left, g->rows, g->lanes, row);
}

/* The whole source into g->phased, one plane per iteration; 1 when it is all finite. Each plane's flag
 * is a float in the workspace, read in order afterwards (no shared accumulator). */
static int NN_L(wg_phase_planes)(const wg_conv *g) {
    const long planes = (long)g->n * g->c, in_plane = (long)g->h * g->w, ph_plane = (long)g->rows * g->m * g->lanes;
    float *flags = g->phased + planes * ph_plane + 16;
    WG_PARALLEL_FOR_IF(planes * ph_plane >= NN_PARALLEL_MIN)
    for (long pl = 0; pl < planes; pl++) {
#ifdef _OPENMP
        const int tid = omp_get_thread_num();
#else
        const int tid = 0;
#endif
        flags[pl] = (float)NN_L(wg_phase_plane)(g, g->phased + pl * ph_plane, g->src + pl * in_plane,
                                                g->scratch + tid * g->scratch_stride + g->row_at);
    }
    for (long pl = 0; pl < planes; pl++)
        if (flags[pl] != 0.0f) return 0;
    return 1;
}

/* Transforms the weights (w turned around and transposed when flip) into g->u and the source into its
 * phase-split copy, then runs the blocks. */
static int NN_L(wg_run)(wg_conv *g, const float *w, int flip) {
    if (!NN_L(wg_phase_planes)(g)) return 0;
    wg_pack_weights((float *)g->u, w, g->k, g->c, g->m, WMR, flip);
    const int th = (g->oh + g->m - 1) / g->m, tw = (g->ow + g->m - 1) / g->m;
    const long blocks = ((long)g->n * th * tw + WT - 1) / WT;
    const double flops = 2.0 * blocks * WT * (g->m + 2) * (g->m + 2) * g->c * g->k;
    (void)flops; /* read only by the OpenMP clause */
    WG_PARALLEL_FOR_IF(flops >= 64.0 * NN_PARALLEL_MIN)
    for (long blk = 0; blk < blocks; blk++) {
#ifdef _OPENMP
        const int tid = omp_get_thread_num();
#else
        const int tid = 0;
#endif
        NN_L(wg_block)(g, blk, g->scratch + tid * g->scratch_stride);
    }
    return 1;
}

/* ---- weight gradient (the algebra and the work split: above nn_conv2d_winograd_workspace_size) ---- */

/* Row `ch` of the chunk buffer (x's channels, then dy's at CP): every tile of the chunk, transformed. */
static __attribute__((noinline)) void NN_L(wgw_transform)(const wgw_chunk *k, int ch) {
    const long xi_stride = wgw_xi_stride(k->cp, k->kp, k->tcs), nt = k->rows * k->tw, ntp = (nt + VW - 1) / VW * VW;
    float *b = k->buf + (long)ch * k->tcs;
    const int is_x = ch < k->cp, c = is_x ? ch : ch - k->cp;
    if (c >= (is_x ? k->C : k->K)) { /* padding channel */
        for (int xi = 0; xi < 16; xi++) memset(b + xi * xi_stride, 0, (size_t)ntp * sizeof(float));
        return;
    }
    const wg_conv *g = is_x ? k->gx : k->gd;
    const long ph_row = 2L * g->lanes, ph_plane = g->rows * ph_row;
    for (long r = 0; r < k->rows; r++) {
        const long tr = k->row0 + r;
        const int n = (int)(tr / k->th), ty = (int)(tr % k->th);
        const float *src = g->phased + ((long)n * g->c + c) * ph_plane + (long)ty * 2 * ph_row;
        for (int l = 0; l < k->tw; l += VN) {
            float *v = b + r * k->tw + l;
            if (is_x) {
                NN_L(wg_input_tf)(2, v, xi_stride, src + l, g->lanes);
            } else { /* A e A^T of the 2 x 2 dy tiles: element (i, j) at phase j of row i */
                vn t[4][2];
                for (int j = 0; j < 2; j++) {
                    const vn e0 = vnload(src + (long)j * g->lanes + l), e1 = vnload(src + (long)(2 + j) * g->lanes + l);
                    t[0][j] = e0;
                    t[1][j] = e0 + e1;
                    t[2][j] = e0 - e1;
                    t[3][j] = -e1;
                }
                for (int a = 0; a < 4; a++) {
                    vnstore(v + (a * 4 + 0) * xi_stride, t[a][0]);
                    vnstore(v + (a * 4 + 1) * xi_stride, t[a][0] + t[a][1]);
                    vnstore(v + (a * 4 + 2) * xi_stride, t[a][0] - t[a][1]);
                    vnstore(v + (a * 4 + 3) * xi_stride, -t[a][1]);
                }
            }
        }
    }
    for (int xi = 0; xi < 16; xi++) /* the last row's spill, up to whole vectors for the dot products */
        for (long t = nt; t < ntp; t++) b[xi * xi_stride + t] = 0.0f;
}

/* M[xi][ob*4 .. +4][all c] += the chunk's dot products over its tiles, 4 x 4 channels at a time. */
static __attribute__((noinline)) void NN_L(wgw_gemm)(const wgw_chunk *k, int item) {
    const int blocks = k->kp / WGW_CB, xi = item / blocks, ob = item % blocks;
    const long xi_stride = wgw_xi_stride(k->cp, k->kp, k->tcs), nt = k->rows * k->tw, ntp = (nt + VW - 1) / VW * VW;
    const float *xb = k->buf + xi * xi_stride, *db = xb + ((long)k->cp + ob * WGW_CB) * k->tcs;
    float *M = k->M + ((long)xi * k->kp + ob * WGW_CB) * k->cp;
    for (int cb = 0; cb < k->cp; cb += WGW_CB) {
        vf acc[WGW_CB][WGW_CB];
        for (int r = 0; r < WGW_CB; r++)
            for (int q = 0; q < WGW_CB; q++) acc[r][q] = vsplat(0.0f);
        const float *xc = xb + (long)cb * k->tcs;
        for (long t = 0; t < ntp; t += VW) {
            vf dv[WGW_CB], xv[WGW_CB];
            for (int r = 0; r < WGW_CB; r++) dv[r] = vload(db + r * k->tcs + t);
            for (int q = 0; q < WGW_CB; q++) xv[q] = vload(xc + q * k->tcs + t);
            for (int r = 0; r < WGW_CB; r++)
                for (int q = 0; q < WGW_CB; q++) acc[r][q] += dv[r] * xv[q];
        }
        for (int r = 0; r < WGW_CB; r++)
            for (int q = 0; q < WGW_CB; q++) M[(long)r * k->cp + cb + q] += vhsum(acc[r][q]);
    }
}

static __attribute__((noinline)) void NN_L(wgw_output)(float *dw, const float *M, int o, int C, int cp, int kp) {
    wgw_output_channel(dw, M, o, C, cp, kp);
}

static int NN_L(wgw_run)(float *dw, const float *dy, const float *x, float *workspace, const nn_conv2d_params *p) {
    const wgw_space s = wgw_workspace(p);
    const int oh = nn_conv2d_out_h(p), ow = nn_conv2d_out_w(p);
    wg_conv gx = {0}, gd = {0};
    float *rows_scratch = workspace + s.phx + s.phd + s.buf + s.m;
    gx.src = x; gx.n = p->n; gx.c = p->c_in; gx.h = p->h; gx.w = p->w; gx.m = 2;
    gx.pad_top = p->pad_top; gx.pad_left = p->pad_left; gx.phased = workspace;
    gd.src = dy; gd.n = p->n; gd.c = p->c_out; gd.h = oh; gd.w = ow; gd.m = 2; gd.phased = workspace + s.phx;
    wg_phased_shape(oh, ow, 2, &gx.rows, &gx.lanes);
    wg_phased_shape(oh, ow, 2, &gd.rows, &gd.lanes);
    gx.scratch = gd.scratch = rows_scratch;
    gx.scratch_stride = gd.scratch_stride = s.row;
    if (!NN_L(wg_phase_planes)(&gx) || !NN_L(wg_phase_planes)(&gd)) return 0;
    wgw_chunk k = {&gx, &gd, p->c_in, p->c_out, s.cp, s.kp, (ow + 1) / 2, (oh + 1) / 2, s.tcs, 0, 0,
                   workspace + s.phx + s.phd, workspace + s.phx + s.phd + s.buf};
    memset(k.M, 0, (size_t)s.m * sizeof(float));
    const long total_rows = (long)p->n * k.th;
    const int channels = s.cp + s.kp, items = 16 * (s.kp / WGW_CB);
    for (k.row0 = 0; k.row0 < total_rows; k.row0 += s.rows_per_chunk) {
        k.rows = total_rows - k.row0 < s.rows_per_chunk ? total_rows - k.row0 : s.rows_per_chunk;
        const double work = (double)k.rows * k.tw * channels * 64;
        (void)work; /* read only by the OpenMP clauses */
        NN_PARALLEL_FOR_IF(work >= NN_PARALLEL_MIN)
        for (int ch = 0; ch < channels; ch++) NN_L(wgw_transform)(&k, ch);
        NN_PARALLEL_FOR_IF(work * s.cp / 4 >= NN_PARALLEL_MIN)
        for (int it = 0; it < items; it++) NN_L(wgw_gemm)(&k, it);
    }
    NN_PARALLEL_FOR_IF((long)p->c_out * p->c_in * 300 >= NN_PARALLEL_MIN)
    for (int o = 0; o < p->c_out; o++) NN_L(wgw_output)(dw, k.M, o, p->c_in, s.cp, s.kp);
    return 1;
}

#endif
