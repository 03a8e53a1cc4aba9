/* Detection kernels: the masked localisation / YOLO loss over target vectors, and YOLO grid decoding.
 *
 * A detection vector has D = 1 + P + C values: objectness pc, P coordinates, C class scores. Single-object
 * localisation uses P = 4 (bx, by, bh, bw), landmarks P = 2k, a YOLO anchor slot P = 4 (tx, ty, th, tw).
 * Targets hold pc = 1 (an object: every term counts) or pc = 0 (no object: only the objectness term).
 *
 * Loss of one row, for prediction p and target t:
 *   objectness   w_obj (or w_noobj when t[0] = 0) times
 *                  squared: (p[0] - t[0])^2
 *                  logistic: max(z, 0) - z t[0] + log(1 + e^-|z|)   (binary cross-entropy on the logit z = p[0])
 *   when t[0] = 1, also
 *   coordinates  w_coord * sum_k (f_k(p[1+k]) - t[1+k])^2, f_k the sigmoid for k < sigmoid_coords, else the identity
 *   classes      w_class times
 *                  squared: sum_c (p[1+P+c] - t[1+P+c])^2
 *                  softmax: -sum_c t[1+P+c] log softmax(p[1+P..])_c   (cross-entropy against a one-hot or soft target)
 * With all weights 1, squared objectness and squared classes this is the plain localisation loss: the sum
 * of squared errors over every component when pc = 1, only (pc - p^c)^2 when pc = 0.
 */
#ifndef NEURON_DETECTION_H
#define NEURON_DETECTION_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { NN_OBJECTNESS_SQUARED = 0, NN_OBJECTNESS_LOGISTIC = 1 } nn_objectness_loss;
typedef enum { NN_CLASSES_SQUARED = 0, NN_CLASSES_SOFTMAX = 1 } nn_class_loss;

typedef struct {
    int coords;                     /* P >= 0 */
    int classes;                    /* C >= 0 */
    int sigmoid_coords;             /* 0 <= sigmoid_coords <= P */
    nn_objectness_loss objectness;
    nn_class_loss class_loss;
    float coord_weight, object_weight, no_object_weight, class_weight;
} nn_detection_loss_params;

/* loss (rows) = the loss of each row of pred, target (rows, 1 + P + C). */
void nn_detection_loss_forward(float *loss, const float *pred, const float *target, size_t rows,
                               const nn_detection_loss_params *p);
/* dpred (rows, 1 + P + C) is WRITTEN: scale * g[row] * d loss[row] / d pred, g (rows) or null for 1. */
void nn_detection_loss_backward(float *dpred, const float *g, const float *pred, const float *target, float scale,
                                size_t rows, const nn_detection_loss_params *p);

/* YOLO grid decoding. Rows are anchor slots in the order (image, grid row, grid column, anchor), each
 * 5 + C values [pc, tx, ty, th, tw, classes]. For the slot of grid cell (i, j) and anchor a (width aw,
 * height ah, image-relative):
 *   cx = (j + sx(tx)) / grid_w,  cy = (i + sx(ty)) / grid_h,
 *   w = aw * e^tw, h = ah * e^th  (log_sizes)   or   w = aw * tw, h = ah * th  (ratios),
 * written as image-relative corners (cx - w/2, cy - h/2, cx + w/2, cy + h/2) into boxes (rows, 4), and
 * scores (rows, C) = so(pc) * class probability. With activations (raw network outputs) sx and so are the
 * sigmoid and class probabilities the softmax of the class scores; without (encoded targets) sx and so are
 * the identity and the class values are used as they are. */
typedef struct {
    int grid_h, grid_w, anchors, classes;
    const float *anchor_sizes;      /* (anchors, 2): width, height, image-relative */
    int log_sizes;                  /* 1: tw = log(w / aw); 0: tw = w / aw */
    int activations;
} nn_yolo_decode_params;

/* boxes (rows, 4), scores (rows, C), raw (rows, 5 + C) with rows = images * grid_h * grid_w * anchors. */
void nn_yolo_decode(float *boxes, float *scores, const float *raw, size_t images, const nn_yolo_decode_params *p);

#ifdef __cplusplus
}
#endif
#endif
