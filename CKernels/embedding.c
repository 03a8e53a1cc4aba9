/* Embedding lookup and its scatter-add gradient (semantics in include/embedding.h). */
#include "nn_internal.h"
#include <string.h>

/* Columns per tile of the gradient: one 64-byte cache line, so two threads never write the same line. */
#define EMB_COLUMNS 16

/* y is (n, dim), weight is (num, dim); copies one output row. */
static void embedding_row(float *y, const float *weight, int64_t index, size_t dim) {
    memcpy(y, weight + (size_t)index * dim, dim * sizeof(float));
}

/* y is (n, dim), weight is (num, dim), indices is (n). */
void nn_embedding_forward(float *y, const float *weight, const int64_t *indices, size_t n, size_t num, size_t dim) {
    assert(n == 0 || (y && weight && indices));
    (void)num;
    NN_PARALLEL_FOR_IF(n * dim >= NN_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) embedding_row(y + i * dim, weight, indices[i], dim);
}

/* The tile of dweight (num, dim) with rows [r0, r1) and columns [c0, c1): adds dy (n, dim) row i's
 * columns to row indices[i] for every i in ascending order whose index falls in [r0, r1). */
static void embedding_backward_tile(float *dweight, const float *dy, const int64_t *indices, int64_t padding_idx,
                                    size_t n, size_t dim, int64_t r0, int64_t r1, size_t c0, size_t c1) {
    for (size_t i = 0; i < n; i++) {
        int64_t r = indices[i];
        if (r < r0 || r >= r1 || r == padding_idx) continue;
        float *dst = dweight + (size_t)r * dim;
        const float *src = dy + i * dim;
        for (size_t c = c0; c < c1; c++) dst[c] += src[c];
    }
}

/* dweight is (num, dim), dy is (n, dim), indices is (n). */
void nn_embedding_backward(float *dweight, const float *dy, const int64_t *indices, int64_t padding_idx,
                           size_t n, size_t num, size_t dim) {
    assert(n == 0 || (dweight && dy && indices));
    if (n == 0 || num == 0 || dim == 0) return;
    size_t column_blocks = (dim + EMB_COLUMNS - 1) / EMB_COLUMNS;
    /* Enough tiles for every thread; row blocks only when the columns alone are too few. Each tile
     * rescans all n indices, so row blocks stay as few as the threads need. */
    size_t threads = (size_t)nn_threads();
    size_t row_blocks = column_blocks >= 2 * threads ? 1 : (2 * threads + column_blocks - 1) / column_blocks;
    if (row_blocks > num) row_blocks = num;
    size_t rows_per_block = (num + row_blocks - 1) / row_blocks;
    size_t tiles = column_blocks * row_blocks;
    NN_PARALLEL_FOR_IF(n * dim >= NN_PARALLEL_MIN / 4 && tiles > 1)
    for (size_t t = 0; t < tiles; t++) {
        size_t rb = t / column_blocks, cb = t % column_blocks;
        size_t c0 = cb * EMB_COLUMNS, c1 = c0 + EMB_COLUMNS < dim ? c0 + EMB_COLUMNS : dim;
        size_t r0 = rb * rows_per_block, r1 = r0 + rows_per_block < num ? r0 + rows_per_block : num;
        embedding_backward_tile(dweight, dy, indices, padding_idx, n, dim, (int64_t)r0, (int64_t)r1, c0, c1);
    }
}

/* dweight is (num, dim), dy is (n, dim), indices is (n). */
void nn_embedding_backward_ref(float *dweight, const float *dy, const int64_t *indices, int64_t padding_idx,
                               size_t n, size_t num, size_t dim) {
    (void)num;
    for (size_t i = 0; i < n; i++) {
        if (indices[i] == padding_idx) continue;
        for (size_t c = 0; c < dim; c++) dweight[(size_t)indices[i] * dim + c] += dy[i * dim + c];
    }
}
