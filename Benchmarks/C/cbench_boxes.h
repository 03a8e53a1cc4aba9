/* Box benchmark cases (../shared/bench/README.md): the IoU matrix of two uniform box sets and greedy NMS
 * (threshold 0.5) on clustered boxes, one class or 20, read from Benchmarks/data/boxes.safetensors
 * (override the path with NEURON_BENCH_BOXES). Every case is checked once against torchvision's results
 * stored in that file before it is timed: the same kept indices, the same IoU sum and nonzero count. */
#ifndef NEURON_CBENCH_BOXES_H
#define NEURON_CBENCH_BOXES_H

#include <math.h>

/* The whole data file, read once. */
static struct { unsigned char *bytes; size_t size, header; } cb_file;

static void cb_fail(const char *message, const char *key) {
    fprintf(stderr, "cbench boxes: %s%s%s\n", message, key ? " " : "", key ? key : "");
    exit(1);
}

static void cb_load(void) {
    if (cb_file.bytes) return;
    const char *path = getenv("NEURON_BENCH_BOXES");
    if (!path) path = "Benchmarks/data/boxes.safetensors";
    FILE *f = fopen(path, "rb");
    if (!f) cb_fail("cannot open (run from the repository root or set NEURON_BENCH_BOXES):", path);
    fseek(f, 0, SEEK_END);
    cb_file.size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    cb_file.bytes = malloc(cb_file.size + 1);
    if (fread(cb_file.bytes, 1, cb_file.size, f) != cb_file.size) cb_fail("cannot read", path);
    fclose(f);
    uint64_t header = 0;
    for (int i = 7; i >= 0; i--) header = header << 8 | cb_file.bytes[i];
    cb_file.header = (size_t)header;
    if (8 + cb_file.header > cb_file.size) cb_fail("truncated header in", path);
}

/* A copy of tensor `key`'s bytes (its header entry's data_offsets), and their count. */
static void *cb_tensor(const char *key, size_t *bytes) {
    cb_load();
    char pattern[128], *header = malloc(cb_file.header + 1);
    memcpy(header, cb_file.bytes + 8, cb_file.header);
    header[cb_file.header] = 0;
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    char *entry = strstr(header, pattern), *offsets = entry ? strstr(entry, "\"data_offsets\":[") : NULL;
    unsigned long begin = 0, end = 0;
    if (!offsets || sscanf(offsets, "\"data_offsets\":[%lu,%lu]", &begin, &end) != 2 ||
        8 + cb_file.header + end > cb_file.size || end < begin)
        cb_fail("no tensor", key);
    free(header);
    void *copy = aligned_alloc(64, ((end - begin) / 64 + 1) * 64);
    memcpy(copy, cb_file.bytes + 8 + cb_file.header + begin, end - begin);
    *bytes = end - begin;
    return copy;
}

static struct {
    size_t n, m, expected_count;
    float *a, *b, *out, *ws, *scores;
    int64_t *labels, *keep, *expected;
    nn_nms_params p;
} cb_box;

static void iou_bench_setup(size_t n) {
    char key[64];
    size_t bytes;
    snprintf(key, sizeof key, "iou%zu_a", n);
    cb_box.a = cb_tensor(key, &bytes);
    snprintf(key, sizeof key, "iou%zu_b", n);
    cb_box.b = cb_tensor(key, &bytes);
    cb_box.n = cb_box.m = n;
    cb_box.out = aligned_alloc(64, n * n * sizeof(float));
    cb_box.ws = aligned_alloc(64, (nn_box_iou_workspace_size(n) / 16 + 1) * 64);
    nn_box_iou(cb_box.out, cb_box.a, cb_box.b, n, n, NN_BOX_XYXY, 0, cb_box.ws);
    double sum = 0;
    long nonzero = 0;
    for (size_t i = 0; i < n * n; i++) { sum += cb_box.out[i]; nonzero += cb_box.out[i] > 0; }
    snprintf(key, sizeof key, "iou%zu_sum", n);
    double *want_sum = cb_tensor(key, &bytes);
    snprintf(key, sizeof key, "iou%zu_nonzero", n);
    int64_t *want_nonzero = cb_tensor(key, &bytes);
    if (nonzero != *want_nonzero || fabs(sum - *want_sum) > 1e-6 * *want_sum) {
        fprintf(stderr, "box_iou_%zux%zu: sum %.9g, %ld nonzero; torchvision %.9g, %ld\n", n, n, sum, nonzero,
                *want_sum, (long)*want_nonzero);
        cb_fail("IoU differs from torchvision's", NULL);
    }
    free(want_sum);
    free(want_nonzero);
}

static void iou_bench_run(void) {
    nn_box_iou(cb_box.out, cb_box.a, cb_box.b, cb_box.n, cb_box.m, NN_BOX_XYXY, 0, cb_box.ws);
}

static void iou_bench_teardown(void) { free(cb_box.a); free(cb_box.b); free(cb_box.out); free(cb_box.ws); }

static void nms_bench_run(void) {
    nn_nms(cb_box.keep, cb_box.a, cb_box.scores, cb_box.labels, cb_box.n, &cb_box.p, cb_box.ws);
}

static void nms_bench_setup(size_t n, int batched) {
    char key[64];
    size_t bytes;
    snprintf(key, sizeof key, "nms%zu_boxes", n);
    cb_box.a = cb_tensor(key, &bytes);
    snprintf(key, sizeof key, "nms%zu_scores", n);
    cb_box.scores = cb_tensor(key, &bytes);
    snprintf(key, sizeof key, "nms%zu_labels", n);
    int64_t *labels = cb_tensor(key, &bytes);
    cb_box.labels = batched ? labels : NULL;
    if (!batched) free(labels);
    snprintf(key, sizeof key, batched ? "nms_batched%zu_keep" : "nms%zu_keep", n);
    cb_box.expected = cb_tensor(key, &bytes);
    cb_box.expected_count = bytes / sizeof(int64_t);
    cb_box.n = n;
    cb_box.keep = malloc(n * sizeof(int64_t));
    cb_box.ws = aligned_alloc(64, (nn_nms_workspace_size(n) / 16 + 1) * 64);
    nn_nms_params p = {NN_BOX_XYXY, 0.5, 0, 0.0f, -1};
    cb_box.p = p;
    size_t kept = nn_nms(cb_box.keep, cb_box.a, cb_box.scores, cb_box.labels, n, &cb_box.p, cb_box.ws);
    if (kept != cb_box.expected_count || memcmp(cb_box.keep, cb_box.expected, kept * sizeof(int64_t)) != 0) {
        fprintf(stderr, "%s of %zu boxes: %zu kept, torchvision %zu\n", batched ? "batched nms" : "nms", n, kept,
                cb_box.expected_count);
        cb_fail("kept indices differ from torchvision's", NULL);
    }
}

static void nms_bench_teardown(void) {
    free(cb_box.a); free(cb_box.scores); free(cb_box.labels); free(cb_box.expected); free(cb_box.keep);
    free(cb_box.ws);
}

static void iou_1000_setup(void) { iou_bench_setup(1000); }
static void iou_5000_setup(void) { iou_bench_setup(5000); }
static void nms_2000_setup(void) { nms_bench_setup(2000, 0); }
static void nms_10000_setup(void) { nms_bench_setup(10000, 0); }
static void nms_batched_10000_setup(void) { nms_bench_setup(10000, 1); }

#define CBENCH_BOXES_CASES                                                                        \
    {"box_iou_1000x1000", 0, iou_1000_setup, iou_bench_run, iou_bench_teardown},                  \
    {"box_iou_5000x5000", 0, iou_5000_setup, iou_bench_run, iou_bench_teardown},                  \
    {"nms_2000", 0, nms_2000_setup, nms_bench_run, nms_bench_teardown},                           \
    {"nms_10000", 0, nms_10000_setup, nms_bench_run, nms_bench_teardown},                         \
    {"nms_batched_10000", 0, nms_batched_10000_setup, nms_bench_run, nms_bench_teardown},

#endif
