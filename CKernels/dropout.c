/* Inverted dropout (semantics in include/dropout.h). The random stream is counter-based rather than
 * sequential: element i's draw hashes (seed, i), so any thread can produce any element's draw without
 * knowing how many came before, and the mask cannot depend on the thread count. Built per instruction
 * level (CKernels/README.md): the AVX-512 level's 64-bit multiplies vectorise the hash. */
#ifndef NN_LEVEL /* ---- common to every level ---- */
#include "nn_internal.h"
#include <math.h>

#define GOLDEN_GAMMA 0x9E3779B97F4A7C15ull

/* SplitMix64's finaliser: a bijection on 64 bits whose outputs for consecutive inputs pass BigCrush. */
static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Elements per parallel item. */
#define CHUNK 4096

static inline size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

#define NN_LEVEL_SOURCE "dropout.c"
#include "levels.h"

/* y, mask, x are [n]. */
void nn_dropout_forward(float *y, float *mask, const float *x, float p, uint64_t seed, size_t n) {
    assert(y && x && p >= 0.0f && p <= 1.0f);
    /* Keep when the top 53 bits of the draw, a uniform integer in [0, 2^53), reach p * 2^53: probability
     * 1 - p up to 2^-53, exactly 1 for p = 0 and exactly 0 for p = 1. */
    uint64_t threshold = (uint64_t)ceil((double)p * 9007199254740992.0);
    float keep = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    /* Mixing the seed first decorrelates neighbouring seeds: without it seed s + GOLDEN_GAMMA would replay
     * seed s's stream shifted by one element. */
    NN_DISPATCH(dropout_forward)(y, mask, x, threshold, keep, mix64(seed), n);
}

/* dx, dy, mask are [n]. */
void nn_dropout_backward(float *dx, const float *dy, const float *mask, size_t n) {
    assert(dx && dy && mask);
    NN_DISPATCH(dropout_backward)(dx, dy, mask, n);
}

#else /* ---- per instruction level (levels.h compiles this part once per level) ---- */

/* Elements [i0, i0 + n) of y, mask (may be null), x: element i keeps when its draw reaches threshold. */
static void NN_L(dropout_chunk)(float *y, float *mask, const float *x, uint64_t threshold, float keep,
                                uint64_t key, size_t i0, size_t n) {
    for (size_t i = i0; i < i0 + n; i++) {
        float m = (mix64(key + (i + 1) * GOLDEN_GAMMA) >> 11) >= threshold ? keep : 0.0f;
        if (mask) mask[i] = m;
        y[i] = x[i] * m;
    }
}

static void NN_L(dropout_forward)(float *y, float *mask, const float *x, uint64_t threshold, float keep,
                                  uint64_t key, size_t n) {
    const size_t items = (n + CHUNK - 1) / CHUNK;
    NN_PARALLEL_FOR_IF(n >= NN_PARALLEL_MIN)
    for (size_t it = 0; it < items; it++)
        NN_L(dropout_chunk)(y, mask, x, threshold, keep, key, it * CHUNK, min_size(CHUNK, n - it * CHUNK));
}

static void NN_L(dropout_backward_chunk)(float *dx, const float *dy, const float *mask, size_t n) {
    for (size_t i = 0; i < n; i++) dx[i] = dy[i] * mask[i];
}

static void NN_L(dropout_backward)(float *dx, const float *dy, const float *mask, size_t n) {
    const size_t items = (n + CHUNK - 1) / CHUNK;
    NN_PARALLEL_FOR_IF(n >= NN_PARALLEL_MIN)
    for (size_t it = 0; it < items; it++)
        NN_L(dropout_backward_chunk)(dx + it * CHUNK, dy + it * CHUNK, mask + it * CHUNK,
                                     min_size(CHUNK, n - it * CHUNK));
}

#endif
