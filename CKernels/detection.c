/* Detection kernels: the masked localisation / YOLO loss and YOLO decoding (semantics in
 * include/detection.h). Rows are independent: each parallel loop hands whole rows to one thread. */
#include "nn_internal.h"
#include <math.h>

static inline float sigmoid(float x) {
    return x >= 0 ? 1.0f / (1.0f + expf(-x)) : expf(x) / (1.0f + expf(x));
}

/* The largest of n values (n >= 1). */
static inline float row_max(const float *z, int n) {
    float m = z[0];
    for (int c = 1; c < n; c++) m = z[c] > m ? z[c] : m;
    return m;
}

/* log sum exp of z (n >= 1), shifted by the maximum. */
static inline float log_sum_exp(const float *z, int n) {
    float m = row_max(z, n);
    double s = 0;
    for (int c = 0; c < n; c++) s += exp((double)(z[c] - m));
    return m + (float)log(s);
}

static inline int row_width(const nn_detection_loss_params *p) { return 1 + p->coords + p->classes; }

/* The loss of one row: pred, target (1 + P + C). */
static float detection_row_loss(const float *pred, const float *t, const nn_detection_loss_params *p) {
    float z = pred[0], pc = t[0];
    double loss;
    if (p->objectness == NN_OBJECTNESS_LOGISTIC) loss = fmaxf(z, 0) - z * pc + log1pf(expf(-fabsf(z)));
    else loss = (double)(z - pc) * (z - pc);
    loss *= pc != 0 ? p->object_weight : p->no_object_weight;
    if (pc == 0) return (float)loss;
    double coords = 0;
    for (int k = 0; k < p->coords; k++) {
        float v = k < p->sigmoid_coords ? sigmoid(pred[1 + k]) : pred[1 + k];
        float d = v - t[1 + k];
        coords += (double)d * d;
    }
    loss += p->coord_weight * coords;
    const float *zc = pred + 1 + p->coords, *tc = t + 1 + p->coords;
    double classes = 0;
    if (p->classes > 0 && p->class_loss == NN_CLASSES_SOFTMAX) {
        float lse = log_sum_exp(zc, p->classes);
        for (int c = 0; c < p->classes; c++) classes -= (double)tc[c] * (zc[c] - lse);
    } else {
        for (int c = 0; c < p->classes; c++) classes += (double)(zc[c] - tc[c]) * (zc[c] - tc[c]);
    }
    return (float)(loss + p->class_weight * classes);
}

/* d loss / d pred of one row, times s: dpred, pred, target (1 + P + C). */
static void detection_row_backward(float *dpred, const float *pred, const float *t, float s,
                                   const nn_detection_loss_params *p) {
    int d = row_width(p);
    float z = pred[0], pc = t[0];
    float w = pc != 0 ? p->object_weight : p->no_object_weight;
    dpred[0] = s * w * (p->objectness == NN_OBJECTNESS_LOGISTIC ? sigmoid(z) - pc : 2 * (z - pc));
    if (pc == 0) {
        for (int k = 1; k < d; k++) dpred[k] = 0;
        return;
    }
    for (int k = 0; k < p->coords; k++) {
        float x = pred[1 + k];
        if (k < p->sigmoid_coords) {
            float v = sigmoid(x);
            dpred[1 + k] = s * p->coord_weight * 2 * (v - t[1 + k]) * v * (1 - v);
        } else {
            dpred[1 + k] = s * p->coord_weight * 2 * (x - t[1 + k]);
        }
    }
    const float *zc = pred + 1 + p->coords, *tc = t + 1 + p->coords;
    float *dc = dpred + 1 + p->coords;
    if (p->classes > 0 && p->class_loss == NN_CLASSES_SOFTMAX) {
        /* d/dz of -sum t log softmax(z) = softmax(z) * sum(t) - t (sum(t) = 1 for a one-hot target). */
        float lse = log_sum_exp(zc, p->classes), total = 0;
        for (int c = 0; c < p->classes; c++) total += tc[c];
        for (int c = 0; c < p->classes; c++) dc[c] = s * p->class_weight * (expf(zc[c] - lse) * total - tc[c]);
    } else {
        for (int c = 0; c < p->classes; c++) dc[c] = s * p->class_weight * 2 * (zc[c] - tc[c]);
    }
}

/* loss (rows); pred, target (rows, 1 + P + C). */
void nn_detection_loss_forward(float *loss, const float *pred, const float *target, size_t rows,
                               const nn_detection_loss_params *p) {
    assert(p->coords >= 0 && p->classes >= 0 && p->sigmoid_coords >= 0 && p->sigmoid_coords <= p->coords);
    size_t d = (size_t)row_width(p);
    long n = (long)rows;
    NN_PARALLEL_FOR_IF(rows * d >= NN_PARALLEL_MIN)
    for (long r = 0; r < n; r++) loss[r] = detection_row_loss(pred + r * d, target + r * d, p);
}

/* dpred, pred, target (rows, 1 + P + C); g (rows) or null. */
void nn_detection_loss_backward(float *dpred, const float *g, const float *pred, const float *target, float scale,
                                size_t rows, const nn_detection_loss_params *p) {
    size_t d = (size_t)row_width(p);
    long n = (long)rows;
    NN_PARALLEL_FOR_IF(rows * d >= NN_PARALLEL_MIN)
    for (long r = 0; r < n; r++)
        detection_row_backward(dpred + r * d, pred + r * d, target + r * d, scale * (g ? g[r] : 1.0f), p);
}

/* One anchor slot: slot is its row index; boxes (4), scores (C), raw (5 + C). */
static void yolo_decode_slot(float *box, float *scores, const float *raw, size_t slot, const nn_yolo_decode_params *p) {
    int a = (int)(slot % (size_t)p->anchors);
    size_t cell = slot / (size_t)p->anchors;
    int j = (int)(cell % (size_t)p->grid_w), i = (int)(cell / (size_t)p->grid_w % (size_t)p->grid_h);
    float tx = raw[1], ty = raw[2], th = raw[3], tw = raw[4];
    if (p->activations) { tx = sigmoid(tx); ty = sigmoid(ty); }
    float cx = ((float)j + tx) / (float)p->grid_w, cy = ((float)i + ty) / (float)p->grid_h;
    float aw = p->anchor_sizes[2 * a], ah = p->anchor_sizes[2 * a + 1];
    float w = p->log_sizes ? aw * expf(tw) : aw * tw, h = p->log_sizes ? ah * expf(th) : ah * th;
    box[0] = cx - 0.5f * w; box[1] = cy - 0.5f * h; box[2] = cx + 0.5f * w; box[3] = cy + 0.5f * h;
    float objectness = p->activations ? sigmoid(raw[0]) : raw[0];
    const float *zc = raw + 5;
    if (p->activations && p->classes > 0) {
        float lse = log_sum_exp(zc, p->classes);
        for (int c = 0; c < p->classes; c++) scores[c] = objectness * expf(zc[c] - lse);
    } else {
        for (int c = 0; c < p->classes; c++) scores[c] = objectness * zc[c];
    }
}

/* boxes (rows, 4); scores (rows, C); raw (rows, 5 + C); rows = images * grid_h * grid_w * anchors. */
void nn_yolo_decode(float *boxes, float *scores, const float *raw, size_t images, const nn_yolo_decode_params *p) {
    assert(p->grid_h >= 1 && p->grid_w >= 1 && p->anchors >= 1 && p->classes >= 0);
    size_t rows = images * (size_t)p->grid_h * (size_t)p->grid_w * (size_t)p->anchors, d = 5 + (size_t)p->classes;
    long n = (long)rows;
    NN_PARALLEL_FOR_IF(rows * d >= NN_PARALLEL_MIN)
    for (long r = 0; r < n; r++) yolo_decode_slot(boxes + 4 * r, scores + r * (size_t)p->classes, raw + r * d, (size_t)r, p);
}
