/* Embedding: the lookup, the scatter-add gradient against the serial reference (repeated indices,
 * padding index, a gradient that accumulates), and bit-identical results for 1, 2 and 3 threads. */
#include "ctest.h"

static void test_forward(void) {
    float w[4 * 3], y[5 * 3];
    ctest_fill(w, 12, -1, 1);
    int64_t idx[5] = {3, 0, 3, 1, 2};
    nn_embedding_forward(y, w, idx, 5, 4, 3);
    int ok = 1;
    for (int i = 0; i < 5; i++)
        for (int c = 0; c < 3; c++) ok &= y[i * 3 + c] == w[idx[i] * 3 + c];
    CHECK(ok);
}

/* Compares the tiled kernel with the reference for one shape, on several thread counts. */
static void check_backward(size_t n, size_t num, size_t dim, int64_t padding) {
    float *dy = malloc((n * dim + 1) * 4), *ref = malloc((num * dim + 1) * 4), *got = malloc((num * dim + 1) * 4);
    float *first = malloc((num * dim + 1) * 4);
    int64_t *idx = malloc((n + 1) * 8);
    ctest_fill(dy, n * dim, -1, 1);
    /* Skewed indices, as in text: low rows repeat far more often than high ones. */
    for (size_t i = 0; i < n; i++) {
        float u = ctest_uniform(0, 1);
        idx[i] = (int64_t)(u * u * (float)num);
        if (idx[i] >= (int64_t)num) idx[i] = (int64_t)num - 1;
    }
    ctest_fill(ref, num * dim, -1, 1);
    memcpy(first, ref, num * dim * 4);
    nn_embedding_backward_ref(ref, dy, idx, padding, n, num, dim);
    const int threads[] = {1, 2, 3};
    for (int k = 0; k < 3; k++) {
        nn_set_num_threads(threads[k]);
        memcpy(got, first, num * dim * 4);
        nn_embedding_backward(got, dy, idx, padding, n, num, dim);
        /* Both sum each element over positions in ascending order onto the same start: bit-identical. */
        ctest_equal_bits("embedding backward vs reference", got, ref, num * dim);
    }
    nn_set_num_threads(0);
    if (padding >= 0 && (size_t)padding < num) CHECK(memcmp(ref + padding * dim, first + padding * dim, dim * 4) == 0);
    free(dy); free(ref); free(got); free(first); free(idx);
}

static void test_backward(void) {
    check_backward(7, 4, 3, -1);
    check_backward(7, 4, 3, 0);
    check_backward(3200, 65, 64, -1);       /* the char-LM benchmark's shape */
    check_backward(5000, 1000, 40, 7);      /* a word vocabulary: row blocks as well as column blocks */
    check_backward(4000, 3, 1, -1);         /* one column: the row blocks carry the parallelism */
    check_backward(0, 5, 4, -1);
}

int main(void) {
    test_forward();
    test_backward();
    return ctest_finish("test_embedding");
}
