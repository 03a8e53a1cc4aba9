/* embedding kernels: the row lookup of PyTorch's nn.Embedding and its gradient.
 *
 * weight is (num, dim); indices are int64 in [0, num), validated by the caller. The backward pass is a
 * scatter-add (several positions may name the same row); it is made race-free without atomics by giving
 * each thread whole output elements: the work is cut into (column block, row block) tiles of dweight,
 * and the thread owning a tile scans every index and adds the rows that fall in its block. Each element
 * of dweight is therefore summed over positions in ascending order whatever the split, so the result is
 * bit-identical for any thread count.
 */
#ifndef NEURON_EMBEDDING_H
#define NEURON_EMBEDDING_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* y is (n, dim), weight is (num, dim), indices is (n): y[i] = weight[indices[i]]. */
void nn_embedding_forward(float *y, const float *weight, const int64_t *indices, size_t n, size_t num, size_t dim);

/* dweight is (num, dim), dy is (n, dim), indices is (n): dweight[indices[i]] += dy[i] for every i whose
 * index is not padding_idx (pass a negative padding_idx for none). ACCUMULATES into dweight. */
void nn_embedding_backward(float *dweight, const float *dy, const int64_t *indices, int64_t padding_idx,
                           size_t n, size_t num, size_t dim);

/* The plain serial loop the tests compare nn_embedding_backward against. */
void nn_embedding_backward_ref(float *dweight, const float *dy, const int64_t *indices, int64_t padding_idx,
                               size_t n, size_t num, size_t dim);

#ifdef __cplusplus
}
#endif
#endif
