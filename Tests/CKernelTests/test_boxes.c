/* Box kernels: conversions, hand-computed IoU and GIoU (degenerate boxes included), the IoU matrix and
 * NMS against their naive references on random boxes full of ties, and the NMS rules torchvision's
 * golden data pins down (ties lowest index first, IoU equal to the threshold survives, double thresholds),
 * at every instruction level the machine has. */
#include "ctest.h"

static float iou1(const float a[4], const float b[4], nn_box_format format, int generalized) {
    float out, ws[5];
    nn_box_iou(&out, a, b, 1, 1, format, generalized, ws);
    return out;
}

static int near(float a, float b) { return fabsf(a - b) <= 1e-6f + 1e-6f * fabsf(b); }

static void test_convert(void) {
    float cxcywh[8] = {5, 6, 4, 2, -1, 0, 3, 5}, xyxy[8], back[8], xywh[8];
    nn_box_convert(xyxy, cxcywh, 2, NN_BOX_CXCYWH, NN_BOX_XYXY);
    CHECK(xyxy[0] == 3 && xyxy[1] == 5 && xyxy[2] == 7 && xyxy[3] == 7);
    CHECK(xyxy[4] == -2.5f && xyxy[5] == -2.5f && xyxy[6] == 0.5f && xyxy[7] == 2.5f);
    nn_box_convert(back, xyxy, 2, NN_BOX_XYXY, NN_BOX_CXCYWH);
    ctest_equal_bits("cxcywh round trip", back, cxcywh, 8);
    nn_box_convert(xywh, cxcywh, 2, NN_BOX_CXCYWH, NN_BOX_XYWH);
    CHECK(xywh[0] == 3 && xywh[1] == 5 && xywh[2] == 4 && xywh[3] == 2);
    /* In place. */
    nn_box_convert(xywh, xywh, 2, NN_BOX_XYWH, NN_BOX_XYXY);
    ctest_equal_bits("xywh to xyxy in place", xywh, xyxy, 8);
}

static void test_iou_known(void) {
    const float a[4] = {0, 0, 2, 2};
    const float same[4] = {0, 0, 2, 2}, half[4] = {1, 0, 3, 2}, inside[4] = {0.5f, 0.5f, 1.5f, 1.5f};
    const float edge[4] = {2, 0, 4, 2}, corner[4] = {2, 2, 3, 3}, far[4] = {10, 10, 11, 12};
    CHECK(iou1(a, same, NN_BOX_XYXY, 0) == 1);
    CHECK(near(iou1(a, half, NN_BOX_XYXY, 0), 2.0f / 6));   /* inter 2, union 4 + 4 - 2 */
    CHECK(iou1(a, inside, NN_BOX_XYXY, 0) == 0.25f);
    CHECK(iou1(a, edge, NN_BOX_XYXY, 0) == 0 && iou1(a, corner, NN_BOX_XYXY, 0) == 0);
    CHECK(iou1(a, far, NN_BOX_XYXY, 0) == 0);
    /* GIoU: identical 1; touching edge: enclosing 8 = union, so 0; far: 0 - (C - U)/C. */
    CHECK(iou1(a, same, NN_BOX_XYXY, 1) == 1);
    CHECK(iou1(a, edge, NN_BOX_XYXY, 1) == 0);
    CHECK(near(iou1(a, far, NN_BOX_XYXY, 1), -(11.0f * 12 - 6) / (11.0f * 12)));
    CHECK(near(iou1(a, half, NN_BOX_XYXY, 1), 2.0f / 6 - (6.0f - 6) / 6));
    /* The same pair in centre format. */
    const float ac[4] = {1, 1, 2, 2}, hc[4] = {2, 1, 2, 2};
    CHECK(near(iou1(ac, hc, NN_BOX_CXCYWH, 0), 2.0f / 6));

    /* Degenerate boxes. Zero width against a positive box: 0; GIoU is then -(C - U)/C. */
    const float line[4] = {1, 0, 1, 2}, point[4] = {1, 1, 1, 1}, point2[4] = {3, 3, 3, 3};
    CHECK(iou1(line, a, NN_BOX_XYXY, 0) == 0);
    CHECK(iou1(line, a, NN_BOX_XYXY, 1) == 0);    /* enclosing box is a itself: C = U = 4 */
    /* Two zero-area boxes: union 0 gives IoU 0 (not NaN); a shared point has enclosing area 0: GIoU = IoU. */
    CHECK(iou1(point, point, NN_BOX_XYXY, 0) == 0);
    CHECK(iou1(point, point, NN_BOX_XYXY, 1) == 0);
    CHECK(iou1(point, point2, NN_BOX_XYXY, 1) == -1);  /* C = 4, U = 0 */
    /* Inverted: x2 < x1 collapses to zero width at x1, so it is the line above. */
    const float inverted[4] = {1, 0, -5, 2};
    CHECK(iou1(inverted, a, NN_BOX_XYXY, 0) == 0);
    CHECK(iou1(inverted, a, NN_BOX_XYXY, 1) == 0);
    /* Negative width in centre format: the same collapse, at cx - w/2. */
    const float negw[4] = {1, 1, -2, 2};
    CHECK(iou1(negw, a, NN_BOX_CXCYWH, 0) == 0);
    /* NaN anywhere: NaN, in both positions, IoU and GIoU. */
    for (int k = 0; k < 4; k++) {
        float nanbox[4] = {0, 0, 2, 2};
        nanbox[k] = NAN;
        CHECK(isnan(iou1(nanbox, a, NN_BOX_XYXY, 0)) && isnan(iou1(a, nanbox, NN_BOX_XYXY, 0)));
        CHECK(isnan(iou1(nanbox, a, NN_BOX_XYXY, 1)) && isnan(iou1(a, nanbox, NN_BOX_XYXY, 1)));
        CHECK(isnan(iou1(nanbox, far, NN_BOX_XYXY, 0)));
    }
    /* An infinite box against a finite one: IoU 0. */
    const float huge[4] = {-INFINITY, -INFINITY, INFINITY, INFINITY};
    CHECK(iou1(huge, a, NN_BOX_XYXY, 0) == 0);
}

/* Random boxes, about one in eight degenerate (zero width, inverted) and, with nan_too, a few with NaN. */
static void random_boxes(float *b, size_t n, int nan_too) {
    for (size_t i = 0; i < n; i++) {
        float x = ctest_uniform(0, 100), y = ctest_uniform(0, 100);
        float w = ctest_uniform(0, 30), h = ctest_uniform(0, 30);
        float r = ctest_uniform(0, 1);
        if (r < 0.05f) w = 0;
        else if (r < 0.1f) w = -w;
        else if (r < 0.125f) h = 0;
        b[4 * i] = x; b[4 * i + 1] = y; b[4 * i + 2] = x + w; b[4 * i + 3] = y + h;
        if (nan_too && ctest_uniform(0, 1) < 0.02f) b[4 * i + (i % 4)] = NAN;
    }
}

static void test_iou_matrix(void) {
    enum { N = 77, M = 301 };
    float *a = malloc(N * 4 * sizeof(float)), *b = malloc(M * 4 * sizeof(float));
    float *fast = malloc(N * M * sizeof(float)), *ref = malloc(N * M * sizeof(float));
    float *ws = malloc(nn_box_iou_workspace_size(M) * sizeof(float));
    random_boxes(a, N, 1);
    random_boxes(b, M, 1);
    for (int format = 0; format < 3; format++)
        for (int g = 0; g < 2; g++) {
            nn_box_iou(fast, a, b, N, M, (nn_box_format)format, g, ws);
            nn_box_iou_ref(ref, a, b, N, M, (nn_box_format)format, g);
            char what[64];
            snprintf(what, sizeof what, "iou matrix format %d generalized %d", format, g);
            ctest_equal_bits(what, fast, ref, (size_t)N * M);
        }
    /* Values stay in range: IoU in [0, 1], GIoU in [-1, 1], NaN only from NaN boxes. */
    nn_box_iou(fast, a, b, N, M, NN_BOX_XYXY, 1, ws);
    int ok = 1;
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < M; j++) {
            float v = fast[i * M + j];
            int has_nan = 0;
            for (int k = 0; k < 4; k++) has_nan |= isnan(a[4 * i + k]) || isnan(b[4 * j + k]);
            ok &= has_nan ? isnan(v) : (v >= -1 && v <= 1);
        }
    CHECK(ok);
    /* Large enough to run in parallel: identical to the reference whatever the thread count. */
    enum { BN = 300, BM = 500 };
    float *ba = malloc(BN * 4 * sizeof(float)), *bb = malloc(BM * 4 * sizeof(float));
    float *bf = malloc(BN * BM * sizeof(float)), *br = malloc(BN * BM * sizeof(float));
    float *bws = malloc(nn_box_iou_workspace_size(BM) * sizeof(float));
    random_boxes(ba, BN, 0);
    random_boxes(bb, BM, 0);
    nn_box_iou(bf, ba, bb, BN, BM, NN_BOX_XYXY, 0, bws);
    nn_box_iou_ref(br, ba, bb, BN, BM, NN_BOX_XYXY, 0);
    ctest_equal_bits("parallel iou matrix", bf, br, (size_t)BN * BM);
    /* A matrix past the streaming size (32 MiB) is written with non-temporal stores; rows of an odd length
     * start at every alignment. Still the reference's values, bit for bit. */
    enum { SN = 1400, SM = 6001 };
    float *sa = malloc(SN * 4 * sizeof(float)), *sb = malloc(SM * 4 * sizeof(float));
    float *sf = malloc((size_t)SN * SM * sizeof(float)), *sr = malloc((size_t)SN * SM * sizeof(float));
    float *sws = malloc(nn_box_iou_workspace_size(SM) * sizeof(float));
    random_boxes(sa, SN, 1);
    random_boxes(sb, SM, 1);
    nn_box_iou(sf, sa, sb, SN, SM, NN_BOX_XYXY, 0, sws);
    nn_box_iou_ref(sr, sa, sb, SN, SM, NN_BOX_XYXY, 0);
    ctest_equal_bits("streamed iou matrix", sf, sr, (size_t)SN * SM);
    free(sa); free(sb); free(sf); free(sr); free(sws);
    /* Empty sets are valid and touch nothing. */
    nn_box_iou(NULL, NULL, bb, 0, BM, NN_BOX_XYXY, 0, bws);
    nn_box_iou(NULL, ba, NULL, BN, 0, NN_BOX_XYXY, 0, NULL);
    free(a); free(b); free(fast); free(ref); free(ws);
    free(ba); free(bb); free(bf); free(br); free(bws);
}

static nn_nms_params nms_params(double iou, long cap) {
    nn_nms_params p = {NN_BOX_XYXY, iou, 0, 0.0f, cap};
    return p;
}

/* Runs nn_nms and nn_nms_ref on the same input; checks they agree and returns the count. */
static size_t nms_both(int64_t *keep, const float *boxes, const float *scores, const int64_t *labels, size_t n,
                       const nn_nms_params *p) {
    float *ws = malloc((nn_nms_workspace_size(n) + 1) * sizeof(float));
    int64_t *ref = malloc((n + 1) * sizeof(int64_t));
    size_t count = nn_nms(keep, boxes, scores, labels, n, p, ws);
    size_t ref_count = nn_nms_ref(ref, boxes, scores, labels, n, p, ws);
    ctest_checks++;
    if (count != ref_count || (count && memcmp(keep, ref, count * sizeof *ref) != 0)) {
        ctest_failures++;
        fprintf(stderr, "nms (n %zu, iou %.3f, cap %ld, labels %s): %zu kept vs %zu by the reference\n", n,
                p->iou_threshold, p->max_keep, labels ? "yes" : "no", count, ref_count);
    }
    free(ws);
    free(ref);
    return count;
}

static void test_nms_known(void) {
    int64_t keep[8];
    /* IoU exactly 0.5 (inter 1, union 2 + 1 - 1) survives a 0.5 threshold, not a 0.49 one. */
    const float pair[8] = {0, 0, 2, 1, 0, 0, 1, 1};
    const float ps[2] = {0.9f, 0.8f};
    nn_nms_params p = nms_params(0.5, -1);
    CHECK(nms_both(keep, pair, ps, NULL, 2, &p) == 2 && keep[0] == 0 && keep[1] == 1);
    p.iou_threshold = 0.49;
    CHECK(nms_both(keep, pair, ps, NULL, 2, &p) == 1 && keep[0] == 0);
    /* torchvision compares the float IoU with a double threshold: 3/10 rounds to 0.3f, which is above the
     * double 0.3 (suppressed) and equal to the double (double)0.3f (survives). */
    const float tenth[8] = {0, 0, 10, 1, 0, 0, 3, 1};
    p.iou_threshold = 0.3;
    CHECK(nms_both(keep, tenth, ps, NULL, 2, &p) == 1);
    p.iou_threshold = (double)0.3f;
    CHECK(nms_both(keep, tenth, ps, NULL, 2, &p) == 2);
    /* Threshold 1 suppresses nothing (IoU never exceeds 1); threshold 0 suppresses any overlap. */
    const float three[12] = {0, 0, 2, 2, 0, 0, 2, 2, 1.9f, 1.9f, 4, 4};
    const float ts[3] = {0.1f, 0.3f, 0.2f};
    p.iou_threshold = 1;
    CHECK(nms_both(keep, three, ts, NULL, 3, &p) == 3 && keep[0] == 1 && keep[1] == 2 && keep[2] == 0);
    p.iou_threshold = 0;
    CHECK(nms_both(keep, three, ts, NULL, 3, &p) == 1 && keep[0] == 1);
    /* Equal scores: visited lowest index first, so of two identical boxes the lower index survives. */
    const float eq[3] = {0.5f, 0.5f, 0.5f};
    p.iou_threshold = 0.5;
    CHECK(nms_both(keep, three, eq, NULL, 3, &p) == 2 && keep[0] == 0 && keep[1] == 2);
    /* -0 equals +0 (index order); NaN scores come first. */
    const float apart[12] = {0, 0, 1, 1, 5, 5, 6, 6, 10, 10, 11, 11};
    const float zs[3] = {0.0f, -0.0f, NAN};
    CHECK(nms_both(keep, apart, zs, NULL, 3, &p) == 3 && keep[0] == 2 && keep[1] == 0 && keep[2] == 1);
    /* A box with a NaN coordinate is kept and suppresses nothing. */
    const float nanb[8] = {0, 0, NAN, 2, 0, 0, 2, 2};
    CHECK(nms_both(keep, nanb, ps, NULL, 2, &p) == 2);
    /* Labels: identical boxes of different labels both survive; of the same label one does. */
    const int64_t labels[3] = {7, -3, 7};
    const float same3[12] = {0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1};
    const float s3[3] = {0.2f, 0.1f, 0.3f};
    CHECK(nms_both(keep, same3, s3, labels, 3, &p) == 2 && keep[0] == 2 && keep[1] == 1);
    CHECK(nms_both(keep, same3, s3, NULL, 3, &p) == 1 && keep[0] == 2);
    /* Score threshold: strictly greater takes part; NaN does not. Cap: the first max_keep. */
    p.use_score_threshold = 1;
    p.score_threshold = 0.0f;
    CHECK(nms_both(keep, apart, zs, NULL, 3, &p) == 0);
    const float ss[3] = {0.5f, 0.25f, 0.75f};
    p.score_threshold = 0.25f;
    CHECK(nms_both(keep, apart, ss, NULL, 3, &p) == 2 && keep[0] == 2 && keep[1] == 0);
    p.use_score_threshold = 0;
    p.max_keep = 2;
    CHECK(nms_both(keep, apart, ss, NULL, 3, &p) == 2 && keep[0] == 2 && keep[1] == 0);
    p.max_keep = 0;
    CHECK(nms_both(keep, apart, ss, NULL, 3, &p) == 0);
    /* Centre format: the same decisions as corners. */
    float centre[8];
    nn_box_convert(centre, pair, 2, NN_BOX_XYXY, NN_BOX_CXCYWH);
    nn_nms_params q = nms_params(0.49, -1);
    q.format = NN_BOX_CXCYWH;
    CHECK(nms_both(keep, centre, ps, NULL, 2, &q) == 1);
    /* No boxes. */
    CHECK(nms_both(keep, NULL, NULL, NULL, 0, &p) == 0);
}

/* Clustered boxes with coarse scores (many exact ties) and a few degenerate and NaN boxes. */
static void clustered(float *b, float *s, int64_t *labels, size_t n, int label_count) {
    for (size_t i = 0; i < n; i++) {
        float cx = 20.0f * (float)(i % 7), cy = 15.0f * (float)(i % 5);
        float x = cx + ctest_uniform(-4, 4), y = cy + ctest_uniform(-4, 4);
        float w = ctest_uniform(5, 25), h = ctest_uniform(5, 25);
        b[4 * i] = x; b[4 * i + 1] = y; b[4 * i + 2] = x + w; b[4 * i + 3] = y + h;
        if (i % 53 == 5) b[4 * i + 2] = x - 1;       /* inverted */
        if (i % 97 == 11) b[4 * i + 1] = NAN;
        s[i] = (float)(int)ctest_uniform(1, 11) / 10;
        if (i % 89 == 3) s[i] = NAN;
        labels[i] = (int64_t)ctest_uniform(0, (float)label_count) - 2;
    }
}

static void test_nms_random(void) {
    const size_t sizes[] = {1, 2, 17, 300, 1500};
    const double thresholds[] = {0, 0.3, 0.5, 0.7, 1};
    const long caps[] = {-1, 1, 7};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si];
        float *b = malloc(n * 4 * sizeof(float)), *s = malloc(n * sizeof(float));
        int64_t *labels = malloc(n * sizeof(int64_t)), *keep = malloc(n * sizeof(int64_t));
        clustered(b, s, labels, n, 5);
        for (size_t ti = 0; ti < 5; ti++)
            for (size_t ci = 0; ci < 3; ci++)
                for (int with_labels = 0; with_labels < 2; with_labels++)
                    for (int fmt = 0; fmt < 2; fmt++) {
                        nn_nms_params p = nms_params(thresholds[ti], caps[ci]);
                        p.format = (nn_box_format)fmt;
                        p.use_score_threshold = ci == 2;
                        p.score_threshold = 0.3f;
                        nms_both(keep, b, s, with_labels ? labels : NULL, n, &p);
                    }
        /* Labels spread over the whole int64 range exercise every radix pass. */
        for (size_t i = 0; i < n; i++) labels[i] = (int64_t)((uint64_t)labels[i] * 0x9E3779B97F4A7C15ull);
        nn_nms_params p = nms_params(0.5, -1);
        nms_both(keep, b, s, labels, n, &p);
        free(b); free(s); free(labels); free(keep);
    }
}

static void suite(void) {
    test_convert();
    test_iou_known();
    test_iou_matrix();
    test_nms_known();
    test_nms_random();
}

int main(void) { return ctest_run_levels("boxes", suite); }
