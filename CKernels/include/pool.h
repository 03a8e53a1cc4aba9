/* pool kernels: max, average, adaptive average and adaptive max pooling over the spatial axes of NCHW float32
 * tensors, PyTorch's F.max_pool2d / F.avg_pool2d / F.adaptive_avg_pool2d.
 *
 * Shapes, for every strided function below:
 *   x  (N, C, H, W)      dx same shape
 *   y  (N, C, OH, OW)    dy, indices same shape
 * with OH = nn_pool_out_size(H, KH, stride_h, pad_h, ceil_mode) (likewise OW). Output row i reads the
 * window of rows [i*stride_h - pad_h, i*stride_h - pad_h + KH), clipped to the input; padding is -inf for
 * max pooling and zero for average pooling. Every window holds at least one real input element
 * (pad <= k/2 and the ceil_mode rule guarantee it).
 *
 * Max pooling: each window is scanned row by row, left to right, and a value replaces the running maximum
 * only if it is strictly greater or NaN, so among equal maxima the first in row-major order wins (with
 * several NaNs the last one is reported, as PyTorch's CPU kernel does). indices hold the flat position
 * h*W + w of the selected element within its (unpadded) input plane, as return_indices=True gives.
 *
 * Average pooling: for the window starting at h0 = i*stride_h - pad_h, count_include_pad = 1 divides by
 * (min(h0 + KH, H + pad_h) - h0) * (the same for columns): padding counts, but the part of a ceil_mode
 * window past the padding does not. count_include_pad = 0 divides by the number of real elements.
 *
 * Backward kernels WRITE dx (=); gradients of overlapping windows add up within it.
 */
#ifndef NEURON_POOL_H
#define NEURON_POOL_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int n, c, h, w;           /* input (N, C, H, W) */
    int kh, kw;               /* window, >= 1 */
    int stride_h, stride_w;   /* >= 1 (PyTorch's default stride is the window; the caller fills it in) */
    int pad_h, pad_w;         /* 0 <= pad <= k/2, added on both sides of the axis */
    int ceil_mode;            /* 1: round the output size up, see nn_pool_out_size */
    int count_include_pad;    /* average pooling only: 1 counts padding in the divisor (PyTorch's default) */
} nn_pool2d_params;

/* Output length of one pooled axis: floor((in + 2 pad - k) / stride) + 1; with ceil_mode the ceiling
 * instead, minus 1 when that last window would start at or past in + pad (inside the right padding).
 * <= 0 when the window does not fit (the caller rejects such shapes). */
int nn_pool_out_size(int in, int k, int stride, int pad, int ceil_mode);
/* OH and OW for these parameters. */
int nn_pool2d_out_h(const nn_pool2d_params *p);
int nn_pool2d_out_w(const nn_pool2d_params *p);

/* y (N, C, OH, OW) = max over each window of x (N, C, H, W); indices (N, C, OH, OW) the flat in-plane
 * position of each maximum, or null when backward will not be run. y must not alias x. */
void nn_max_pool2d_forward(float *y, int64_t *indices, const float *x, const nn_pool2d_params *p);
/* dx (N, C, H, W) is WRITTEN: zero except dy (N, C, OH, OW) scattered through the saved
 * indices (N, C, OH, OW); several outputs choosing one input add up. */
void nn_max_pool2d_backward(float *dx, const float *dy, const int64_t *indices, const nn_pool2d_params *p);

/* y (N, C, OH, OW) = average of each window of x (N, C, H, W) under p->count_include_pad. */
void nn_avg_pool2d_forward(float *y, const float *x, const nn_pool2d_params *p);
/* dx (N, C, H, W) is WRITTEN from dy (N, C, OH, OW): each input receives dy / divisor of every window
 * that covers it. */
void nn_avg_pool2d_backward(float *dx, const float *dy, const nn_pool2d_params *p);

/* Tap-by-tap loops that test every window position against the padded bounds and count divisors by
 * enumeration: the references the tests compare the kernels above against. Same buffers and contract. */
void nn_max_pool2d_forward_ref(float *y, int64_t *indices, const float *x, const nn_pool2d_params *p);
void nn_avg_pool2d_forward_ref(float *y, const float *x, const nn_pool2d_params *p);
void nn_avg_pool2d_backward_ref(float *dx, const float *dy, const nn_pool2d_params *p);

/* Adaptive average pooling, x (N, C, H, W) -> y (N, C, OH, OW) for any OH, OW >= 1: output row i averages
 * input rows [floor(i*H/OH), ceil((i+1)*H/OH)), likewise columns. OH = OW = 1 is global average pooling.
 * Backward WRITES dx (N, C, H, W) from dy (N, C, OH, OW). */
void nn_adaptive_avg_pool2d_forward(float *y, const float *x, int n, int c, int h, int w, int oh, int ow);
void nn_adaptive_avg_pool2d_backward(float *dx, const float *dy, int n, int c, int h, int w, int oh, int ow);

/* Adaptive max pooling, x (N, C, H, W) -> y (N, C, OH, OW) over the windows of adaptive average pooling
 * (PyTorch's F.adaptive_max_pool2d); indices (N, C, OH, OW) the flat in-plane position of each maximum
 * (null when backward will not run), ties and NaN as in max pooling. Backward WRITES dx (N, C, H, W):
 * zero except dy scattered through the indices. The _ref loop scans each window from its bounds. */
void nn_adaptive_max_pool2d_forward(float *y, int64_t *indices, const float *x, int n, int c, int h, int w, int oh, int ow);
void nn_adaptive_max_pool2d_backward(float *dx, const float *dy, const int64_t *indices, int n, int c, int h, int w,
                                     int oh, int ow);
void nn_adaptive_max_pool2d_forward_ref(float *y, int64_t *indices, const float *x, int n, int c, int h, int w,
                                        int oh, int ow);

#ifdef __cplusplus
}
#endif
#endif
