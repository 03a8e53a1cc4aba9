/* Box kernels: conversion, pairwise IoU and GIoU, greedy NMS (semantics in include/boxes.h).
 *
 * IoU matrix: the second set is converted once into structure-of-arrays corners and areas in the
 * workspace; rows of the first set are split across threads, and each row is one contiguous loop over
 * the second set that the compiler vectorises.
 *
 * NMS: a stable LSD radix sort orders the boxes by (label, score descending, index), so each label is a
 * contiguous segment sorted as torchvision visits it. Within a segment each candidate is compared only
 * with the boxes kept so far (compacted to the front of the segment, structure of arrays), in blocks with
 * an early exit; a candidate no kept box overlaps by more than the threshold is kept. That is the greedy
 * algorithm exactly (a box is suppressed iff an earlier kept box overlaps it), at O(n * kept) IoUs and
 * without an n x n matrix. Segments (labels) run in parallel, each owned by one thread, and are merged
 * back into global score order, so the result does not depend on the thread count.
 *
 * Built per instruction level (CKernels/README.md): the IoU rows and the kept-box checks are plain loops
 * the compiler vectorises at each level's width. With fused multiply-adds switched off below, every level
 * computes the same IoUs bit for bit. */
#ifndef NN_LEVEL /* ---- common to every level ---- */
#include "nn_internal.h"
#include <math.h>
#include <string.h>

/* torchvision computes x1 = cx - 0.5*w and inter / ((a1 + a2) - inter) with separate roundings: fusing
 * them into FMAs would move IoUs that sit exactly on an NMS threshold to the other side. */
#pragma STDC FP_CONTRACT OFF

static inline float min_f(float a, float b) { return a < b ? a : b; }
static inline float max_f(float a, float b) { return a > b ? a : b; }

/* ---- conversion ------------------------------------------------------------------------------------ */

static inline void to_xyxy(float c[4], const float *box, nn_box_format format) {
    float p = box[0], q = box[1], r = box[2], s = box[3];
    switch (format) {
    case NN_BOX_CXCYWH:
        c[0] = p - 0.5f * r; c[1] = q - 0.5f * s; c[2] = p + 0.5f * r; c[3] = q + 0.5f * s;
        break;
    case NN_BOX_XYWH:
        c[0] = p; c[1] = q; c[2] = p + r; c[3] = q + s;
        break;
    default:
        c[0] = p; c[1] = q; c[2] = r; c[3] = s;
    }
}

static inline void from_xyxy(float *box, const float c[4], nn_box_format format) {
    float x1 = c[0], y1 = c[1], x2 = c[2], y2 = c[3];
    switch (format) {
    case NN_BOX_CXCYWH:
        box[0] = (x1 + x2) / 2; box[1] = (y1 + y2) / 2; box[2] = x2 - x1; box[3] = y2 - y1;
        break;
    case NN_BOX_XYWH:
        box[0] = x1; box[1] = y1; box[2] = x2 - x1; box[3] = y2 - y1;
        break;
    default:
        box[0] = x1; box[1] = y1; box[2] = x2; box[3] = y2;
    }
}

/* out, in (n, 4). */
void nn_box_convert(float *out, const float *in, size_t n, nn_box_format from, nn_box_format to) {
    assert((out && in) || n == 0);
    for (size_t i = 0; i < n; i++) {
        float c[4];
        to_xyxy(c, in + 4 * i, from);
        from_xyxy(out + 4 * i, c, to);
    }
}

/* Corners with an inverted axis collapsed onto its first coordinate, and the area; NaN anywhere makes
 * the area NaN (a NaN x1 or x2 survives the comparison and the subtraction). */
static inline float canonical(float c[4], const float *box, nn_box_format format) {
    to_xyxy(c, box, format);
    if (c[2] < c[0]) c[2] = c[0];
    if (c[3] < c[1]) c[3] = c[1];
    return (c[2] - c[0]) * (c[3] - c[1]);
}

/* ---- IoU / GIoU of one pair, shared by every kernel and reference ----------------------------------- */

/* IoU of canonical corners (a, area_a) and (bx1..by2, area_b), torchvision's order of operations; the
 * union is returned through *uni for GIoU. */
static inline float iou_pair(float ax1, float ay1, float ax2, float ay2, float area_a,
                             float bx1, float by1, float bx2, float by2, float area_b, float *uni) {
    float w = min_f(ax2, bx2) - max_f(ax1, bx1);
    float h = min_f(ay2, by2) - max_f(ay1, by1);
    w = w > 0 ? w : 0;
    h = h > 0 ? h : 0;
    float inter = w * h;
    float u = (area_a + area_b) - inter;
    *uni = u;
    float iou = inter / u;
    return u == 0 ? 0.0f : iou;  /* two zero-area boxes: 0, not 0/0 (a NaN union stays NaN) */
}

static inline float giou_pair(float ax1, float ay1, float ax2, float ay2, float area_a,
                              float bx1, float by1, float bx2, float by2, float area_b) {
    float u;
    float iou = iou_pair(ax1, ay1, ax2, ay2, area_a, bx1, by1, bx2, by2, area_b, &u);
    float w = max_f(ax2, bx2) - min_f(ax1, bx1);
    float h = max_f(ay2, by2) - min_f(ay1, by1);
    w = w > 0 ? w : 0;
    h = h > 0 ? h : 0;
    float enclosing = w * h;
    float g = iou - (enclosing - u) / enclosing;
    return enclosing == 0 ? iou : g;
}

/* ---- IoU matrix ------------------------------------------------------------------------------------ */

/* The second set as structure of arrays: five runs of m floats in the workspace. */
typedef struct { float *x1, *y1, *x2, *y2, *area; } box_columns;

static box_columns columns_in(float *workspace, size_t m) {
    box_columns b = {workspace, workspace + m, workspace + 2 * m, workspace + 3 * m, workspace + 4 * m};
    return b;
}

size_t nn_box_iou_workspace_size(size_t m) { return 5 * m; }

/* IoU matrices at least this large (bytes) are written with non-temporal stores: far beyond the caches,
 * so caching the lines only costs reading them in first. */
#define STREAM_MIN_BYTES ((size_t)32 << 20)

static inline void nn_store_fence(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_sfence();
#else
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}

/* iou (n, m); a (n, 4); b (m, 4). */
void nn_box_iou_ref(float *iou, const float *a, const float *b, size_t n, size_t m, nn_box_format format,
                    int generalized) {
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < m; j++) {
            float p[4], q[4];
            float area_p = canonical(p, a + 4 * i, format), area_q = canonical(q, b + 4 * j, format), u;
            iou[i * m + j] = generalized
                ? giou_pair(p[0], p[1], p[2], p[3], area_p, q[0], q[1], q[2], q[3], area_q)
                : iou_pair(p[0], p[1], p[2], p[3], area_p, q[0], q[1], q[2], q[3], area_q, &u);
        }
}

/* ---- NMS ------------------------------------------------------------------------------------------- */

/* Whether box i takes part at all. */
static inline int participates(float score, const nn_nms_params *p) {
    return !p->use_score_threshold || score > p->score_threshold;
}

/* The largest float t with (x > t) == ((double)x > threshold) for every float x: the threshold itself when
 * it is a float, else the float just below it. torchvision compares the float IoU with a double
 * threshold (0.3 is not a float); this keeps that comparison while the vector loops stay in float. */
static float float_threshold(double threshold) {
    float t = (float)threshold;
    if ((double)t > threshold) t = nextafterf(t, -INFINITY);
    return t;
}

/* A key whose ascending order is decreasing score: NaN first (PyTorch sorts NaN above every number),
 * -0 equal to +0. */
static inline uint32_t score_key(float s) {
    if (s != s) return 0;
    if (s == 0) s = 0.0f;
    uint32_t u;
    memcpy(&u, &s, sizeof u);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);  /* ascending order of the floats */
    return ~u;
}

static inline uint64_t label_key(int64_t label) { return (uint64_t)label ^ 0x8000000000000000ull; }

enum { SCORE_BYTES = 4, LABEL_BYTES = 8, RADIX = 256 };

static inline unsigned key_byte(const float *scores, const int64_t *labels, int32_t index, int pass) {
    if (pass < SCORE_BYTES) return (score_key(scores[index]) >> (8 * pass)) & 0xFF;
    return (unsigned)(label_key(labels[index]) >> (8 * (pass - SCORE_BYTES))) & 0xFF;
}

/* Stable LSD radix sort of idx (count) by score key, then by label key when labels are given: the result
 * is ordered by label, then decreasing score, then index. Passes whose byte is the same for every element
 * are skipped. by_score receives the order after the score passes. Returns the buffer holding the result
 * (idx or tmp). */
static int32_t *radix_order(int32_t *idx, int32_t *tmp, int32_t *by_score, const float *scores,
                            const int64_t *labels, size_t count) {
    int passes = labels ? SCORE_BYTES + LABEL_BYTES : SCORE_BYTES;
    size_t hist[SCORE_BYTES + LABEL_BYTES][RADIX];
    memset(hist, 0, sizeof hist);
    for (size_t k = 0; k < count; k++)
        for (int pass = 0; pass < passes; pass++) hist[pass][key_byte(scores, labels, idx[k], pass)]++;
    int32_t *src = idx, *dst = tmp;
    for (int pass = 0; pass < passes; pass++) {
        if (pass == SCORE_BYTES) memcpy(by_score, src, count * sizeof *src);
        if (count == 0 || hist[pass][key_byte(scores, labels, src[0], pass)] == count) continue;
        size_t offset[RADIX], sum = 0;
        for (int b = 0; b < RADIX; b++) { offset[b] = sum; sum += hist[pass][b]; }
        for (size_t k = 0; k < count; k++) dst[offset[key_byte(scores, labels, src[k], pass)]++] = src[k];
        int32_t *t = src; src = dst; dst = t;
    }
    if (!labels) memcpy(by_score, src, count * sizeof *src);
    return src;
}

/* Candidates are compared with the kept boxes in blocks of this many, with an early exit between blocks
 * (a multiple of every level's vector width times the vectoriser's interleave of 4). */
enum { NMS_BLOCK = 64 };

/* Workspace layout, in floats: idx, tmp, by_score, segment starts (n + 1), segment counts (int32 each),
 * then the five columns, then one byte per box of kept flags. */
size_t nn_nms_workspace_size(size_t n) { return 5 * n + 1 + 5 * n + (n + 3) / 4; }

/* Whether a is visited before b (stable descending order with NaN first); ties are broken by the
 * caller's insertion order. */
static int visited_before(float a, float b) {
    if (a != a) return b == b;
    if (b != b) return 0;
    return a > b;
}

/* keep (n); boxes (n, 4); scores (n); labels (n) or null; workspace as nn_nms (only 2n floats used). */
size_t nn_nms_ref(int64_t *keep, const float *boxes, const float *scores, const int64_t *labels, size_t n,
                  const nn_nms_params *p, float *workspace) {
    int32_t *order = (int32_t *)workspace;
    uint8_t *suppressed = (uint8_t *)(order + n);
    size_t m = 0;
    /* Insertion sort: stable, so equal scores keep increasing index order. */
    for (size_t i = 0; i < n; i++) {
        if (!participates(scores[i], p)) continue;
        size_t k = m++;
        while (k > 0 && visited_before(scores[i], scores[order[k - 1]])) { order[k] = order[k - 1]; k--; }
        order[k] = (int32_t)i;
    }
    memset(suppressed, 0, m);
    size_t count = 0;
    for (size_t k = 0; k < m; k++) {
        if (suppressed[k]) continue;
        if (p->max_keep >= 0 && count == (size_t)p->max_keep) break;
        keep[count++] = order[k];
        float a[4], area_a = canonical(a, boxes + 4 * (size_t)order[k], p->format);
        for (size_t l = k + 1; l < m; l++) {
            if (suppressed[l] || (labels && labels[order[l]] != labels[order[k]])) continue;
            float b[4], area_b = canonical(b, boxes + 4 * (size_t)order[l], p->format), u;
            float iou = iou_pair(a[0], a[1], a[2], a[3], area_a, b[0], b[1], b[2], b[3], area_b, &u);
            if ((double)iou > p->iou_threshold) suppressed[l] = 1;
        }
    }
    return count;
}

#define NN_LEVEL_SOURCE "boxes.c"
#include "levels.h"

/* iou (n, m); a (n, 4); b (m, 4); workspace 5m floats. */
void nn_box_iou(float *iou, const float *a, const float *b, size_t n, size_t m, nn_box_format format,
                int generalized, float *workspace) {
    assert((iou && a && b && workspace) || n == 0 || m == 0);
    if (n == 0 || m == 0) return;
    box_columns cols = columns_in(workspace, m);
    for (size_t j = 0; j < m; j++) {
        float c[4];
        cols.area[j] = canonical(c, b + 4 * j, format);
        cols.x1[j] = c[0]; cols.y1[j] = c[1]; cols.x2[j] = c[2]; cols.y2[j] = c[3];
    }
    NN_DISPATCH(iou_matrix)(iou, a, cols, n, m, format, generalized);
}

/* keep (n); boxes (n, 4); scores (n); labels (n) or null; workspace nn_nms_workspace_size(n) floats. */
size_t nn_nms(int64_t *keep, const float *boxes, const float *scores, const int64_t *labels, size_t n,
              const nn_nms_params *p, float *workspace) {
    assert((keep && boxes && scores && workspace) || n == 0);
    if (n == 0 || p->max_keep == 0) return 0;
    int32_t *idx = (int32_t *)workspace, *tmp = idx + n, *by_score = tmp + n, *seg_start = by_score + n;
    int32_t *seg_kept = seg_start + n + 1;
    box_columns s = columns_in(workspace + 5 * n + 1, n);
    uint8_t *flags = (uint8_t *)(workspace + 10 * n + 1);

    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        if (participates(scores[i], p)) idx[count++] = (int32_t)i;
    if (count == 0) return 0;
    int32_t *order = radix_order(idx, tmp, by_score, scores, labels, count);

    size_t segments = 0;
    for (size_t k = 0; k < count; k++)
        if (k == 0 || (labels && labels[order[k]] != labels[order[k - 1]])) seg_start[segments++] = (int32_t)k;
    seg_start[segments] = (int32_t)count;
    for (size_t k = 0; k < count; k++) {
        float c[4];
        s.area[k] = canonical(c, boxes + 4 * (size_t)order[k], p->format);
        s.x1[k] = c[0]; s.y1[k] = c[1]; s.x2[k] = c[2]; s.y2[k] = c[3];
    }

    NN_DISPATCH(nms_segments)(seg_kept, s, order, seg_start, segments, count, float_threshold(p->iou_threshold), p->max_keep);

    size_t cap = p->max_keep < 0 ? count : (size_t)p->max_keep, out = 0;
    if (segments == 1) {
        for (size_t k = 0; k < (size_t)seg_kept[0] && out < cap; k++) keep[out++] = order[k];
        return out;
    }
    /* Labels: flag the kept boxes, then list them in the global score order. */
    memset(flags, 0, n);
    for (size_t g = 0; g < segments; g++)
        for (size_t k = 0; k < (size_t)seg_kept[g]; k++) flags[order[seg_start[g] + k]] = 1;
    for (size_t k = 0; k < count && out < cap; k++)
        if (flags[by_score[k]]) keep[out++] = by_score[k];
    return out;
}

#else /* ---- per instruction level (levels.h compiles this part once per level) ---- */

/* out (m) = IoU or GIoU of one canonical box against every box of b. */
static void NN_L(iou_row)(float *out, const float a[4], float area_a, box_columns b, size_t m, int generalized) {
    const float *bx1 = b.x1, *by1 = b.y1, *bx2 = b.x2, *by2 = b.y2, *bar = b.area;
    if (generalized) {
        for (size_t j = 0; j < m; j++)
            out[j] = giou_pair(a[0], a[1], a[2], a[3], area_a, bx1[j], by1[j], bx2[j], by2[j], bar[j]);
    } else {
        for (size_t j = 0; j < m; j++) {
            float u;
            out[j] = iou_pair(a[0], a[1], a[2], a[3], area_a, bx1[j], by1[j], bx2[j], by2[j], bar[j], &u);
        }
    }
}

/* out (m) = IoU of one canonical box against every box of b, as iou_row computes it, but written with
 * non-temporal stores: a matrix far larger than the caches is only written, and streaming it skips
 * reading every line in before overwriting it. Lanes up to the vector alignment of out go one at a time. */
static void NN_L(iou_row_streamed)(float *out, const float a[4], float area_a, box_columns b, size_t m) {
    const float *bx1 = b.x1, *by1 = b.y1, *bx2 = b.x2, *by2 = b.y2, *bar = b.area;
    size_t misaligned = (size_t)((uintptr_t)out % (VW * sizeof(float))) / sizeof(float);
    size_t j = 0, lead = misaligned ? VW - misaligned : 0;
    float u;
    for (; j < lead && j < m; j++) out[j] = iou_pair(a[0], a[1], a[2], a[3], area_a, bx1[j], by1[j], bx2[j], by2[j], bar[j], &u);
    const vf ax1 = vsplat(a[0]), ay1 = vsplat(a[1]), ax2 = vsplat(a[2]), ay2 = vsplat(a[3]), aa = vsplat(area_a);
    const vf zero = vsplat(0);
    for (; j + VW <= m; j += VW) {
        /* iou_pair's steps and roundings, lane by lane. */
        vf x2 = vload(bx2 + j), x1 = vload(bx1 + j), y2 = vload(by2 + j), y1 = vload(by1 + j);
        vf w = vselect(ax2 < x2, ax2, x2) - vselect(ax1 > x1, ax1, x1);
        vf h = vselect(ay2 < y2, ay2, y2) - vselect(ay1 > y1, ay1, y1);
        w = vselect(w > zero, w, zero);
        h = vselect(h > zero, h, zero);
        vf inter = w * h;
        vf uni = (aa + vload(bar + j)) - inter;
        vf iou = inter / uni;
        __builtin_nontemporal_store(vselect(uni == zero, zero, iou), (vf *)(out + j));
    }
    for (; j < m; j++) out[j] = iou_pair(a[0], a[1], a[2], a[3], area_a, bx1[j], by1[j], bx2[j], by2[j], bar[j], &u);
}

/* One row of the matrix: box i of a against all of b. */
static void NN_L(iou_matrix_row)(float *iou, const float *a, size_t i, box_columns b, size_t m, nn_box_format format,
                                 int generalized, int streamed) {
    float c[4];
    float area = canonical(c, a + 4 * i, format);
    if (streamed && !generalized) NN_L(iou_row_streamed)(iou + i * m, c, area, b, m);
    else NN_L(iou_row)(iou + i * m, c, area, b, m, generalized);
}

/* iou (n, m); a (n, 4); cols the second set's columns (m). */
static void NN_L(iou_matrix)(float *iou, const float *a, box_columns cols, size_t n, size_t m, nn_box_format format,
                             int generalized) {
    long rows = (long)n;
    int streamed = n * m * sizeof(float) >= STREAM_MIN_BYTES && (uintptr_t)iou % sizeof(float) == 0;
    NN_PARALLEL_FOR_IF(n * m >= NN_PARALLEL_MIN)
    for (long i = 0; i < rows; i++) NN_L(iou_matrix_row)(iou, a, (size_t)i, cols, m, format, generalized, streamed);
    /* Non-temporal stores are weakly ordered: fence them before the caller reads the matrix. The parallel
     * region's closing barrier orders each thread's stores for the others. */
    if (streamed) nn_store_fence();
}

/* Whether any of the kept boxes [from, to) of s overlaps the candidate by more than t. */
static inline int NN_L(overlaps_kept)(box_columns s, size_t from, size_t to, float x1, float y1, float x2, float y2,
                                float area, float t) {
    const float *kx1 = s.x1, *ky1 = s.y1, *kx2 = s.x2, *ky2 = s.y2, *kar = s.area;
    for (size_t base = from; base < to; base += NMS_BLOCK) {
        size_t end = base + NMS_BLOCK < to ? base + NMS_BLOCK : to;
        int hit = 0;
        for (size_t j = base; j < end; j++) {
            float w = min_f(kx2[j], x2) - max_f(kx1[j], x1);
            float h = min_f(ky2[j], y2) - max_f(ky1[j], y1);
            w = w > 0 ? w : 0;
            h = h > 0 ? h : 0;
            float inter = w * h;
            /* No zero-union fix needed: 0/0 is NaN, and NaN > t is false like 0 > t. */
            float iou = inter / ((kar[j] + area) - inter);
            hit |= iou > t;
        }
        if (hit) return 1;
    }
    return 0;
}

/* Greedy NMS over one label's segment [start, end) of the sorted columns s and indices idx. Kept boxes
 * are compacted to the front of the segment (a kept box's slot is never ahead of the candidate being
 * read), so the kept set stays contiguous for the vector loop. Returns how many were kept. */
static size_t NN_L(nms_segment)(box_columns s, int32_t *idx, size_t start, size_t end, float t, long cap) {
    size_t kept = 0;
    for (size_t k = start; k < end && (cap < 0 || kept < (size_t)cap); k++) {
        float x1 = s.x1[k], y1 = s.y1[k], x2 = s.x2[k], y2 = s.y2[k], area = s.area[k];
        if (NN_L(overlaps_kept)(s, start, start + kept, x1, y1, x2, y2, area, t)) continue;
        size_t d = start + kept++;
        s.x1[d] = x1; s.y1[d] = y1; s.x2[d] = x2; s.y2[d] = y2; s.area[d] = area;
        idx[d] = idx[k];
    }
    return kept;
}

/* seg_kept (segments) = the kept count of each label's segment [seg_start[g], seg_start[g + 1]) of the
 * sorted columns s and indices order (count boxes in all); one thread owns each segment. */
static void NN_L(nms_segments)(int32_t *seg_kept, box_columns s, int32_t *order, const int32_t *seg_start,
                               size_t segments, size_t count, float t, long cap) {
    long nseg = (long)segments;
    NN_PARALLEL_FOR_IF(nseg > 1 && count >= 256)
    for (long g = 0; g < nseg; g++)
        seg_kept[g] = (int32_t)NN_L(nms_segment)(s, order, (size_t)seg_start[g], (size_t)seg_start[g + 1], t, cap);
}

#endif
