/* dropout kernels: inverted dropout, PyTorch's nn.Dropout in training mode (eval mode is the identity and
 * needs no kernel).
 *
 * Each element is kept with probability 1 - p and scaled by 1 / (1 - p), so the expectation is unchanged.
 * The keep decision of element i is a pure function of (seed, i) (a counter-based SplitMix64 hash), so the
 * mask is identical for any thread count and any split of the loop; the caller advances the seed per call.
 * The masks are Neuron's own: they do not reproduce PyTorch's random stream.
 */
#ifndef NEURON_DROPOUT_H
#define NEURON_DROPOUT_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* y, mask, x are [n]; 0 <= p <= 1. mask[i] = 1/(1 - p) for a kept element and 0 for a dropped one, and
 * y[i] = x[i] * mask[i] (so a dropped NaN stays NaN, as in PyTorch). p = 0 keeps everything (mask 1);
 * p = 1 drops everything (mask 0). mask may be null when backward will not run; y may alias x. */
void nn_dropout_forward(float *y, float *mask, const float *x, float p, uint64_t seed, size_t n);

/* dx, dy, mask are [n]: dx = dy * mask, WRITTEN. dx may alias dy. */
void nn_dropout_backward(float *dx, const float *dy, const float *mask, size_t n);

#ifdef __cplusplus
}
#endif
#endif
