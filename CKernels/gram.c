/* Gram matrices G = F·Fᵀ and their backward (semantics in include/gram.h).
 *
 * Why not OpenBLAS: its sgemm does twice the necessary work, and its ssyrk, which does not, parallelises
 * badly when C is small and K large (a 64 x 50176 map from a 224 x 224 image is slower through ssyrk than
 * through sgemm on two threads). The kernel here is a small GEMM specialised to the symmetric case:
 *
 *   - K is cut into panels of about half an L2 cache. Each panel is packed (transposed) into strips of NR
 *     channels, strip s holding P_s[p][r] = F[s·NR + r][k0 + p] for p < kc, rows past C zero-filled. One
 *     packed panel serves both operands, since both are F.
 *   - The upper triangle of G is covered by tiles of MR rows x NR columns: strip js (columns js·NR ...)
 *     takes the row tiles that start above its last column. Tiles crossing the diagonal compute a few
 *     elements below it, which the final mirror pass overwrites.
 *   - A tile's micro-kernel keeps MR x NR sums in vector registers: per k it loads NR values of the column
 *     strip and broadcasts MR values of the row strip (an outer product), as GEMM micro-kernels do.
 *   - Panels run one after another; within a panel the threads split the tiles (schedule(static)), each
 *     tile adding its panel's sum into its own elements of G. Every element therefore sees the same
 *     additions in the same order for any thread count.
 *
 * Each parallel loop's body is one call to a per-item function (a strip, a tile, a row) that does the
 * vector work, so the file can be compiled once per instruction level. */
#include "nn_internal.h"
#include <string.h>

typedef float gram_vec __attribute__((vector_size(64)));

enum {
    VEC = (int)(sizeof(gram_vec) / sizeof(float)),  /* floats per vector */
    NV = 2,                                         /* vectors per tile row */
    NR = VEC * NV,                                  /* tile columns = packed strip width */
    MR = 8,                                         /* tile rows: MR x NV accumulators */
    PANEL_FLOATS = 128 * 1024,                      /* a packed panel's size: 512 KiB */
    MIN_PANEL = 64,
    /* Below this many multiply-adds per panel the threads are not worth forking. */
    PARALLEL_MIN_MADDS = 1 << 20,
};

static inline gram_vec load_vec(const float *p) {
    gram_vec v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void store_vec(float *p, gram_vec v) { memcpy(p, &v, sizeof v); }

static int strip_count(int c) { return (c + NR - 1) / NR; }

/* The panel length kc for these sizes: a packed panel of strip_count·NR x kc floats fills PANEL_FLOATS. */
static int panel_length(int c, int k) {
    int kc = PANEL_FLOATS / ((c > 0 ? strip_count(c) : 1) * NR);
    if (kc < MIN_PANEL) kc = MIN_PANEL;
    return kc < k ? kc : k;
}

size_t nn_gram_forward_workspace_size(int c, int k) {
    assert(c >= 0 && k >= 0);
    return (size_t)strip_count(c) * NR * (size_t)panel_length(c, k);
}

size_t nn_gram_backward_workspace_size(int c) { return (size_t)c * c; }

/* Row tiles in column strip js: those starting above the strip's last column, and inside G. */
static int strip_tiles(int js, int row_tiles) {
    int n = (js + 1) * (NR / MR);
    return n < row_tiles ? n : row_tiles;
}

/* A 16 x 16 block transposed in registers: four rounds of swapping off-diagonal sub-blocks of 8, 4, 2 and
 * 1 (rows i and i + b exchange the lanes where bit b differs). */
typedef float pack_vec __attribute__((vector_size(64)));

#define LO8 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23
#define HI8 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31
#define LO4 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27
#define HI4 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31
#define LO2 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29
#define HI2 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31
#define LO1 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30
#define HI1 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31
#define SWAP_ROUND(b, LO, HI)                                                                              \
    for (int i = 0; i < 16; i++)                                                                           \
        if (!(i & (b))) {                                                                                  \
            pack_vec x = m[i], y = m[i + (b)];                                                             \
            m[i] = __builtin_shufflevector(x, y, LO);                                                      \
            m[i + (b)] = __builtin_shufflevector(x, y, HI);                                                \
        }

static inline void transpose16(pack_vec m[16]) {
    SWAP_ROUND(8, LO8, HI8)
    SWAP_ROUND(4, LO4, HI4)
    SWAP_ROUND(2, LO2, HI2)
    SWAP_ROUND(1, LO1, HI1)
}

/* packed strip (kc, NR) = transpose of f rows [s·NR, s·NR + NR) x columns [k0, k0 + kc), zero past row c.
 * f is (C, K). Whole 16 x 16 blocks go through registers, the ragged end of the panel element by element. */
static void pack_strip(float *packed, const float *f, int c, int k, int k0, int kc, int s) {
    float *dst = packed + (size_t)s * kc * NR;
    int whole = kc / 16 * 16;
    for (int h = 0; h < NR; h += 16) {
        int row0 = s * NR + h;
        for (int p = 0; p < whole; p += 16) {
            pack_vec m[16];
            for (int r = 0; r < 16; r++) {
                if (row0 + r < c) {
                    memcpy(&m[r], f + (size_t)(row0 + r) * k + k0 + p, sizeof m[r]);
                } else {
                    m[r] = (pack_vec){0};
                }
            }
            transpose16(m);
            for (int q = 0; q < 16; q++) memcpy(dst + (size_t)(p + q) * NR + h, &m[q], sizeof m[q]);
        }
        for (int r = 0; r < 16; r++)
            for (int p = whole; p < kc; p++)
                dst[(size_t)p * NR + h + r] = row0 + r < c ? f[(size_t)(row0 + r) * k + k0 + p] : 0.0f;
    }
}

/* Tile t of the upper triangle: g (C, C) rows [i0, i0 + MR) x columns [j0, j0 + NR) gets this panel's
 * sums (= on the first panel, += after). packed holds the panel's strips, each (kc, NR). */
static void gram_tile(float *g, const float *packed, int c, int kc, int first, int row_tiles, int t) {
    int js = 0;
    while (t >= strip_tiles(js, row_tiles)) t -= strip_tiles(js++, row_tiles);
    int i0 = t * MR, j0 = js * NR;
    const float *pb = packed + (size_t)js * kc * NR;                 /* columns j0 ... j0 + NR */
    const float *pa = packed + (size_t)(i0 / NR) * kc * NR + i0 % NR; /* rows i0 ... i0 + MR */

    gram_vec acc[MR][NV];
    for (int r = 0; r < MR; r++)
        for (int v = 0; v < NV; v++) acc[r][v] = (gram_vec){0};
    for (int p = 0; p < kc; p++) {
        gram_vec b[NV];
        for (int v = 0; v < NV; v++) b[v] = load_vec(pb + (size_t)p * NR + v * VEC);
        const float *a = pa + (size_t)p * NR;
        for (int r = 0; r < MR; r++)
            for (int v = 0; v < NV; v++) acc[r][v] += a[r] * b[v];
    }

    int rows = c - i0 < MR ? c - i0 : MR, cols = c - j0 < NR ? c - j0 : NR;
    if (rows == MR && cols == NR) {
        for (int r = 0; r < MR; r++) {
            float *out = g + (size_t)(i0 + r) * c + j0;
            for (int v = 0; v < NV; v++)
                store_vec(out + v * VEC, first ? acc[r][v] : load_vec(out + v * VEC) + acc[r][v]);
        }
    } else {
        float sums[MR][NR];
        memcpy(sums, acc, sizeof sums);
        for (int r = 0; r < rows; r++) {
            float *out = g + (size_t)(i0 + r) * c + j0;
            for (int j = 0; j < cols; j++) out[j] = first ? sums[r][j] : out[j] + sums[r][j];
        }
    }
}

/* Row i of g (C, C) below the diagonal from the column above it. */
static void mirror_row(float *g, int c, int i) {
    for (int j = 0; j < i; j++) g[(size_t)i * c + j] = g[(size_t)j * c + i];
}

void nn_gram_forward(float *g, const float *f, float *workspace, int c, int k) {
    assert(c >= 0 && k >= 0 && (c == 0 || (g && f)));
    if (c == 0) return;
    if (k == 0) {
        memset(g, 0, (size_t)c * c * sizeof(float));
        return;
    }
    int strips = strip_count(c), row_tiles = (c + MR - 1) / MR, tiles = 0;
    for (int js = 0; js < strips; js++) tiles += strip_tiles(js, row_tiles);
    int kc_max = panel_length(c, k);
    for (int k0 = 0; k0 < k; k0 += kc_max) {
        int kc = k - k0 < kc_max ? k - k0 : kc_max, first = k0 == 0;
        int parallel = (long)tiles * MR * NR * kc >= PARALLEL_MIN_MADDS;
        NN_PARALLEL_FOR_IF(parallel)
        for (int s = 0; s < strips; s++) pack_strip(workspace, f, c, k, k0, kc, s);
        NN_PARALLEL_FOR_IF(parallel)
        for (int t = 0; t < tiles; t++) gram_tile(g, workspace, c, kc, first, row_tiles, t);
    }
    NN_PARALLEL_FOR_IF((long)c * c >= NN_PARALLEL_MIN)
    for (int i = 1; i < c; i++) mirror_row(g, c, i);
}

/* Row i of s (C, C) = dg + dgᵀ. */
static void symmetrise_row(float *s, const float *dg, int c, int i) {
    for (int j = 0; j < c; j++) s[(size_t)i * c + j] = dg[(size_t)i * c + j] + dg[(size_t)j * c + i];
}

void nn_gram_backward(float *df, const float *dg, const float *f, float *workspace, int c, int k) {
    assert(c >= 0 && k >= 0);
    if (c == 0 || k == 0) return;
    NN_PARALLEL_FOR_IF((long)c * c >= NN_PARALLEL_MIN)
    for (int i = 0; i < c; i++) symmetrise_row(workspace, dg, c, i);
    nn_sgemm(0, 0, c, k, c, 1.0f, workspace, c, f, k, 0.0f, df, k);
}

void nn_gram_forward_ref(float *g, const float *f, int c, int k) {
    for (int i = 0; i < c; i++)
        for (int j = 0; j < c; j++) {
            double acc = 0.0;
            for (int p = 0; p < k; p++) acc += (double)f[(size_t)i * k + p] * f[(size_t)j * k + p];
            g[(size_t)i * c + j] = (float)acc;
        }
}

void nn_gram_backward_ref(float *df, const float *dg, const float *f, int c, int k) {
    for (int i = 0; i < c; i++)
        for (int p = 0; p < k; p++) {
            double acc = 0.0;
            for (int j = 0; j < c; j++)
                acc += ((double)dg[(size_t)i * c + j] + dg[(size_t)j * c + i]) * f[(size_t)j * k + p];
            df[(size_t)i * k + p] = (float)acc;
        }
}
