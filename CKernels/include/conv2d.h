/* conv2d kernels: 2-D cross-correlation (no kernel flip) on NCHW float32, PyTorch's nn.Conv2d.
 *
 * Shapes, for every function below:
 *   x  (N, C_in, H, W)                 dx same shape
 *   w  (C_out, C_in/groups, KH, KW)    dw same shape
 *   b  (C_out)                         db same shape
 *   y  (N, C_out, OH, OW)              dy same shape
 * with OH = floor((H + pad_top + pad_bottom - dil_h*(KH-1) - 1) / stride_h) + 1 (likewise OW).
 * y[n, o, oy, ox] = b[o] + sum over c in group(o), i < KH, j < KW of
 *     w[o, c - group_start, i, j] * x[n, c, oy*stride_h - pad_top + i*dil_h, ox*stride_w - pad_left + j*dil_w]
 * where positions outside the image read zero. Group g owns input channels [g*C_in/groups, (g+1)*C_in/groups)
 * and output channels [g*C_out/groups, (g+1)*C_out/groups); groups == C_in == C_out is depthwise.
 * Input positions that no window reaches (the floor dropped a remainder) get zero gradient.
 */
#ifndef NEURON_CONV2D_H
#define NEURON_CONV2D_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int n, c_in, h, w;                              /* input (N, C_in, H, W) */
    int c_out, kh, kw;                              /* weight (C_out, C_in/groups, KH, KW) */
    int stride_h, stride_w;                         /* >= 1 */
    int pad_top, pad_bottom, pad_left, pad_right;   /* >= 0, zero padding */
    int dil_h, dil_w;                               /* >= 1 */
    int groups;                                     /* >= 1, divides C_in and C_out */
} nn_conv2d_params;

/* Output height OH and width OW; <= 0 when the kernel does not fit (the caller rejects such shapes). */
int nn_conv2d_out_h(const nn_conv2d_params *p);
int nn_conv2d_out_w(const nn_conv2d_params *p);

/* Floats of caller-owned scratch that nn_conv2d_forward and nn_conv2d_backward need for these
 * parameters (0 when none: the workspace pointer may then be null). One size serves both. It grows with
 * N: stride-1 convolutions keep zero-padded copies of x and dy for the whole batch (about the size of x
 * plus the size of dy), other strides one image's im2col matrix (C_in*KH*KW x OH*OW). */
size_t nn_conv2d_workspace_size(const nn_conv2d_params *p);

/* y (N, C_out, OH, OW) = conv(x (N, C_in, H, W), w (C_out, C_in/groups, KH, KW)) + bias (C_out);
 * bias may be null. workspace holds nn_conv2d_workspace_size(p) floats. y must not alias x. */
void nn_conv2d_forward(float *y, const float *x, const float *w, const float *bias, float *workspace,
                       const nn_conv2d_params *p);

/* From dy (N, C_out, OH, OW), the saved input x (N, C_in, H, W) and w (C_out, C_in/groups, KH, KW):
 *   dx (N, C_in, H, W) is WRITTEN (=);
 *   dw (C_out, C_in/groups, KH, KW) and db (C_out) ACCUMULATE (+=).
 * Each of dx, dw, db may be null to skip it; x may be null when dw is, w when dx is. workspace holds
 * nn_conv2d_workspace_size(p) floats. Where x holds Inf or NaN, dw may get NaN in more entries than
 * PyTorch's (stride-1 kernels multiply some pixels outside a tap's window by an exact zero). */
void nn_conv2d_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                        float *workspace, const nn_conv2d_params *p);

/* Direct loops in double, one output element at a time: the references the tests compare against.
 * Same buffers and contract as above (dx written, dw and db accumulated); no workspace. */
void nn_conv2d_forward_ref(float *y, const float *x, const float *w, const float *bias, const nn_conv2d_params *p);
void nn_conv2d_backward_ref(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                            const nn_conv2d_params *p);

#ifdef __cplusplus
}
#endif

#endif
