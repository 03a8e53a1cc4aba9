/* C-level benchmark runner: times the kernels directly, without Swift in the way.
 *   cbench [--cases a,b] [--threads N]
 * prints one JSON line per case (the same contract as neuron-bench) plus GFLOPS where it means something. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "ckernels.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static float *filled(size_t n, unsigned seed) {
    float *p = aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64 + 64);
    for (size_t i = 0; i < n; i++) { seed = seed * 1664525u + 1013904223u; p[i] = (float)(seed >> 8) / 16777216.0f - 0.5f; }
    return p;
}

/* A case runs its body once per call; `flops` (0 if not meaningful) gives GFLOPS. */
typedef struct {
    const char *name;
    double flops;
    void (*setup)(void);
    void (*run)(void);
    void (*teardown)(void);
} bench_case;

/* ---- sgemm_peak: 2048^3 ---- */
enum { GEMM_N = 2048 };
static float *ga, *gb, *gc;
static void gemm_setup(void) { ga = filled((size_t)GEMM_N * GEMM_N, 1); gb = filled((size_t)GEMM_N * GEMM_N, 2); gc = filled((size_t)GEMM_N * GEMM_N, 3); }
static void gemm_run(void) { nn_sgemm(0, 0, GEMM_N, GEMM_N, GEMM_N, 1.0f, ga, GEMM_N, gb, GEMM_N, 0.0f, gc, GEMM_N); }
static void gemm_teardown(void) { free(ga); free(gb); free(gc); }

/* Further kernel families register their cases here. */
#include "cbench_cases.h"

static const bench_case cases[] = {
    {"sgemm_peak", 2.0 * GEMM_N * GEMM_N * GEMM_N, gemm_setup, gemm_run, gemm_teardown},
    CBENCH_FAMILY_CASES
};

/* The machine's FMA peak, measured at the widest instruction level the CPU has (the one our kernels
 * run): every thread runs PEAK_CHAINS independent chains of vector fused multiply-adds, enough to keep
 * every FMA port busy through the FMA latency (2 ports x 4-5 cycles on Zen 3/4 and Skylake-X; one 512-bit
 * FMA fills both of Zen 4's 256-bit units), and all threads run at once. The kernel is written once over
 * a lane count and instantiated per level with its target attribute, as the kernels are
 * (CKernels/README.md). The baseline level has no FMA: its multiply and add count as two flops. */
#define PEAK_CHAINS 12
#define PEAK_ITERS 4000000L

#define DEFINE_FMA_CHAINS(level, target_, lanes)                                                    \
    __attribute__((target(target_), noinline)) static float fma_chains_##level(long iters) {       \
        typedef float vec __attribute__((vector_size((lanes) * 4)));                               \
        vec acc[PEAK_CHAINS], a, b;                                                                 \
        for (int i = 0; i < (lanes); i++) { a[i] = 0.999999f; b[i] = 1e-7f; }                      \
        for (int c = 0; c < PEAK_CHAINS; c++) acc[c] = b * (float)(c + 1);                         \
        for (long it = 0; it < iters; it++)                                                         \
            for (int c = 0; c < PEAK_CHAINS; c++) acc[c] = acc[c] * a + b;                         \
        float sink = 0;                                                                             \
        for (int c = 0; c < PEAK_CHAINS; c++) sink += acc[c][0];                                   \
        return sink;                                                                                \
    }
DEFINE_FMA_CHAINS(baseline, "sse2", 4)
#if defined(__x86_64__)
DEFINE_FMA_CHAINS(avx2, "avx2,fma", 8)
DEFINE_FMA_CHAINS(avx512, "avx512f,avx2,fma", 16)
#endif

/* The chains at `level`: 2 * lanes * PEAK_CHAINS * iters flops. */
static float fma_chains(int level, long iters) {
#if defined(__x86_64__)
    if (level == NN_CPU_AVX512) return fma_chains_avx512(iters);
    if (level == NN_CPU_AVX2) return fma_chains_avx2(iters);
#endif
    return fma_chains_baseline(iters);
}

static double peak_gflops(int threads) {
    static const int lanes[] = {4, 8, 16};
    const int level = nn_cpu_best_level();
    const double flops = 2.0 * lanes[level] * PEAK_CHAINS * PEAK_ITERS * threads;
    volatile float sink = 0;
    double best = 0;
    for (int round = 0; round < 10; round++) { /* the best of 10: a preempted round reads low */
        double t0 = now_ms();
        float s = 0;
#pragma omp parallel for schedule(static) num_threads(threads) reduction(+ : s)
        for (int t = 0; t < threads; t++) s += fma_chains(level, PEAK_ITERS);
        double ms = now_ms() - t0;
        sink += s;
        double gflops = flops / (ms * 1e6);
        if (gflops > best) best = gflops;
    }
    (void)sink;
    return best;
}

static int wanted(const char *list, const char *name) {
    if (!list) return 1;
    size_t len = strlen(name);
    for (const char *p = list; (p = strstr(p, name)); p += len)
        if ((p == list || p[-1] == ',') && (p[len] == ',' || p[len] == '\0')) return 1;
    return 0;
}

int main(int argc, char **argv) {
    const char *list = NULL;
    int threads = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--cases") && i + 1 < argc) list = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else { fprintf(stderr, "usage: %s [--cases a,b] [--threads N]\n", argv[0]); return 2; }
    }
    nn_set_num_threads(threads);
    /* The recurrent cases time the fused step kernel unless NN_RNN_BLAS_STEP asks for the OpenBLAS path. */
    if (getenv("NN_RNN_BLAS_STEP")) nn_rnn_set_fused(0);
    threads = nn_get_num_threads();
    fprintf(stderr, "cbench: openmp %s, %d threads, CPU level %s, OpenBLAS core %s\n", nn_openmp_enabled() ? "on" : "off",
            threads, nn_cpu_level_name(nn_cpu_level()), nn_blas_core_name());
    /* The FMA peak, measured before any case, once, when a case reports GFLOPS: after a GEMM, OpenBLAS's
     * threads spin for a while and would take the cores from it. */
    double peak = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        if (wanted(list, cases[c].name) && cases[c].flops > 0 && peak == 0) peak = peak_gflops(threads);
    if (peak > 0)
        fprintf(stderr, "cbench: FMA peak %.1f GFLOPS on %d threads (level %s)\n", peak, threads,
                nn_cpu_level_name(nn_cpu_best_level()));
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const bench_case *bc = &cases[c];
        if (!wanted(list, bc->name)) continue;
        bc->setup();
        bc->run(); /* warm-up */
        double times[4096];
        int reps = 0;
        double start = now_ms();
        while (reps < 4096 && (reps < 20 || now_ms() - start < 1000.0)) {
            double t0 = now_ms();
            bc->run();
            times[reps++] = now_ms() - t0;
        }
        bc->teardown();
        qsort(times, reps, sizeof times[0], cmp_double);
        double median = times[reps / 2], best = times[0];
        printf("{\"case\": \"%s\", \"median_ms\": %.4f, \"min_ms\": %.4f, \"reps\": %d", bc->name, median, best, reps);
        if (bc->flops > 0) {
            double gflops = bc->flops / (median * 1e6);
            printf(", \"gflops\": %.1f, \"fma_peak_gflops\": %.1f, \"peak_share\": %.3f", gflops, peak, gflops / peak);
        }
        printf("}\n");
        fflush(stdout);
    }
    return 0;
}
