/* Gram matrix cases (../shared/bench/README.md): G = F·Fᵀ for F (C, K). FLOPs are counted as PyTorch's
 * torch_anchor.py counts them, 2·C·C·K for the full product, though the kernel does about half. Included by
 * cbench.c after `filled` and `bench_case` are defined. */
#ifndef NEURON_CBENCH_GRAM_H
#define NEURON_CBENCH_GRAM_H

static struct {
    int c, k;
    float *f, *g, *ws;
} cb_gram;

static void gram_bench_setup(int c, int k) {
    cb_gram.c = c;
    cb_gram.k = k;
    cb_gram.f = filled((size_t)c * k, 21);
    cb_gram.g = filled((size_t)c * c, 22);
    cb_gram.ws = filled(nn_gram_forward_workspace_size(c, k), 23);
}

static void gram_bench_teardown(void) { free(cb_gram.f); free(cb_gram.g); free(cb_gram.ws); }
static void gram_bench_run(void) { nn_gram_forward(cb_gram.g, cb_gram.f, cb_gram.ws, cb_gram.c, cb_gram.k); }
static void gram_256_setup(void) { gram_bench_setup(256, 4096); }
static void gram_64_setup(void) { gram_bench_setup(64, 224 * 224); }

#define CBENCH_GRAM_CASES                                                                                  \
    {"gram_256x4096", 2.0 * 256 * 256 * 4096, gram_256_setup, gram_bench_run, gram_bench_teardown},           \
    {"gram_64x50176", 2.0 * 64 * 64 * 224 * 224, gram_64_setup, gram_bench_run, gram_bench_teardown},

#endif
