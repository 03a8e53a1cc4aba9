/* Pooling over the spatial axes of NCHW tensors: max, average, adaptive average and adaptive max, forward and backward
 * (semantics in include/pool.h). Forward passes split output rows across threads. Backward passes split
 * whole (n, c) planes instead: overlapping windows scatter into the same input elements, and a plane owned
 * by one thread needs neither atomics nor a reduction, so dx is the same for any thread count.
 * Built per instruction level (CKernels/README.md): each parallel loop runs one per-level call per output
 * row or plane. */
#ifndef NN_LEVEL /* ---- common to every level ---- */
#include "nn_internal.h"
#include <limits.h>
#include <math.h>
#include <string.h>

/* Rounds toward minus infinity: a kernel larger than the padded input makes the numerator negative,
 * and C's truncating division would then report one output instead of none. */
static long floor_div(long a, long b) {
    long q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int nn_pool_out_size(int in, int k, int stride, int pad, int ceil_mode) {
    assert(k >= 1 && stride >= 1 && pad >= 0);
    long out = floor_div((long)in + 2L * pad - k + (ceil_mode ? stride - 1 : 0), stride) + 1;
    /* A last ceil_mode window that starts in the right padding would cover no input: PyTorch drops it. */
    if (ceil_mode && (out - 1) * stride >= (long)in + pad) out--;
    /* Saturates rather than wraps; the Swift layer rejects sizes the kernels cannot index in int. */
    return out > INT_MAX ? INT_MAX : (int)out;
}

int nn_pool2d_out_h(const nn_pool2d_params *p) {
    return nn_pool_out_size(p->h, p->kh, p->stride_h, p->pad_h, p->ceil_mode);
}

int nn_pool2d_out_w(const nn_pool2d_params *p) {
    return nn_pool_out_size(p->w, p->kw, p->stride_w, p->pad_w, p->ceil_mode);
}

/* The contract every strided pooling kernel relies on: with pad <= k/2 and a positive output size from
 * nn_pool_out_size, each window overlaps the input, so a maximum and a divisor always exist. */
__attribute__((unused)) static inline int params_ok(const nn_pool2d_params *p) {
    return p->n >= 0 && p->c >= 0 && p->h >= 1 && p->w >= 1 && p->kh >= 1 && p->kw >= 1 &&
           p->stride_h >= 1 && p->stride_w >= 1 && p->pad_h >= 0 && p->pad_w >= 0 &&
           p->pad_h <= p->kh / 2 && p->pad_w <= p->kw / 2 && nn_pool2d_out_h(p) >= 1 && nn_pool2d_out_w(p) >= 1;
}

/* One axis of one window: [lo, hi) are the input positions it covers; span is its extent when padding
 * counts but the part of a ceil_mode window beyond the padding does not (the count_include_pad divisor). */
typedef struct { long lo, hi, span; } window;

/* How one spatial axis is cut into windows: strided (k, stride, pad) or adaptive (out equal-ish parts). */
typedef struct { long in, out, k, stride, pad; int adaptive; } axis;

static inline window axis_window(axis ax, long o) {
    window win;
    if (ax.adaptive) {
        /* [floor(o*in/out), ceil((o+1)*in/out)): adjacent windows may share an element. */
        win.lo = o * ax.in / ax.out;
        win.hi = ((o + 1) * ax.in + ax.out - 1) / ax.out;
        win.span = win.hi - win.lo;
    } else {
        long start = o * ax.stride - ax.pad, end = start + ax.k;
        win.lo = start > 0 ? start : 0;
        win.hi = end < ax.in ? end : ax.in;
        win.span = (end < ax.in + ax.pad ? end : ax.in + ax.pad) - start;
    }
    return win;
}

static inline axis rows_of(const nn_pool2d_params *p) {
    axis ax = { p->h, nn_pool2d_out_h(p), p->kh, p->stride_h, p->pad_h, 0 };
    return ax;
}

static inline axis cols_of(const nn_pool2d_params *p) {
    axis ax = { p->w, nn_pool2d_out_w(p), p->kw, p->stride_w, p->pad_w, 0 };
    return ax;
}

static inline axis adaptive_axis(long in, long out) {
    axis ax = { in, out, 0, 0, 0, 1 };
    return ax;
}

/* Total taps over all outputs: below NN_PARALLEL_MIN a team costs more than the loop. In double: a
 * window as tall as INT_MAX (all but one row of it padding) would overflow a long. */
static inline double pool_work(const nn_pool2d_params *p, long oh, long ow) {
    return (double)p->n * p->c * oh * ow * p->kh * p->kw;
}

/* y, indices (N, C, OH, OW); x (N, C, H, W). indices may be null. */
void nn_max_pool2d_forward_ref(float *y, int64_t *indices, const float *x, const nn_pool2d_params *p) {
    assert(y && x && params_ok(p));
    long h = p->h, w = p->w, oh = nn_pool2d_out_h(p), ow = nn_pool2d_out_w(p);
    for (long pl = 0; pl < (long)p->n * p->c; pl++)
        for (long i = 0; i < oh; i++)
            for (long j = 0; j < ow; j++) {
                float best = -INFINITY;
                long best_at = -1;
                for (long a = 0; a < p->kh; a++)
                    for (long b = 0; b < p->kw; b++) {
                        long hh = i * p->stride_h - p->pad_h + a, ww = j * p->stride_w - p->pad_w + b;
                        if (hh < 0 || hh >= h || ww < 0 || ww >= w) continue;
                        float v = x[(pl * h + hh) * w + ww];
                        if (best_at < 0 || v > best || isnan(v)) { best = v; best_at = hh * w + ww; }
                    }
                long o = (pl * oh + i) * ow + j;
                y[o] = best;
                if (indices) indices[o] = best_at;
            }
}

/* Adaptive windows have no padding, so their span is their real count and either rule gives it. */
static inline long avg_divisor(window wh, window ww, int count_include_pad) {
    return count_include_pad ? wh.span * ww.span : (wh.hi - wh.lo) * (ww.hi - ww.lo);
}

#define NN_LEVEL_SOURCE "pool.c"
#include "levels.h"

/* y, indices (N, C, OH, OW); x (N, C, H, W). indices may be null. */
void nn_max_pool2d_forward(float *y, int64_t *indices, const float *x, const nn_pool2d_params *p) {
    assert(y && x && params_ok(p));
    axis ah = rows_of(p), aw = cols_of(p);
    NN_DISPATCH(max_forward)(y, indices, x, (long)p->n * p->c, ah, aw, pool_work(p, ah.out, aw.out));
}

/* dx (N, C, H, W); dy, indices (N, C, OH, OW). */
void nn_max_pool2d_backward(float *dx, const float *dy, const int64_t *indices, const nn_pool2d_params *p) {
    assert(dx && dy && indices && params_ok(p));
    NN_DISPATCH(max_backward)(dx, dy, indices, (long)p->n * p->c, (long)p->h * p->w,
                              (long)nn_pool2d_out_h(p) * nn_pool2d_out_w(p));
}

/* y (N, C, OH, OW); x (N, C, H, W). */
void nn_avg_pool2d_forward(float *y, const float *x, const nn_pool2d_params *p) {
    assert(y && x && params_ok(p));
    axis ah = rows_of(p), aw = cols_of(p);
    NN_DISPATCH(avg_forward)(y, x, (long)p->n * p->c, ah, aw, p->count_include_pad, pool_work(p, ah.out, aw.out));
}

/* dx (N, C, H, W); dy (N, C, OH, OW). */
void nn_avg_pool2d_backward(float *dx, const float *dy, const nn_pool2d_params *p) {
    assert(dx && dy && params_ok(p));
    axis ah = rows_of(p), aw = cols_of(p);
    NN_DISPATCH(avg_backward)(dx, dy, (long)p->n * p->c, ah, aw, p->count_include_pad, pool_work(p, ah.out, aw.out));
}

/* The divisor of window (i, j) by enumerating its taps: those inside the padded input when padding
 * counts, those inside the input otherwise; never those of a ceil_mode window past the padding. */
static long ref_divisor(const nn_pool2d_params *p, long i, long j) {
    long ph = p->count_include_pad ? p->pad_h : 0, pw = p->count_include_pad ? p->pad_w : 0, count = 0;
    for (long a = 0; a < p->kh; a++)
        for (long b = 0; b < p->kw; b++) {
            long hh = i * p->stride_h - p->pad_h + a, ww = j * p->stride_w - p->pad_w + b;
            count += hh >= -ph && hh < p->h + ph && ww >= -pw && ww < p->w + pw;
        }
    return count;
}

/* y (N, C, OH, OW); x (N, C, H, W). */
void nn_avg_pool2d_forward_ref(float *y, const float *x, const nn_pool2d_params *p) {
    assert(y && x && params_ok(p));
    long h = p->h, w = p->w, oh = nn_pool2d_out_h(p), ow = nn_pool2d_out_w(p);
    for (long pl = 0; pl < (long)p->n * p->c; pl++)
        for (long i = 0; i < oh; i++)
            for (long j = 0; j < ow; j++) {
                double sum = 0.0;
                for (long a = 0; a < p->kh; a++)
                    for (long b = 0; b < p->kw; b++) {
                        long hh = i * p->stride_h - p->pad_h + a, ww = j * p->stride_w - p->pad_w + b;
                        if (hh >= 0 && hh < h && ww >= 0 && ww < w) sum += x[(pl * h + hh) * w + ww];
                    }
                y[(pl * oh + i) * ow + j] = (float)(sum / (double)ref_divisor(p, i, j));
            }
}

/* dx (N, C, H, W); dy (N, C, OH, OW). */
void nn_avg_pool2d_backward_ref(float *dx, const float *dy, const nn_pool2d_params *p) {
    assert(dx && dy && params_ok(p));
    long h = p->h, w = p->w, oh = nn_pool2d_out_h(p), ow = nn_pool2d_out_w(p);
    memset(dx, 0, (size_t)((long)p->n * p->c * h * w) * sizeof(float));
    for (long pl = 0; pl < (long)p->n * p->c; pl++)
        for (long i = 0; i < oh; i++)
            for (long j = 0; j < ow; j++) {
                float share = dy[(pl * oh + i) * ow + j] / (float)ref_divisor(p, i, j);
                for (long a = 0; a < p->kh; a++)
                    for (long b = 0; b < p->kw; b++) {
                        long hh = i * p->stride_h - p->pad_h + a, ww = j * p->stride_w - p->pad_w + b;
                        if (hh >= 0 && hh < h && ww >= 0 && ww < w) dx[(pl * h + hh) * w + ww] += share;
                    }
            }
}

/* y (N, C, OH, OW); x (N, C, H, W). */
void nn_adaptive_avg_pool2d_forward(float *y, const float *x, int n, int c, int h, int w, int oh, int ow) {
    assert(y && x && n >= 0 && c >= 0 && h >= 1 && w >= 1 && oh >= 1 && ow >= 1);
    /* An adaptive window spans about H/OH rows and at least one, so a plane costs about max(H*W, OH*OW) taps. */
    long per_plane = (long)h * w > (long)oh * ow ? (long)h * w : (long)oh * ow;
    NN_DISPATCH(avg_forward)(y, x, (long)n * c, adaptive_axis(h, oh), adaptive_axis(w, ow), 1, (long)n * c * per_plane);
}

/* dx (N, C, H, W); dy (N, C, OH, OW). */
void nn_adaptive_avg_pool2d_backward(float *dx, const float *dy, int n, int c, int h, int w, int oh, int ow) {
    assert(dx && dy && n >= 0 && c >= 0 && h >= 1 && w >= 1 && oh >= 1 && ow >= 1);
    long per_plane = (long)h * w > (long)oh * ow ? (long)h * w : (long)oh * ow;
    NN_DISPATCH(avg_backward)(dx, dy, (long)n * c, adaptive_axis(h, oh), adaptive_axis(w, ow), 1, (long)n * c * per_plane);
}

/* y, indices (N, C, OH, OW); x (N, C, H, W). indices may be null. */
void nn_adaptive_max_pool2d_forward(float *y, int64_t *indices, const float *x, int n, int c, int h, int w, int oh, int ow) {
    assert(y && x && n >= 0 && c >= 0 && h >= 1 && w >= 1 && oh >= 1 && ow >= 1);
    long per_plane = (long)h * w > (long)oh * ow ? (long)h * w : (long)oh * ow;
    NN_DISPATCH(max_forward)(y, indices, x, (long)n * c, adaptive_axis(h, oh), adaptive_axis(w, ow), (double)n * c * per_plane);
}

/* dx (N, C, H, W); dy, indices (N, C, OH, OW). */
void nn_adaptive_max_pool2d_backward(float *dx, const float *dy, const int64_t *indices, int n, int c, int h, int w,
                                     int oh, int ow) {
    assert(dx && dy && indices && n >= 0 && c >= 0 && h >= 1 && w >= 1 && oh >= 1 && ow >= 1);
    NN_DISPATCH(max_backward)(dx, dy, indices, (long)n * c, (long)h * w, (long)oh * ow);
}

/* y, indices (N, C, OH, OW); x (N, C, H, W): every window scanned tap by tap from its bounds. */
void nn_adaptive_max_pool2d_forward_ref(float *y, int64_t *indices, const float *x, int n, int c, int h, int w,
                                        int oh, int ow) {
    assert(y && x && n >= 0 && c >= 0 && h >= 1 && w >= 1 && oh >= 1 && ow >= 1);
    for (long pl = 0; pl < (long)n * c; pl++)
        for (long i = 0; i < oh; i++)
            for (long j = 0; j < ow; j++) {
                long h0 = i * h / oh, h1 = ((i + 1) * h + oh - 1) / oh;
                long w0 = j * w / ow, w1 = ((j + 1) * w + ow - 1) / ow;
                float best = -INFINITY;
                long best_at = h0 * w + w0;
                for (long a = h0; a < h1; a++)
                    for (long b = w0; b < w1; b++) {
                        float v = x[(pl * h + a) * w + b];
                        if (v > best || isnan(v)) { best = v; best_at = a * w + b; }
                    }
                long o = (pl * oh + i) * ow + j;
                y[o] = best;
                if (indices) indices[o] = best_at;
            }
}

#else /* ---- per instruction level (levels.h compiles this part once per level) ---- */

/* Output row r (an index over planes*OH) of y, indices from x. */
static void NN_L(max_row)(float *y, int64_t *indices, const float *x, axis ah, axis aw, long r) {
    const long w = aw.in;
    const float *plane = x + (r / ah.out) * ah.in * w;
    window wh = axis_window(ah, r % ah.out);
    for (long j = 0; j < aw.out; j++) {
        window ww = axis_window(aw, j);
        /* Padding is -inf, so a window of -inf values reports its first real element. */
        float best = -INFINITY;
        long best_at = wh.lo * w + ww.lo;
        for (long a = wh.lo; a < wh.hi; a++)
            for (long b = ww.lo; b < ww.hi; b++) {
                float v = plane[a * w + b];
                if (v > best || isnan(v)) { best = v; best_at = a * w + b; }
            }
        y[r * aw.out + j] = best;
        if (indices) indices[r * aw.out + j] = best_at;
    }
}

/* The one max-pooling forward, strided or adaptive: y, indices (planes, OH, OW); x (planes, H, W).
 * work (taps in all) only decides whether to fork a team. */
static void NN_L(max_forward)(float *y, int64_t *indices, const float *x, long planes, axis ah, axis aw, double work) {
    (void)work; /* read by the OpenMP pragma alone */
    long rows = planes * ah.out;
    NN_PARALLEL_FOR_IF(work >= NN_PARALLEL_MIN)
    for (long r = 0; r < rows; r++) NN_L(max_row)(y, indices, x, ah, aw, r);
}

/* One plane: g (H*W) = the sum of d (OH*OW) at the positions `at` recorded. */
static void NN_L(max_backward_plane)(float *g, const float *d, const int64_t *at, long hw, long ohw) {
    memset(g, 0, (size_t)hw * sizeof(float));
    for (long t = 0; t < ohw; t++) {
        assert(at[t] >= 0 && at[t] < hw);
        g[at[t]] += d[t];
    }
}

/* The one max-pooling backward: dx (planes, H*W) written; dy, indices (planes, OH*OW). */
static void NN_L(max_backward)(float *dx, const float *dy, const int64_t *indices, long planes, long hw, long ohw) {
    NN_PARALLEL_FOR_IF(planes > 1 && planes * (hw + ohw) >= NN_PARALLEL_MIN)
    for (long pl = 0; pl < planes; pl++)
        NN_L(max_backward_plane)(dx + pl * hw, dy + pl * ohw, indices + pl * ohw, hw, ohw);
}

/* Output row r (an index over planes*OH) of the average: sums in double in row-major order. */
static void NN_L(avg_row)(float *y, const float *x, axis ah, axis aw, int count_include_pad, long r) {
    const float *plane = x + (r / ah.out) * ah.in * aw.in;
    window wh = axis_window(ah, r % ah.out);
    for (long j = 0; j < aw.out; j++) {
        window ww = axis_window(aw, j);
        double sum = 0.0;
        for (long a = wh.lo; a < wh.hi; a++)
            for (long b = ww.lo; b < ww.hi; b++) sum += plane[a * aw.in + b];
        y[r * aw.out + j] = (float)(sum / (double)avg_divisor(wh, ww, count_include_pad));
    }
}

/* The one average-pooling forward, strided or adaptive: y (planes, OH, OW); x (planes, H, W).
 * work (taps in all) only decides whether to fork a team. */
static void NN_L(avg_forward)(float *y, const float *x, long planes, axis ah, axis aw, int count_include_pad,
                              double work) {
    (void)work; /* read by the OpenMP pragma alone */
    long rows = planes * ah.out;
    NN_PARALLEL_FOR_IF(work >= NN_PARALLEL_MIN)
    for (long r = 0; r < rows; r++) NN_L(avg_row)(y, x, ah, aw, count_include_pad, r);
}

/* One plane: g (H, W) written from d (OH, OW). */
static void NN_L(avg_backward_plane)(float *g, const float *d, axis ah, axis aw, int count_include_pad) {
    memset(g, 0, (size_t)(ah.in * aw.in) * sizeof(float));
    for (long i = 0; i < ah.out; i++) {
        window wh = axis_window(ah, i);
        for (long j = 0; j < aw.out; j++) {
            window ww = axis_window(aw, j);
            float share = d[i * aw.out + j] / (float)avg_divisor(wh, ww, count_include_pad);
            for (long a = wh.lo; a < wh.hi; a++)
                for (long b = ww.lo; b < ww.hi; b++) g[a * aw.in + b] += share;
        }
    }
}

/* The one average-pooling backward: dx (planes, H, W) written; dy (planes, OH, OW). */
static void NN_L(avg_backward)(float *dx, const float *dy, long planes, axis ah, axis aw, int count_include_pad,
                               double work) {
    (void)work; /* read by the OpenMP pragma alone */
    long hw = ah.in * aw.in;
    NN_PARALLEL_FOR_IF(planes > 1 && work >= NN_PARALLEL_MIN)
    for (long pl = 0; pl < planes; pl++)
        NN_L(avg_backward_plane)(dx + pl * hw, dy + pl * ah.out * aw.out, ah, aw, count_include_pad);
}

#endif
