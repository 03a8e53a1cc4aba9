/* A minimal test harness for the C kernels: each test_<family>.c is its own program built from the
 * same kernel sources as the Swift package (see the Makefile's `ctest` target). */
#ifndef NEURON_CTEST_H
#define NEURON_CTEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ckernels.h"

static int ctest_failures = 0;
static int ctest_checks = 0;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        ctest_checks++;                                                                            \
        if (!(cond)) {                                                                             \
            ctest_failures++;                                                                      \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

/* |a - b| <= atol + rtol |b| element-wise; prints the first mismatch and the largest errors. */
__attribute__((unused)) static int ctest_close(const char *what, const float *a, const float *b, size_t n, float atol, float rtol) {
    size_t bad = 0, first = (size_t)-1;
    double max_abs = 0, max_rel = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > max_abs) max_abs = d;
        if (b[i] != 0 && d / fabs(b[i]) > max_rel) max_rel = d / fabs(b[i]);
        if (!(d <= atol + rtol * fabs(b[i])) && !(isnan(a[i]) && isnan(b[i]))) {
            if (first == (size_t)-1) first = i;
            bad++;
        }
    }
    ctest_checks++;
    if (bad) {
        ctest_failures++;
        fprintf(stderr, "%s: %zu of %zu differ; first at %zu: %g vs %g; max abs %g, max rel %g\n", what, bad, n,
                first, a[first], b[first], max_abs, max_rel);
        return 0;
    }
    return 1;
}

__attribute__((unused)) static int ctest_equal_bits(const char *what, const float *a, const float *b, size_t n) {
    ctest_checks++;
    for (size_t i = 0; i < n; i++) {
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0) {
            ctest_failures++;
            fprintf(stderr, "%s: not bit-identical at %zu: %.9g vs %.9g\n", what, i, a[i], b[i]);
            return 0;
        }
    }
    return 1;
}

/* SplitMix64-driven uniform values in [lo, hi): deterministic test data. */
static uint64_t ctest_state = 0x9E3779B97F4A7C15ull;
static float ctest_uniform(float lo, float hi) {
    uint64_t z = (ctest_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return lo + (hi - lo) * (float)((z >> 40) * (1.0 / 16777216.0));
}
__attribute__((unused)) static void ctest_fill(float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) x[i] = ctest_uniform(lo, hi);
}

static int ctest_finish(const char *name) {
    printf("%s: %d checks, %d failures (openmp %s, %d threads, levels baseline..%s)\n", name, ctest_checks,
           ctest_failures, nn_openmp_enabled() ? "on" : "off", nn_get_num_threads(),
           nn_cpu_level_name(nn_cpu_best_level()));
    return ctest_failures ? 1 : 0;
}

/* Runs the suite at every instruction level this CPU supports, the baseline first, then reports. Each
 * level is checked on its own: against the references, and bit-identical across thread counts. */
__attribute__((unused)) static int ctest_run_levels(const char *name, void (*suite)(void)) {
    for (int level = 0; level <= nn_cpu_best_level(); level++) {
        if (nn_set_cpu_level(level) != 0) {
            ctest_failures++;
            fprintf(stderr, "%s: level %s refused although the CPU supports it\n", name, nn_cpu_level_name(level));
            continue;
        }
        const int before = ctest_failures;
        suite();
        if (ctest_failures != before)
            fprintf(stderr, "%s: %d failures at level %s\n", name, ctest_failures - before, nn_cpu_level_name(level));
    }
    nn_set_cpu_level(-1);
    return ctest_finish(name);
}

#endif
