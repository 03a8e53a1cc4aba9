/* 2-D convolution, forward and backward, NCHW float32 (shapes and semantics in include/conv2d.h).
 *
 * Fast paths, chosen by shape:
 *   - pointwise (1x1, stride 1, no padding): the image is already its own column matrix, so each image
 *     is one GEMM per group over channels: y_n[C_out, HW] = w[C_out, C_in] x_n[C_in, HW].
 *   - depthwise (groups == C_in == C_out): a direct loop per (image, channel) plane; a GEMM with one row
 *     would spend its time in packing.
 *   - everything else: im2col into the workspace, then OpenBLAS GEMMs; backward runs the same GEMMs
 *     transposed and folds the column gradient back with col2im.
 * OpenMP loops (im2col, col2im, bias, depthwise) run between GEMMs, never around them: OpenBLAS's
 * pthread build runs its own threads. */
#include "nn_internal.h"
#include <string.h>

int nn_conv2d_out_h(const nn_conv2d_params *p) {
    return (p->h + p->pad_top + p->pad_bottom - p->dil_h * (p->kh - 1) - 1) / p->stride_h + 1;
}

int nn_conv2d_out_w(const nn_conv2d_params *p) {
    return (p->w + p->pad_left + p->pad_right - p->dil_w * (p->kw - 1) - 1) / p->stride_w + 1;
}

static void check_params(const nn_conv2d_params *p) {
    (void)p;
    assert(p->n >= 0 && p->c_in >= 1 && p->h >= 1 && p->w >= 1 && p->c_out >= 1);
    assert(p->kh >= 1 && p->kw >= 1 && p->stride_h >= 1 && p->stride_w >= 1 && p->dil_h >= 1 && p->dil_w >= 1);
    assert(p->pad_top >= 0 && p->pad_bottom >= 0 && p->pad_left >= 0 && p->pad_right >= 0);
    assert(p->groups >= 1 && p->c_in % p->groups == 0 && p->c_out % p->groups == 0);
    assert(nn_conv2d_out_h(p) >= 1 && nn_conv2d_out_w(p) >= 1);
}

static int is_pointwise(const nn_conv2d_params *p) {
    return p->kh == 1 && p->kw == 1 && p->stride_h == 1 && p->stride_w == 1 && p->pad_top == 0 &&
           p->pad_bottom == 0 && p->pad_left == 0 && p->pad_right == 0;
}

static int is_depthwise(const nn_conv2d_params *p) { return p->groups == p->c_in && p->groups == p->c_out; }

size_t nn_conv2d_workspace_size(const nn_conv2d_params *p) {
    check_params(p);
    if (is_depthwise(p) || is_pointwise(p)) return 0;
    return (size_t)p->c_in * p->kh * p->kw * nn_conv2d_out_h(p) * nn_conv2d_out_w(p);
}

/* ---- the window geometry every path shares -------------------------------------------------- */

/* Output positions o in [*lo, *hi) whose input coordinate o*stride + off falls inside [0, size):
 * the taps that read real pixels rather than padding. Empty ranges come back as lo == hi. */
static inline void tap_range(int off, int stride, int size, int out, int *lo, int *hi) {
    int l = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int h = size - 1 - off < 0 ? 0 : (size - 1 - off) / stride + 1;
    if (h > out) h = out;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* Geometry of one tap (i, j): input offsets of output (0, 0) and the valid output rectangle. */
typedef struct { int off_y, off_x, y0, y1, x0, x1; } tap_window;

static inline tap_window tap_at(const nn_conv2d_params *p, int i, int j, int oh, int ow) {
    tap_window t;
    t.off_y = i * p->dil_h - p->pad_top;
    t.off_x = j * p->dil_w - p->pad_left;
    tap_range(t.off_y, p->stride_h, p->h, oh, &t.y0, &t.y1);
    tap_range(t.off_x, p->stride_w, p->w, ow, &t.x0, &t.x1);
    return t;
}

/* ---- im2col / col2im -------------------------------------------------------------------------- */

/* col (C_in*KH*KW, OH*OW) from one image x (C_in, H, W): row (c*KH + i)*KW + j holds the pixels tap
 * (i, j) of channel c reads, zero where it reads padding. Rows are independent: split over threads. */
static void im2col(float *col, const float *x, const nn_conv2d_params *p, int oh, int ow) {
    const int kk = p->kh * p->kw, rows = p->c_in * kk, sw = p->stride_w;
    const size_t plane = (size_t)oh * ow;
    NN_PARALLEL_FOR_IF(rows * plane >= NN_PARALLEL_MIN)
    for (int r = 0; r < rows; r++) {
        const int c = r / kk, i = r % kk / p->kw, j = r % p->kw;
        const tap_window t = tap_at(p, i, j, oh, ow);
        const float *xc = x + (size_t)c * p->h * p->w;
        float *dst = col + r * plane;
        memset(dst, 0, (size_t)t.y0 * ow * sizeof(float));
        for (int oy = t.y0; oy < t.y1; oy++) {
            float *d = dst + (size_t)oy * ow;
            const float *s = xc + (size_t)(oy * p->stride_h + t.off_y) * p->w + t.off_x;
            for (int ox = 0; ox < t.x0; ox++) d[ox] = 0.0f;
            if (sw == 1) memcpy(d + t.x0, s + t.x0, (size_t)(t.x1 - t.x0) * sizeof(float));
            else for (int ox = t.x0; ox < t.x1; ox++) d[ox] = s[ox * sw];
            for (int ox = t.x1; ox < ow; ox++) d[ox] = 0.0f;
        }
        memset(dst + (size_t)t.y1 * ow, 0, (size_t)(oh - t.y1) * ow * sizeof(float));
    }
}

/* dx (C_in, H, W) = the adjoint of im2col applied to dcol (C_in*KH*KW, OH*OW): every column entry
 * added back onto the pixel it was copied from. A thread owns whole channels, so taps are summed in the
 * same order for any thread count. */
static void col2im(float *dx, const float *dcol, const nn_conv2d_params *p, int oh, int ow) {
    const int kk = p->kh * p->kw, sw = p->stride_w;
    const size_t plane = (size_t)oh * ow, img = (size_t)p->h * p->w;
    NN_PARALLEL_FOR_IF(p->c_in * kk * plane >= NN_PARALLEL_MIN)
    for (int c = 0; c < p->c_in; c++) {
        float *dxc = dx + c * img;
        memset(dxc, 0, img * sizeof(float));
        for (int t_ = 0; t_ < kk; t_++) {
            const tap_window t = tap_at(p, t_ / p->kw, t_ % p->kw, oh, ow);
            const float *src = dcol + ((size_t)c * kk + t_) * plane;
            for (int oy = t.y0; oy < t.y1; oy++) {
                const float *s = src + (size_t)oy * ow;
                float *d = dxc + (size_t)(oy * p->stride_h + t.off_y) * p->w + t.off_x;
                for (int ox = t.x0; ox < t.x1; ox++) d[ox * sw] += s[ox];
            }
        }
    }
}

/* ---- depthwise: one (image, channel) plane per iteration ------------------------------------- */

/* y (N, C, OH, OW) from x (N, C, H, W), w (C, 1, KH, KW), bias (C) or null. */
static void depthwise_forward(float *y, const float *x, const float *w, const float *bias,
                              const nn_conv2d_params *p, int oh, int ow) {
    const int kk = p->kh * p->kw, planes = p->n * p->c_in, sw = p->stride_w;
    const size_t plane = (size_t)oh * ow, img = (size_t)p->h * p->w;
    NN_PARALLEL_FOR_IF((size_t)planes * plane * kk >= NN_PARALLEL_MIN)
    for (int nc = 0; nc < planes; nc++) {
        const int c = nc % p->c_in;
        const float *xc = x + nc * img, *wc = w + c * kk;
        float *yc = y + nc * plane;
        const float b0 = bias ? bias[c] : 0.0f;
        for (size_t q = 0; q < plane; q++) yc[q] = b0;
        for (int t_ = 0; t_ < kk; t_++) {
            const tap_window t = tap_at(p, t_ / p->kw, t_ % p->kw, oh, ow);
            const float wv = wc[t_];
            for (int oy = t.y0; oy < t.y1; oy++) {
                const float *s = xc + (size_t)(oy * p->stride_h + t.off_y) * p->w + t.off_x;
                float *d = yc + (size_t)oy * ow;
                for (int ox = t.x0; ox < t.x1; ox++) d[ox] += wv * s[ox * sw];
            }
        }
    }
}

/* dx (N, C, H, W) written, dw (C, 1, KH, KW) accumulated, from dy (N, C, OH, OW), x, w. Two race-free
 * passes: dx over (image, channel) planes, dw over channels with images summed in order. */
static void depthwise_backward(float *dx, float *dw, const float *dy, const float *x, const float *w,
                               const nn_conv2d_params *p, int oh, int ow) {
    const int kk = p->kh * p->kw, C = p->c_in, sw = p->stride_w;
    const size_t plane = (size_t)oh * ow, img = (size_t)p->h * p->w;
    const size_t work = (size_t)p->n * C * plane * kk;
    if (dx) {
        NN_PARALLEL_FOR_IF(work >= NN_PARALLEL_MIN)
        for (int nc = 0; nc < p->n * C; nc++) {
            const float *dyc = dy + nc * plane, *wc = w + nc % C * kk;
            float *dxc = dx + nc * img;
            memset(dxc, 0, img * sizeof(float));
            for (int t_ = 0; t_ < kk; t_++) {
                const tap_window t = tap_at(p, t_ / p->kw, t_ % p->kw, oh, ow);
                const float wv = wc[t_];
                for (int oy = t.y0; oy < t.y1; oy++) {
                    const float *s = dyc + (size_t)oy * ow;
                    float *d = dxc + (size_t)(oy * p->stride_h + t.off_y) * p->w + t.off_x;
                    for (int ox = t.x0; ox < t.x1; ox++) d[ox * sw] += wv * s[ox];
                }
            }
        }
    }
    if (dw) {
        NN_PARALLEL_FOR_IF(work >= NN_PARALLEL_MIN)
        for (int c = 0; c < C; c++) {
            for (int t_ = 0; t_ < kk; t_++) {
                const tap_window t = tap_at(p, t_ / p->kw, t_ % p->kw, oh, ow);
                double acc = 0.0;
                for (int n = 0; n < p->n; n++) {
                    const float *dyc = dy + ((size_t)n * C + c) * plane, *xc = x + ((size_t)n * C + c) * img;
                    for (int oy = t.y0; oy < t.y1; oy++) {
                        const float *s = xc + (size_t)(oy * p->stride_h + t.off_y) * p->w + t.off_x;
                        const float *g = dyc + (size_t)oy * ow;
                        float row = 0.0f;
                        for (int ox = t.x0; ox < t.x1; ox++) row += g[ox] * s[ox * sw];
                        acc += row;
                    }
                }
                dw[c * kk + t_] += (float)acc;
            }
        }
    }
}

/* ---- shared by every path ----------------------------------------------------------------------- */

/* y (N, C_out, OH*OW) += bias (C_out), one (image, channel) row per iteration. */
static void add_bias(float *y, const float *bias, int n, int c_out, size_t plane) {
    NN_PARALLEL_FOR_IF((size_t)n * c_out * plane >= NN_PARALLEL_MIN)
    for (int r = 0; r < n * c_out; r++) {
        float *row = y + r * plane;
        const float b0 = bias[r % c_out];
        for (size_t q = 0; q < plane; q++) row[q] += b0;
    }
}

/* db (C_out) += sum of dy (N, C_out, OH*OW) over images and positions, in double, images in order. */
static void bias_grad(float *db, const float *dy, int n, int c_out, size_t plane) {
    NN_PARALLEL_FOR_IF((size_t)n * c_out * plane >= NN_PARALLEL_MIN)
    for (int o = 0; o < c_out; o++) {
        double acc = 0.0;
        for (int i = 0; i < n; i++) {
            const float *row = dy + ((size_t)i * c_out + o) * plane;
            float s = 0.0f;
            for (size_t q = 0; q < plane; q++) s += row[q];
            acc += s;
        }
        db[o] += (float)acc;
    }
}

/* ---- public kernels ----------------------------------------------------------------------------- */

/* y (N, C_out, OH, OW); x (N, C_in, H, W); w (C_out, C_in/groups, KH, KW); bias (C_out) or null;
 * workspace (nn_conv2d_workspace_size floats; the column matrix (C_in*KH*KW, OH*OW) of one image). */
void nn_conv2d_forward(float *y, const float *x, const float *w, const float *bias, float *workspace,
                       const nn_conv2d_params *p) {
    check_params(p);
    assert(y && x && w);
    const int oh = nn_conv2d_out_h(p), ow = nn_conv2d_out_w(p);
    if (is_depthwise(p)) {
        depthwise_forward(y, x, w, bias, p, oh, ow);
        return;
    }
    const int G = p->groups, mg = p->c_out / G, kg = p->c_in / G * p->kh * p->kw, plane = oh * ow;
    const size_t img = (size_t)p->c_in * p->h * p->w, out_img = (size_t)p->c_out * plane;
    const int pointwise = is_pointwise(p);
    assert(pointwise || workspace);
    for (int n = 0; n < p->n; n++) {
        const float *col = x + n * img;
        if (!pointwise) {
            im2col(workspace, col, p, oh, ow);
            col = workspace;
        }
        for (int g = 0; g < G; g++)
            nn_sgemm(0, 0, mg, plane, kg, 1.0f, w + (size_t)g * mg * kg, kg, col + (size_t)g * kg * plane, plane,
                     0.0f, y + n * out_img + (size_t)g * mg * plane, plane);
    }
    if (bias) add_bias(y, bias, p->n, p->c_out, plane);
}

/* dx (N, C_in, H, W) written; dw (C_out, C_in/groups, KH, KW) and db (C_out) accumulated; each may be
 * null. dy (N, C_out, OH, OW); x (N, C_in, H, W), needed for dw; w (C_out, C_in/groups, KH, KW), needed
 * for dx; workspace as for forward: it holds one image's columns for dw, then their gradient for dx. */
void nn_conv2d_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                        float *workspace, const nn_conv2d_params *p) {
    check_params(p);
    assert(dy && (!dx || w) && (!dw || x));
    const int oh = nn_conv2d_out_h(p), ow = nn_conv2d_out_w(p), plane = oh * ow;
    if (db) bias_grad(db, dy, p->n, p->c_out, (size_t)plane);
    if (is_depthwise(p)) {
        depthwise_backward(dx, dw, dy, x, w, p, oh, ow);
        return;
    }
    const int G = p->groups, mg = p->c_out / G, kg = p->c_in / G * p->kh * p->kw;
    const size_t img = (size_t)p->c_in * p->h * p->w, out_img = (size_t)p->c_out * plane;
    const int pointwise = is_pointwise(p);
    assert(pointwise || workspace || (!dx && !dw));
    for (int n = 0; n < p->n; n++) {
        const float *dyn = dy + n * out_img;
        if (dw) { /* dw_g += dy_g (mg, plane) col_g^T (plane, kg), images in order. */
            const float *col = x + n * img;
            if (!pointwise) {
                im2col(workspace, col, p, oh, ow);
                col = workspace;
            }
            for (int g = 0; g < G; g++)
                nn_sgemm(0, 1, mg, kg, plane, 1.0f, dyn + (size_t)g * mg * plane, plane, col + (size_t)g * kg * plane,
                         plane, 1.0f, dw + (size_t)g * mg * kg, kg);
        }
        if (dx) { /* dcol_g (kg, plane) = w_g^T (kg, mg) dy_g (mg, plane); pointwise: dcol is dx itself. */
            float *dcol = pointwise ? dx + n * img : workspace;
            for (int g = 0; g < G; g++)
                nn_sgemm(1, 0, kg, plane, mg, 1.0f, w + (size_t)g * mg * kg, kg, dyn + (size_t)g * mg * plane, plane,
                         0.0f, dcol + (size_t)g * kg * plane, plane);
            if (!pointwise) col2im(dx + n * img, dcol, p, oh, ow);
        }
    }
}

/* ---- references ----------------------------------------------------------------------------------- */

/* Same buffers as nn_conv2d_forward, without workspace. */
void nn_conv2d_forward_ref(float *y, const float *x, const float *w, const float *bias, const nn_conv2d_params *p) {
    check_params(p);
    const int oh = nn_conv2d_out_h(p), ow = nn_conv2d_out_w(p);
    const int cg = p->c_in / p->groups, mg = p->c_out / p->groups;
    for (int n = 0; n < p->n; n++)
        for (int o = 0; o < p->c_out; o++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    double acc = bias ? bias[o] : 0.0;
                    for (int c = 0; c < cg; c++)
                        for (int i = 0; i < p->kh; i++)
                            for (int j = 0; j < p->kw; j++) {
                                int iy = oy * p->stride_h - p->pad_top + i * p->dil_h;
                                int ix = ox * p->stride_w - p->pad_left + j * p->dil_w;
                                if (iy < 0 || iy >= p->h || ix < 0 || ix >= p->w) continue;
                                int ci = o / mg * cg + c;
                                acc += (double)w[((o * cg + c) * p->kh + i) * p->kw + j] *
                                       x[(((size_t)n * p->c_in + ci) * p->h + iy) * p->w + ix];
                            }
                    y[(((size_t)n * p->c_out + o) * oh + oy) * ow + ox] = (float)acc;
                }
}

/* Same buffers as nn_conv2d_backward, without workspace. dx gathers from the outputs each pixel feeds
 * (the opposite direction to col2im's scatter), so the two check each other. */
void nn_conv2d_backward_ref(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                            const nn_conv2d_params *p) {
    check_params(p);
    const int oh = nn_conv2d_out_h(p), ow = nn_conv2d_out_w(p);
    const int cg = p->c_in / p->groups, mg = p->c_out / p->groups;
#define DY(n, o, oy, ox) dy[(((size_t)(n) * p->c_out + (o)) * oh + (oy)) * ow + (ox)]
#define X(n, c, iy, ix) x[(((size_t)(n) * p->c_in + (c)) * p->h + (iy)) * p->w + (ix)]
    if (dx)
        for (int n = 0; n < p->n; n++)
            for (int c = 0; c < p->c_in; c++)
                for (int iy = 0; iy < p->h; iy++)
                    for (int ix = 0; ix < p->w; ix++) {
                        double acc = 0.0;
                        for (int oo = 0; oo < mg; oo++)
                            for (int i = 0; i < p->kh; i++)
                                for (int j = 0; j < p->kw; j++) {
                                    int ty = iy + p->pad_top - i * p->dil_h, tx = ix + p->pad_left - j * p->dil_w;
                                    if (ty < 0 || tx < 0 || ty % p->stride_h || tx % p->stride_w) continue;
                                    int oy = ty / p->stride_h, ox = tx / p->stride_w;
                                    if (oy >= oh || ox >= ow) continue;
                                    int o = c / cg * mg + oo;
                                    acc += (double)w[((o * cg + c % cg) * p->kh + i) * p->kw + j] * DY(n, o, oy, ox);
                                }
                        dx[(((size_t)n * p->c_in + c) * p->h + iy) * p->w + ix] = (float)acc;
                    }
    if (dw)
        for (int o = 0; o < p->c_out; o++)
            for (int c = 0; c < cg; c++)
                for (int i = 0; i < p->kh; i++)
                    for (int j = 0; j < p->kw; j++) {
                        double acc = 0.0;
                        for (int n = 0; n < p->n; n++)
                            for (int oy = 0; oy < oh; oy++)
                                for (int ox = 0; ox < ow; ox++) {
                                    int iy = oy * p->stride_h - p->pad_top + i * p->dil_h;
                                    int ix = ox * p->stride_w - p->pad_left + j * p->dil_w;
                                    if (iy < 0 || iy >= p->h || ix < 0 || ix >= p->w) continue;
                                    acc += (double)DY(n, o, oy, ox) * X(n, o / mg * cg + c, iy, ix);
                                }
                        dw[((o * cg + c) * p->kh + i) * p->kw + j] += (float)acc;
                    }
    if (db)
        for (int o = 0; o < p->c_out; o++) {
            double acc = 0.0;
            for (int n = 0; n < p->n; n++)
                for (int q = 0; q < oh * ow; q++) acc += DY(n, o, q / ow, q % ow);
            db[o] += (float)acc;
        }
#undef DY
#undef X
}
