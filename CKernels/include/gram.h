/* gram kernels: the Gram matrix of a feature map, G = F·Fᵀ, and its backward, as used by the style cost
 * of neural style transfer (PyTorch: `f = x.view(C, -1); f @ f.T`).
 *
 * Shapes: F (C, K) row-major, K = H·W for a (C, H, W) feature map; G (C, C).
 *
 * The forward pass is a symmetric rank-K update: it computes blocks of the upper triangle only (about half
 * the multiply-adds of a general product) and mirrors them into the lower triangle, so G is exactly
 * symmetric. K is cut into cache-sized panels that are packed once and shared by every thread; each thread
 * owns whole output tiles, and every element is summed in the same order whatever the thread count, so G is
 * bit-identical for any number of threads.
 *
 * The backward pass WRITES dF = (dG + dGᵀ)·F (F is an input, not a parameter).
 */
#ifndef NEURON_GRAM_H
#define NEURON_GRAM_H
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Floats of caller-owned scratch that nn_gram_forward needs for these sizes (the packed K-panel). */
size_t nn_gram_forward_workspace_size(int c, int k);

/* g (C, C) = f (C, K) · fᵀ, WRITTEN. workspace holds nn_gram_forward_workspace_size(c, k) floats.
 * K = 0 gives zeros; C = 0 does nothing. g must not alias f. */
void nn_gram_forward(float *g, const float *f, float *workspace, int c, int k);

/* Floats of caller-owned scratch that nn_gram_backward needs (the symmetrised dG, C·C). */
size_t nn_gram_backward_workspace_size(int c);

/* df (C, K) = (dg + dgᵀ) · f, WRITTEN, from dg (C, C) and f (C, K); through OpenBLAS, so it agrees with
 * the reference to float rounding. workspace holds nn_gram_backward_workspace_size(c) floats. */
void nn_gram_backward(float *df, const float *dg, const float *f, float *workspace, int c, int k);

/* Plain loops with double accumulation, every element of G summed on its own: the references the tests
 * compare the kernels above against. Same buffers, no workspace. */
void nn_gram_forward_ref(float *g, const float *f, int c, int k);
void nn_gram_backward_ref(float *df, const float *dg, const float *f, int c, int k);

#ifdef __cplusplus
}
#endif
#endif
