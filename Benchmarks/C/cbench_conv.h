/* Convolution benchmark cases (../shared/bench/README.md): float32 NCHW, forward with bias; the fwdbwd
 * case adds the backward pass for the gradients of input, weight and bias. Included by cbench.c after
 * `filled` and `bench_case` are defined. */
#ifndef NEURON_CBENCH_CONV_H
#define NEURON_CBENCH_CONV_H

/* One case's buffers; the cases run one at a time, so they share this state. */
static struct {
    nn_conv2d_params p;
    nn_conv2d_algorithm algo;
    float *x, *w, *b, *y, *ws, *dx, *dw, *db, *dy;
} cb_conv;

static void conv_bench_setup_with(int n, int c_in, int hw, int c_out, int k, int stride, int pad, nn_conv2d_algorithm algo) {
    nn_conv2d_params p = {n, c_in, hw, hw, c_out, k, k, stride, stride, pad, pad, pad, pad, 1, 1, 1};
    cb_conv.p = p;
    cb_conv.algo = algo;
    size_t nx = (size_t)n * c_in * hw * hw, nw = (size_t)c_out * c_in * k * k;
    size_t ny = (size_t)n * c_out * nn_conv2d_out_h(&p) * nn_conv2d_out_w(&p);
    cb_conv.x = filled(nx, 11);
    cb_conv.w = filled(nw, 12);
    cb_conv.b = filled((size_t)c_out, 13);
    cb_conv.y = filled(ny, 14);
    cb_conv.ws = filled(nn_conv2d_workspace_size_with(&p, algo), 15);
    cb_conv.dy = filled(ny, 16);
    cb_conv.dx = filled(nx, 17);
    cb_conv.dw = filled(nw, 18);
    cb_conv.db = filled((size_t)c_out, 19);
}

static void conv_bench_teardown(void) {
    free(cb_conv.x); free(cb_conv.w); free(cb_conv.b); free(cb_conv.y); free(cb_conv.ws);
    free(cb_conv.dy); free(cb_conv.dx); free(cb_conv.dw); free(cb_conv.db);
}

static void conv_bench_setup(int n, int c_in, int hw, int c_out, int k, int stride, int pad) {
    conv_bench_setup_with(n, c_in, hw, c_out, k, stride, pad, NN_CONV2D_AUTO);
}

static void conv_bench_forward(void) {
    nn_conv2d_forward_with(cb_conv.y, cb_conv.x, cb_conv.w, cb_conv.b, cb_conv.ws, &cb_conv.p, cb_conv.algo);
}

/* A training step's convolution: dw and db accumulate, as they would across a step's micro-batches. */
static void conv_bench_forward_backward(void) {
    nn_conv2d_forward_with(cb_conv.y, cb_conv.x, cb_conv.w, cb_conv.b, cb_conv.ws, &cb_conv.p, cb_conv.algo);
    nn_conv2d_backward_with(cb_conv.dx, cb_conv.dw, cb_conv.db, cb_conv.dy, cb_conv.x, cb_conv.w, cb_conv.ws, &cb_conv.p,
                            cb_conv.algo);
}

/* The weight gradient alone, by the direct kernel and by Winograd F(2x2): the two in one run. */
static void conv_bench_wgrad_direct(void) {
    nn_conv2d_backward_with(NULL, cb_conv.dw, NULL, cb_conv.dy, cb_conv.x, cb_conv.w, cb_conv.ws, &cb_conv.p,
                            NN_CONV2D_DIRECT);
}
static void conv_bench_wgrad_winograd(void) {
    nn_conv2d_winograd_backward_weights(cb_conv.dw, cb_conv.dy, cb_conv.x, cb_conv.ws, &cb_conv.p);
}

static void conv_small_setup(void) { conv_bench_setup(32, 3, 32, 16, 3, 1, 1); }
static void conv_mid_setup(void) { conv_bench_setup(32, 64, 28, 64, 3, 1, 1); }
static void conv_1x1_setup(void) { conv_bench_setup(32, 128, 14, 64, 1, 1, 0); }
static void conv_s2_setup(void) { conv_bench_setup(32, 64, 28, 128, 3, 2, 1); }
static void conv_stem_setup(void) { conv_bench_setup(8, 3, 112, 64, 7, 2, 3); }
/* conv_fwd_mid with each algorithm forced: the same work, for comparing them in one run. */
static void conv_mid_direct_setup(void) { conv_bench_setup_with(32, 64, 28, 64, 3, 1, 1, NN_CONV2D_DIRECT); }
static void conv_mid_im2col_setup(void) { conv_bench_setup_with(32, 64, 28, 64, 3, 1, 1, NN_CONV2D_IM2COL); }
static void conv_mid_winograd_setup(void) { conv_bench_setup_with(32, 64, 28, 64, 3, 1, 1, NN_CONV2D_WINOGRAD); }
static void conv_s2_im2col_setup(void) { conv_bench_setup_with(32, 64, 28, 128, 3, 2, 1, NN_CONV2D_IM2COL); }
static void conv_stem_im2col_setup(void) { conv_bench_setup_with(8, 3, 112, 64, 7, 2, 3, NN_CONV2D_IM2COL); }

/* Multiply-adds of a direct convolution's forward pass, counted twice, whatever the algorithm (GFLOPS are
 * "effective" ones: Winograd's read above the machine's peak); backward is two more such products. */
#define CBENCH_CONV_FLOPS_S(n, c_in, hw, c_out, k, s, p)                                                    \
    (2.0 * (n) * (c_out) * (((hw) + 2 * (p) - (k)) / (s) + 1) * (((hw) + 2 * (p) - (k)) / (s) + 1) * (c_in) * (k) * (k))
#define CBENCH_CONV_FLOPS(n, c_in, hw, c_out, k) (2.0 * (n) * (c_out) * (hw) * (hw) * (c_in) * (k) * (k))

/* Rows end in a comma: cbench.c's table ends its sgemm row with one and lists the families after it. */
#define CBENCH_CONV_CASES                                                                                  \
    {"conv_fwd_small", CBENCH_CONV_FLOPS(32, 3, 32, 16, 3), conv_small_setup, conv_bench_forward, conv_bench_teardown}, \
    {"conv_fwd_mid", CBENCH_CONV_FLOPS(32, 64, 28, 64, 3), conv_mid_setup, conv_bench_forward, conv_bench_teardown},   \
    {"conv_fwd_1x1", CBENCH_CONV_FLOPS(32, 128, 14, 64, 1), conv_1x1_setup, conv_bench_forward, conv_bench_teardown},  \
    {"conv_fwd_s2", CBENCH_CONV_FLOPS_S(32, 64, 28, 128, 3, 2, 1), conv_s2_setup, conv_bench_forward, conv_bench_teardown}, \
    {"conv_fwd_stem7x7", CBENCH_CONV_FLOPS_S(8, 3, 112, 64, 7, 2, 3), conv_stem_setup, conv_bench_forward,                 \
     conv_bench_teardown},                                                                                             \
    {"conv_fwdbwd_mid", 3 * CBENCH_CONV_FLOPS(32, 64, 28, 64, 3), conv_mid_setup, conv_bench_forward_backward,       \
     conv_bench_teardown},                                                                                             \
    {"conv_fwd_mid_direct", CBENCH_CONV_FLOPS(32, 64, 28, 64, 3), conv_mid_direct_setup, conv_bench_forward,          \
     conv_bench_teardown},                                                                                             \
    {"conv_fwd_mid_im2col", CBENCH_CONV_FLOPS(32, 64, 28, 64, 3), conv_mid_im2col_setup, conv_bench_forward,          \
     conv_bench_teardown},                                                                                             \
    {"conv_fwd_mid_winograd", CBENCH_CONV_FLOPS(32, 64, 28, 64, 3), conv_mid_winograd_setup, conv_bench_forward,      \
     conv_bench_teardown},                                                                                             \
    {"conv_fwd_s2_im2col", CBENCH_CONV_FLOPS_S(32, 64, 28, 128, 3, 2, 1), conv_s2_im2col_setup, conv_bench_forward,    \
     conv_bench_teardown},                                                                                             \
    {"conv_fwd_stem7x7_im2col", CBENCH_CONV_FLOPS_S(8, 3, 112, 64, 7, 2, 3), conv_stem_im2col_setup,                   \
     conv_bench_forward, conv_bench_teardown},                                                                          \
    {"conv_fwdbwd_mid_direct", 3 * CBENCH_CONV_FLOPS(32, 64, 28, 64, 3), conv_mid_direct_setup,                       \
     conv_bench_forward_backward, conv_bench_teardown},                                                                 \
    {"conv_wgrad_mid_direct", CBENCH_CONV_FLOPS(32, 64, 28, 64, 3), conv_mid_winograd_setup, conv_bench_wgrad_direct, \
     conv_bench_teardown},                                                                                             \
    {"conv_wgrad_mid_winograd", CBENCH_CONV_FLOPS(32, 64, 28, 64, 3), conv_mid_winograd_setup,                         \
     conv_bench_wgrad_winograd, conv_bench_teardown},

#endif
