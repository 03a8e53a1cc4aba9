/* Inverted dropout (semantics in include/dropout.h). The random stream is counter-based rather than
 * sequential: element i's draw hashes (seed, i), so any thread can produce any element's draw without
 * knowing how many came before, and the mask cannot depend on the thread count. */
#include "nn_internal.h"
#include <math.h>

#define GOLDEN_GAMMA 0x9E3779B97F4A7C15ull

/* SplitMix64's finaliser: a bijection on 64 bits whose outputs for consecutive inputs pass BigCrush. */
static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* y, mask, x are [n]. */
void nn_dropout_forward(float *y, float *mask, const float *x, float p, uint64_t seed, size_t n) {
    assert(y && x && p >= 0.0f && p <= 1.0f);
    /* Keep when the top 53 bits of the draw, a uniform integer in [0, 2^53), reach p * 2^53: probability
     * 1 - p up to 2^-53, exactly 1 for p = 0 and exactly 0 for p = 1. */
    uint64_t threshold = (uint64_t)ceil((double)p * 9007199254740992.0);
    float keep = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    /* Mixing the seed first decorrelates neighbouring seeds: without it seed s + GOLDEN_GAMMA would replay
     * seed s's stream shifted by one element. */
    uint64_t key = mix64(seed);
    NN_PARALLEL_FOR_IF(n >= NN_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) {
        float m = (mix64(key + (i + 1) * GOLDEN_GAMMA) >> 11) >= threshold ? keep : 0.0f;
        if (mask) mask[i] = m;
        y[i] = x[i] * m;
    }
}

/* dx, dy, mask are [n]. */
void nn_dropout_backward(float *dx, const float *dy, const float *mask, size_t n) {
    assert(dx && dy && mask);
    NN_PARALLEL_FOR_IF(n >= NN_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) dx[i] = dy[i] * mask[i];
}
