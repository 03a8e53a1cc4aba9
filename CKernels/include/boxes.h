/* Box kernels: format conversion, pairwise IoU / generalized IoU, and greedy non-maximum suppression,
 * torchvision's box_convert, box_iou, generalized_box_iou, nms and batched_nms.
 *
 * A box is 4 float32 values in one of the formats below (one row of a (N, 4) array):
 *   NN_BOX_XYXY    (x1, y1, x2, y2)  corners, torchvision's 'xyxy'
 *   NN_BOX_CXCYWH  (cx, cy, w, h)    centre and size, 'cxcywh'
 *   NN_BOX_XYWH    (x, y, w, h)      top-left corner and size, 'xywh'
 * Conversions are torchvision's, through corners: x1 = cx - 0.5*w, x2 = cx + 0.5*w, cx = (x1 + x2)/2,
 * w = x2 - x1, x2 = x + w (likewise y). Every IoU is computed from corners with torchvision's operation
 * order (and no fused multiply-adds), so results on well-formed boxes are bit-identical to torchvision's.
 *
 * IoU(a, b) = inter / union with inter = max(0, min(ax2, bx2) - max(ax1, bx1)) * max(0, min(ay2, by2) -
 * max(ay1, by1)), area = (x2 - x1)*(y2 - y1) (no +1), union = (area_a + area_b) - inter.
 * GIoU(a, b) = IoU - (C - union)/C with C the area of the smallest box enclosing both.
 *
 * Degenerate boxes (torchvision leaves these undefined or NaN; Neuron defines them):
 *   - An inverted box (x2 < x1 or y2 < y1) counts as a box of zero extent on that axis at x1 (y1):
 *     x2 is raised to x1 before anything else. So no area is ever negative.
 *   - A zero-area box against a box of positive area has IoU 0 (as in torchvision); two zero-area boxes
 *     (union 0) have IoU 0, not 0/0. GIoU with an enclosing area C of 0 is the IoU (the penalty is 0).
 *   - NaN in any coordinate of a box makes its area NaN, so every IoU and GIoU with it is NaN. In NMS a
 *     NaN IoU never exceeds the threshold: such a box suppresses nothing and is never suppressed.
 *   - Infinite coordinates follow IEEE arithmetic (an infinite box against a finite one has IoU 0).
 */
#ifndef NEURON_BOXES_H
#define NEURON_BOXES_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { NN_BOX_XYXY = 0, NN_BOX_CXCYWH = 1, NN_BOX_XYWH = 2 } nn_box_format;

/* out (n, 4) in format `to` = in (n, 4) in format `from`. out may alias in. */
void nn_box_convert(float *out, const float *in, size_t n, nn_box_format from, nn_box_format to);

/* Floats of scratch nn_box_iou needs for m boxes in the second set (5 * m). */
size_t nn_box_iou_workspace_size(size_t m);
/* iou (n, m)[i, j] = IoU(a[i], b[j]) (GIoU when generalized != 0) for a (n, 4) and b (m, 4), both in
 * `format`. workspace holds nn_box_iou_workspace_size(m) floats. iou must not alias a or b. */
void nn_box_iou(float *iou, const float *a, const float *b, size_t n, size_t m, nn_box_format format,
                int generalized, float *workspace);
/* One pair at a time from the raw rows: the reference nn_box_iou is tested against (bit-identical). */
void nn_box_iou_ref(float *iou, const float *a, const float *b, size_t n, size_t m, nn_box_format format,
                    int generalized);

/* Greedy non-maximum suppression.
 *
 * Boxes are visited in decreasing score order; equal scores are visited lowest index first (a stable
 * descending sort, as torchvision's CPU kernel does), -0 equals +0, and NaN scores rank above every
 * number (PyTorch's sort order). A visited box that no kept box suppresses is kept; a kept box suppresses
 * every later box of the same label whose IoU with it is strictly greater than iou_threshold (IoU equal
 * to the threshold survives). With labels (batched NMS) boxes of different labels never suppress each
 * other. The kept indices come out in visiting order (decreasing score, ties lowest index first) across
 * all labels, at most max_keep of them: the first max_keep of what an uncapped run keeps.
 * With use_score_threshold, boxes whose score is not strictly greater than score_threshold (NaN
 * included) take no part at all. */
typedef struct {
    nn_box_format format;
    double iou_threshold;       /* in [0, 1] (the Swift layer checks); double, as torchvision compares */
    int use_score_threshold;    /* 0: every box takes part */
    float score_threshold;
    long max_keep;              /* < 0: no cap */
} nn_nms_params;

/* Floats of scratch nn_nms and nn_nms_ref need for n boxes. */
size_t nn_nms_workspace_size(size_t n);
/* keep (n) receives the kept indices; returns how many. boxes (n, 4) in p->format, scores (n), labels (n)
 * or null for one class. workspace holds nn_nms_workspace_size(n) floats.
 * Cost: O(n) to sort (radix), then every candidate is compared with the boxes kept so far in its label
 * only, never with the suppressed ones: O(n * kept) IoUs instead of torchvision's O(n^2) worst case, and
 * never an n x n matrix. Labels are processed in parallel. */
size_t nn_nms(int64_t *keep, const float *boxes, const float *scores, const int64_t *labels, size_t n,
              const nn_nms_params *p, float *workspace);
/* torchvision's algorithm as written: a comparison sort, then each kept box suppresses every later box
 * of its label. The reference nn_nms is tested against. Same buffers and contract. */
size_t nn_nms_ref(int64_t *keep, const float *boxes, const float *scores, const int64_t *labels, size_t n,
                  const nn_nms_params *p, float *workspace);

#ifdef __cplusplus
}
#endif
#endif
