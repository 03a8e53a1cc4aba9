/* Gram matrices G = F·Fᵀ and their backward (semantics in include/gram.h).
 *
 * Why not OpenBLAS: its sgemm does twice the necessary work, and its ssyrk, which does not, parallelises
 * badly when C is small and K large (a 64 x 50176 map from a 224 x 224 image is slower through ssyrk than
 * through sgemm on two threads). The kernel here is a small GEMM specialised to the symmetric case:
 *
 *   - K is cut into panels of about half an L2 cache. Each panel is packed (transposed, VW x VW blocks in
 *     registers) into strips of NR channels, strip s holding P_s[p][r] = F[s·NR + r][k0 + p] for p < kc,
 *     rows past C zero-filled. One packed panel serves both operands, since both are F.
 *   - The upper triangle of G is covered by tiles of MR rows x NR columns: strip js (columns js·NR ...)
 *     takes the row tiles that start above its last column. Tiles crossing the diagonal compute a few
 *     elements below it, which the final mirror pass overwrites.
 *   - A tile's microkernel keeps MR x NR sums in vector registers: per k it loads NR values of the column
 *     strip and broadcasts MR values of the row strip (an outer product), as GEMM microkernels do.
 *   - Panels run one after another; within a panel the threads split the tiles (schedule(static)), each
 *     tile adding its panel's sum into its own elements of G. Every element therefore sees the same
 *     additions in the same order for any thread count.
 *
 * Built per instruction level (CKernels/README.md): 8 x 2 vectors of accumulators at AVX-512 (32
 * registers), 4 x 3 below it (16 registers), so NR is 32 at AVX-512, 24 at AVX2 and 12 at baseline. Each
 * parallel loop's body is one per-level call (a strip, a tile). The backward pass is a symmetrisation and
 * one OpenBLAS product. */
#ifndef NN_LEVEL /* ---- common to every level ---- */
#include "nn_internal.h"
#include <string.h>

enum {
    PANEL_FLOATS = 128 * 1024, /* a packed panel's size: 512 KiB, half of Zen 4's and Skylake-SP's L2 */
    MIN_PANEL = 64,
    /* Below this many multiply-adds per panel the threads are not worth forking. */
    PARALLEL_MIN_MADDS = 1 << 20,
};

/* Strip width NR of each level (baseline, AVX2, AVX-512): VW x NV of the per-level part. */
static const int level_nr[] = {12, 24, 32};

static int strip_count(int c, int nr) { return (c + nr - 1) / nr; }

/* The panel length kc at strip width nr: a packed panel of strip_count·nr x kc floats fills PANEL_FLOATS. */
static int panel_length(int c, int k, int nr) {
    int kc = PANEL_FLOATS / ((c > 0 ? strip_count(c, nr) : 1) * nr);
    if (kc < MIN_PANEL) kc = MIN_PANEL;
    return kc < k ? kc : k;
}

/* Enough for the panel of any level, so a workspace sized once serves whichever level runs. */
size_t nn_gram_forward_workspace_size(int c, int k) {
    assert(c >= 0 && k >= 0);
    size_t most = 0;
    for (int l = 0; l < 3; l++) {
        size_t n = (size_t)strip_count(c, level_nr[l]) * level_nr[l] * (size_t)panel_length(c, k, level_nr[l]);
        if (n > most) most = n;
    }
    return most;
}

size_t nn_gram_backward_workspace_size(int c) { return (size_t)c * c; }

/* Row tiles in column strip js: those starting above the strip's last column, and inside G. */
static int strip_tiles(int js, int row_tiles, int tiles_per_strip) {
    int n = (js + 1) * tiles_per_strip;
    return n < row_tiles ? n : row_tiles;
}

/* Row i of g (C, C) below the diagonal from the column above it. */
static void mirror_row(float *g, int c, int i) {
    for (int j = 0; j < i; j++) g[(size_t)i * c + j] = g[(size_t)j * c + i];
}

/* Row i of s (C, C) = dg + dgᵀ. */
static void symmetrise_row(float *s, const float *dg, int c, int i) {
    for (int j = 0; j < c; j++) s[(size_t)i * c + j] = dg[(size_t)i * c + j] + dg[(size_t)j * c + i];
}

#define NN_LEVEL_SOURCE "gram.c"
#include "levels.h"

/* g (C, C) = f (C, K) · fᵀ; workspace: nn_gram_forward_workspace_size(c, k) floats. */
void nn_gram_forward(float *g, const float *f, float *workspace, int c, int k) {
    assert(c >= 0 && k >= 0 && (c == 0 || (g && f)));
    if (c == 0) return;
    if (k == 0) {
        memset(g, 0, (size_t)c * c * sizeof(float));
        return;
    }
    NN_DISPATCH(forward)(g, f, workspace, c, k);
    NN_PARALLEL_FOR_IF((long)c * c >= NN_PARALLEL_MIN)
    for (int i = 1; i < c; i++) mirror_row(g, c, i);
}

/* df (C, K) = (dg + dgᵀ) · f from dg (C, C) and f (C, K); workspace: nn_gram_backward_workspace_size(c) floats. */
void nn_gram_backward(float *df, const float *dg, const float *f, float *workspace, int c, int k) {
    assert(c >= 0 && k >= 0);
    if (c == 0 || k == 0) return;
    NN_PARALLEL_FOR_IF((long)c * c >= NN_PARALLEL_MIN)
    for (int i = 0; i < c; i++) symmetrise_row(workspace, dg, c, i);
    nn_sgemm(0, 0, c, k, c, 1.0f, workspace, c, f, k, 0.0f, df, k);
}

/* Same buffers as nn_gram_forward, no workspace. */
void nn_gram_forward_ref(float *g, const float *f, int c, int k) {
    for (int i = 0; i < c; i++)
        for (int j = 0; j < c; j++) {
            double acc = 0.0;
            for (int p = 0; p < k; p++) acc += (double)f[(size_t)i * k + p] * f[(size_t)j * k + p];
            g[(size_t)i * c + j] = (float)acc;
        }
}

/* Same buffers as nn_gram_backward, no workspace. */
void nn_gram_backward_ref(float *df, const float *dg, const float *f, int c, int k) {
    for (int i = 0; i < c; i++)
        for (int p = 0; p < k; p++) {
            double acc = 0.0;
            for (int j = 0; j < c; j++)
                acc += ((double)dg[(size_t)i * c + j] + dg[(size_t)j * c + i]) * f[(size_t)j * k + p];
            df[(size_t)i * k + p] = (float)acc;
        }
}

#else /* ---- per instruction level (levels.h compiles this part once per level) ---- */

#undef GMR
#undef GNV
#if VW == 16
#define GMR 8 /* tile rows: GMR x GNV accumulators */
#define GNV 2 /* vectors per tile row */
#else
#define GMR 4
#define GNV 3
#endif
#undef GNR
#define GNR (VW * GNV) /* tile columns = packed strip width; level_nr[] in the common part must agree */

/* One round of a VW x VW transpose in registers: rows i and i + b (bit b of i clear) exchange the lanes
 * whose bit b differs. Rounds b = VW/2, ..., 1 transpose the block. */
#if VW == 16
#define LO_8 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23
#define HI_8 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31
#define LO_4 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27
#define HI_4 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31
#define LO_2 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29
#define HI_2 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31
#define LO_1 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30
#define HI_1 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31
#elif VW == 8
#define LO_4 0, 1, 2, 3, 8, 9, 10, 11
#define HI_4 4, 5, 6, 7, 12, 13, 14, 15
#define LO_2 0, 1, 8, 9, 4, 5, 12, 13
#define HI_2 2, 3, 10, 11, 6, 7, 14, 15
#define LO_1 0, 8, 2, 10, 4, 12, 6, 14
#define HI_1 1, 9, 3, 11, 5, 13, 7, 15
#else
#define LO_2 0, 1, 4, 5
#define HI_2 2, 3, 6, 7
#define LO_1 0, 4, 2, 6
#define HI_1 1, 5, 3, 7
#endif
#define SWAP_ROUND(b, LO, HI)                                                                              \
    for (int i = 0; i < VW; i++)                                                                           \
        if (!(i & (b))) {                                                                                  \
            vf x = m[i], y = m[i + (b)];                                                                   \
            m[i] = __builtin_shufflevector(x, y, LO);                                                      \
            m[i + (b)] = __builtin_shufflevector(x, y, HI);                                                \
        }

static inline void NN_L(transpose)(vf m[VW]) {
#if VW == 16
    SWAP_ROUND(8, LO_8, HI_8)
#endif
#if VW >= 8
    SWAP_ROUND(4, LO_4, HI_4)
#endif
    SWAP_ROUND(2, LO_2, HI_2)
    SWAP_ROUND(1, LO_1, HI_1)
}
#undef SWAP_ROUND
#undef LO_8
#undef HI_8
#undef LO_4
#undef HI_4
#undef LO_2
#undef HI_2
#undef LO_1
#undef HI_1

/* packed strip (kc, GNR) = transpose of f rows [s·GNR, s·GNR + GNR) x columns [k0, k0 + kc), zero past row c.
 * f is (C, K). Whole VW x VW blocks go through registers, the ragged end of the panel element by element. */
static void NN_L(pack_strip)(float *packed, const float *f, int c, int k, int k0, int kc, int s) {
    float *dst = packed + (size_t)s * kc * GNR;
    const int whole = kc / VW * VW;
    for (int h = 0; h < GNR; h += VW) {
        const int row0 = s * GNR + h;
        for (int p = 0; p < whole; p += VW) {
            vf m[VW];
            for (int r = 0; r < VW; r++) m[r] = row0 + r < c ? vload(f + (size_t)(row0 + r) * k + k0 + p) : vsplat(0.0f);
            NN_L(transpose)(m);
            for (int q = 0; q < VW; q++) vstore(dst + (size_t)(p + q) * GNR + h, m[q]);
        }
        for (int r = 0; r < VW; r++)
            for (int p = whole; p < kc; p++)
                dst[(size_t)p * GNR + h + r] = row0 + r < c ? f[(size_t)(row0 + r) * k + k0 + p] : 0.0f;
    }
}

/* c (GMR, GNR), rows ldc apart, (+)= sum over p < kc of pa[p·GNR + r] · pb[p·GNR + 0 ..< GNR]: rows of the
 * row strip broadcast against the column strip. `more` adds to c instead of overwriting it. Kept out of
 * line so its GMR x GNV accumulators get the whole register file. */
static __attribute__((noinline)) void NN_L(micro)(float *c, long ldc, const float *pa, const float *pb, int kc, int more) {
    vf acc[GMR][GNV];
    for (int r = 0; r < GMR; r++)
        for (int v = 0; v < GNV; v++) acc[r][v] = more ? vload(c + r * ldc + v * VW) : vsplat(0.0f);
    for (int p = 0; p < kc; p++, pa += GNR, pb += GNR) {
        vf b[GNV];
        for (int v = 0; v < GNV; v++) b[v] = vload(pb + v * VW);
        for (int r = 0; r < GMR; r++) {
            const vf a = vsplat(pa[r]);
            for (int v = 0; v < GNV; v++) acc[r][v] += a * b[v];
        }
    }
    for (int r = 0; r < GMR; r++)
        for (int v = 0; v < GNV; v++) vstore(c + r * ldc + v * VW, acc[r][v]);
}

/* Tile t of the upper triangle: g (C, C) rows [i0, i0 + GMR) x columns [j0, j0 + GNR) gets this panel's
 * sums (= on the first panel, += after). packed holds the panel's strips, each (kc, GNR). */
static void NN_L(tile)(float *g, const float *packed, int c, int kc, int first, int row_tiles, int t) {
    int js = 0;
    while (t >= strip_tiles(js, row_tiles, GNR / GMR)) t -= strip_tiles(js++, row_tiles, GNR / GMR);
    const int i0 = t * GMR, j0 = js * GNR;
    const float *pb = packed + (size_t)js * kc * GNR;                  /* columns j0 ... j0 + GNR */
    const float *pa = packed + (size_t)(i0 / GNR) * kc * GNR + i0 % GNR; /* rows i0 ... i0 + GMR */
    const int rows = c - i0 < GMR ? c - i0 : GMR, cols = c - j0 < GNR ? c - j0 : GNR;
    if (rows == GMR && cols == GNR) {
        NN_L(micro)(g + (size_t)i0 * c + j0, c, pa, pb, kc, !first);
        return;
    }
    float sums[GMR * GNR];
    NN_L(micro)(sums, GNR, pa, pb, kc, 0);
    for (int r = 0; r < rows; r++) {
        float *out = g + (size_t)(i0 + r) * c + j0;
        for (int j = 0; j < cols; j++) out[j] = first ? sums[r * GNR + j] : out[j] + sums[r * GNR + j];
    }
}

/* The upper triangle of g (C, C), panel by panel (k >= 1, c >= 1); the caller mirrors it. */
static void NN_L(forward)(float *g, const float *f, float *workspace, int c, int k) {
    assert(GNR == level_nr[NN_LEVEL]);
    const int strips = strip_count(c, GNR), row_tiles = (c + GMR - 1) / GMR;
    int tiles = 0;
    for (int js = 0; js < strips; js++) tiles += strip_tiles(js, row_tiles, GNR / GMR);
    const int kc_max = panel_length(c, k, GNR);
    for (int k0 = 0; k0 < k; k0 += kc_max) {
        const int kc = k - k0 < kc_max ? k - k0 : kc_max, first = k0 == 0;
        const int parallel = (long)tiles * GMR * GNR * kc >= PARALLEL_MIN_MADDS;
        NN_PARALLEL_FOR_IF(parallel)
        for (int s = 0; s < strips; s++) NN_L(pack_strip)(workspace, f, c, k, k0, kc, s);
        NN_PARALLEL_FOR_IF(parallel)
        for (int t = 0; t < tiles; t++) NN_L(tile)(g, workspace, c, kc, first, row_tiles, t);
    }
}

#endif
