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

/* Floats of caller-owned scratch that nn_conv2d_forward and nn_conv2d_backward (algorithm AUTO) need
 * for these parameters (0 when none: the workspace pointer may then be null). One size serves both. It
 * grows with N: the direct and Winograd paths keep zero-padded copies of x and dy for the whole batch
 * (about the size of x plus the size of dy), im2col one image's matrix (C_in*KH*KW x OH*OW). */
size_t nn_conv2d_workspace_size(const nn_conv2d_params *p);

/* How a convolution is computed. Every algorithm gives the same result up to float rounding
 * (CKernels/README.md lists the measured errors); each is bit-identical for any thread count, except
 * that OpenBLAS's GEMMs (im2col) agree across thread counts to rounding only.
 *   AUTO      chosen by shape: Winograd where it applies and the channels are many (its weight gradient
 *             from 64 channels on each side, DIRECT's below), else DIRECT where it applies, else IM2COL.
 *   DIRECT    at most 256 taps: an implicit GEMM over a zero-padded grid of the input (split into
 *             stride_h x stride_w phase planes when strided), or depthwise planes. The backward pass of
 *             a strided convolution, and the input gradient of one padded by more than (k-1)*dilation,
 *             take IM2COL.
 *   IM2COL    any shape: im2col copies and OpenBLAS GEMMs, col2im for the input gradient.
 *   WINOGRAD  F(2x2, 3x3) for 3x3 kernels, stride 1, dilation 1, groups 1, any padding: forward, input
 *             gradient and weight gradient (winograd.c); a pass whose source (x, dy; x and dy for the
 *             weight gradient) holds Inf or NaN takes DIRECT, so non-finite values propagate as there. */
typedef enum {
    NN_CONV2D_AUTO = 0,
    NN_CONV2D_DIRECT = 1,
    NN_CONV2D_IM2COL = 2,
    NN_CONV2D_WINOGRAD = 3,
} nn_conv2d_algorithm;

/* 1 when `a` can compute this convolution (AUTO always can). */
int nn_conv2d_algorithm_applies(const nn_conv2d_params *p, nn_conv2d_algorithm a);
/* The algorithm AUTO runs for these parameters (never AUTO). */
nn_conv2d_algorithm nn_conv2d_auto_algorithm(const nn_conv2d_params *p);
/* Floats of workspace nn_conv2d_forward_with and nn_conv2d_backward_with need with algorithm `a`. */
size_t nn_conv2d_workspace_size_with(const nn_conv2d_params *p, nn_conv2d_algorithm a);
/* nn_conv2d_forward and nn_conv2d_backward with a chosen algorithm, which must apply (asserted). */
void nn_conv2d_forward_with(float *y, const float *x, const float *w, const float *bias, float *workspace,
                            const nn_conv2d_params *p, nn_conv2d_algorithm a);
void nn_conv2d_backward_with(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                             float *workspace, const nn_conv2d_params *p, nn_conv2d_algorithm a);

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

/* ---- Winograd F(m x m, 3 x 3), m = 2 or 4 (winograd.c) -----------------------------------------------
 * For 3x3 kernels at stride 1, dilation 1, groups 1, any padding. Fewer multiplications than the direct
 * kernel (4x fewer for m = 4, 2.25x for m = 2) at some cost in rounding error (CKernels/README.md). */
int nn_conv2d_winograd_applies(const nn_conv2d_params *p);
/* Floats of workspace for the forward pass, the input gradient and (m = 2) the weight gradient (scratch
 * for up to 16 threads). */
size_t nn_conv2d_winograd_workspace_size(const nn_conv2d_params *p, int m);
/* y (N, C_out, OH, OW) = conv(x (N, C_in, H, W), w (C_out, C_in, 3, 3)) + bias (C_out) or null.
 * Both return 0 without writing when the source (x, dy) holds Inf or NaN, which Winograd's transforms
 * would spread across whole tiles: the caller runs the direct kernel then (conv2d.c does). */
int nn_conv2d_winograd_forward(float *y, const float *x, const float *w, const float *bias, float *workspace,
                                const nn_conv2d_params *p, int m);
/* dx (N, C_in, H, W) WRITTEN from dy (N, C_out, OH, OW) and w (C_out, C_in, 3, 3). */
int nn_conv2d_winograd_backward_data(float *dx, const float *dy, const float *w, float *workspace,
                                     const nn_conv2d_params *p, int m);
/* dw (C_out, C_in, 3, 3) ACCUMULATED from dy (N, C_out, OH, OW) and x (N, C_in, H, W), by F(2x2, 3x3);
 * workspace: nn_conv2d_winograd_workspace_size(p, 2) floats. Returns 0 without writing when x or dy holds
 * Inf or NaN. */
int nn_conv2d_winograd_backward_weights(float *dw, const float *dy, const float *x, float *workspace,
                                        const nn_conv2d_params *p);
/* The same algorithms as plain scalar loops (the tests' references for the blocked kernels). */
void nn_conv2d_winograd_forward_ref(float *y, const float *x, const float *w, const float *bias,
                                    const nn_conv2d_params *p, int m);
void nn_conv2d_winograd_backward_weights_ref(float *dw, const float *dy, const float *x, const nn_conv2d_params *p);

#ifdef __cplusplus
}
#endif

#endif
