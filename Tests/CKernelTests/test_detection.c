/* Detection kernels: hand-computed localisation losses in both variants, their gradients against central
 * finite differences (YOLO weights and sigmoid coordinates included), and YOLO decoding of one slot. */
#include "ctest.h"

static nn_detection_loss_params plain(int coords, int classes) {
    nn_detection_loss_params p = {coords, classes, 0, NN_OBJECTNESS_SQUARED, NN_CLASSES_SQUARED, 1, 1, 1, 1};
    return p;
}

static void test_known(void) {
    /* [pc, bx, by, bh, bw, c1, c2] */
    const float pred[7] = {0.8f, 0.1f, 0.2f, 0.3f, 0.4f, 0.6f, 0.4f};
    const float obj[7] = {1, 0.2f, 0.2f, 0.5f, 0.4f, 1, 0};
    const float none[7] = {0, 0.9f, 0.9f, 0.9f, 0.9f, 0, 1};   /* everything but pc is ignored */
    nn_detection_loss_params p = plain(4, 2);
    float loss;
    nn_detection_loss_forward(&loss, pred, obj, 1, &p);
    CHECK(fabsf(loss - (0.04f + 0.01f + 0 + 0.04f + 0 + 0.16f + 0.16f)) < 1e-6f);
    nn_detection_loss_forward(&loss, pred, none, 1, &p);
    CHECK(fabsf(loss - 0.64f) < 1e-6f);
    float d[7];
    nn_detection_loss_backward(d, NULL, pred, none, 1, 1, &p);
    CHECK(fabsf(d[0] - 1.6f) < 1e-6f && d[1] == 0 && d[4] == 0 && d[6] == 0);

    /* The better variant: logistic objectness and softmax cross-entropy on the classes. */
    p.objectness = NN_OBJECTNESS_LOGISTIC;
    p.class_loss = NN_CLASSES_SOFTMAX;
    nn_detection_loss_forward(&loss, pred, obj, 1, &p);
    double want = log1p(exp(-0.8)) + 0.01 + 0.04 - (0.6 - log(exp(0.6) + exp(0.4)));
    CHECK(fabs(loss - want) < 1e-6);
    nn_detection_loss_forward(&loss, pred, none, 1, &p);
    CHECK(fabs(loss - (0.8 + log1p(exp(-0.8)))) < 1e-6);

    /* Weights: no-object weight on an empty row, object and coordinate weights on a full one. */
    p = plain(4, 2);
    p.no_object_weight = 0.5f;
    p.coord_weight = 5;
    nn_detection_loss_forward(&loss, pred, none, 1, &p);
    CHECK(fabsf(loss - 0.32f) < 1e-6f);
    nn_detection_loss_forward(&loss, pred, obj, 1, &p);
    CHECK(fabsf(loss - (0.04f + 5 * 0.05f + 0.32f)) < 1e-6f);

    /* Landmarks: P = 2k coordinates and no classes. */
    const float lp[5] = {2, 0.5f, 0.5f, 0.25f, 0.75f}, lt[5] = {1, 0.5f, 0.25f, 0.25f, 0.5f};
    nn_detection_loss_params q = plain(4, 0);
    nn_detection_loss_forward(&loss, lp, lt, 1, &q);
    CHECK(fabsf(loss - (1 + 0.0625f + 0.0625f)) < 1e-6f);
}

/* Central differences of sum(loss * r) against the backward pass with g = r and a scale. */
static void check_gradient(const nn_detection_loss_params *p, const char *what) {
    enum { ROWS = 6 };
    int d = 1 + p->coords + p->classes;
    float pred[ROWS * 16], target[ROWS * 16], r[ROWS], loss[ROWS], grad[ROWS * 16];
    ctest_fill(pred, (size_t)ROWS * d, -2, 2);
    ctest_fill(target, (size_t)ROWS * d, 0, 1);
    ctest_fill(r, ROWS, -1, 1);
    for (int row = 0; row < ROWS; row++) {
        target[row * d] = row % 3 == 0 ? 0.0f : 1.0f;
        if (p->class_loss == NN_CLASSES_SOFTMAX && p->classes > 0) {
            for (int c = 0; c < p->classes; c++) target[row * d + 1 + p->coords + c] = c == row % p->classes;
        }
    }
    const float scale = 0.5f, h = 1e-2f;
    nn_detection_loss_backward(grad, r, pred, target, scale, ROWS, p);
    float numeric[ROWS * 16];
    for (int i = 0; i < ROWS * d; i++) {
        float keep = pred[i];
        double up = 0, down = 0;
        pred[i] = keep + h;
        nn_detection_loss_forward(loss, pred, target, ROWS, p);
        for (int k = 0; k < ROWS; k++) up += (double)loss[k] * r[k];
        pred[i] = keep - h;
        nn_detection_loss_forward(loss, pred, target, ROWS, p);
        for (int k = 0; k < ROWS; k++) down += (double)loss[k] * r[k];
        pred[i] = keep;
        numeric[i] = (float)(scale * (up - down) / (2 * h));
    }
    ctest_close(what, grad, numeric, (size_t)ROWS * d, 2e-3f, 2e-2f);
}

static void test_gradients(void) {
    nn_detection_loss_params p = plain(4, 3);
    check_gradient(&p, "squared localisation gradient");
    p.objectness = NN_OBJECTNESS_LOGISTIC;
    p.class_loss = NN_CLASSES_SOFTMAX;
    check_gradient(&p, "logistic/softmax localisation gradient");
    /* YOLO: sigmoid cell offsets, log-space sizes, weighted terms. */
    nn_detection_loss_params y = {4, 3, 2, NN_OBJECTNESS_LOGISTIC, NN_CLASSES_SOFTMAX, 5, 1, 0.5f, 1};
    check_gradient(&y, "yolo gradient");
    nn_detection_loss_params l = plain(8, 0);
    check_gradient(&l, "landmark gradient");
}

static void test_decode(void) {
    /* 2 x 3 grid, 2 anchors, 2 classes: check slot (image 1, row 1, column 2, anchor 1). */
    enum { GH = 2, GW = 3, A = 2, C = 2, D = 5 + C, ROWS = 2 * GH * GW * A };
    const float anchors[4] = {0.1f, 0.2f, 0.3f, 0.4f};
    float raw[ROWS * D], boxes[ROWS * 4], scores[ROWS * C];
    ctest_fill(raw, ROWS * D, -1, 1);
    size_t slot = ((1 * GH + 1) * GW + 2) * A + 1;
    float *s = raw + slot * D;
    s[0] = 0; s[1] = 0; s[2] = 0; s[3] = logf(2); s[4] = 0; s[5] = 1; s[6] = 1;
    nn_yolo_decode_params p = {GH, GW, A, C, anchors, 1, 1};
    nn_yolo_decode(boxes, scores, raw, 2, &p);
    /* sigmoid(0) = 0.5: centre ((2 + 0.5)/3, (1 + 0.5)/2); w = 0.3, h = 0.4 * 2; scores 0.5 * 0.5. */
    float *b = boxes + slot * 4;
    CHECK(fabsf(b[0] - (2.5f / 3 - 0.15f)) < 1e-6f && fabsf(b[2] - (2.5f / 3 + 0.15f)) < 1e-6f);
    CHECK(fabsf(b[1] - (0.75f - 0.4f)) < 1e-6f && fabsf(b[3] - (0.75f + 0.4f)) < 1e-6f);
    CHECK(fabsf(scores[slot * C] - 0.25f) < 1e-6f && fabsf(scores[slot * C + 1] - 0.25f) < 1e-6f);
    /* Targets: no activations, ratio sizes. */
    s[0] = 1; s[1] = 0.25f; s[2] = 0.5f; s[3] = 2; s[4] = 0.5f; s[5] = 0; s[6] = 1;
    p.activations = 0;
    p.log_sizes = 0;
    nn_yolo_decode(boxes, scores, raw, 2, &p);
    CHECK(fabsf(b[0] - (2.25f / 3 - 0.075f)) < 1e-6f && fabsf(b[1] - (0.75f - 0.4f)) < 1e-6f);
    CHECK(scores[slot * C] == 0 && scores[slot * C + 1] == 1);
}

int main(void) {
    test_known();
    test_gradients();
    test_decode();
    return ctest_finish("detection");
}
