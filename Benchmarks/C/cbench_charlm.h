/* charlm_train_step in C: Embedding(65, 64) -> 2-layer LSTM(256) -> Linear(256, 65) on tokens T100 x N32
 * (time-major), mean softmax cross-entropy over all 3200 positions, backward, Adam(lr 2e-3) step, composed
 * from the kernels alone (embedding, rnn, GEMM, cross-entropy, column sums, Adam). The floor under the Swift
 * runner's case of the same name. FLOPs as torch_anchor.py counts them: 3 x the forward's (both LSTM layers
 * and the output layer). */
#ifndef NEURON_CBENCH_CHARLM_H
#define NEURON_CBENCH_CHARLM_H

enum { CL_V = 65, CL_E = 64, CL_H = 256, CL_T = 100, CL_N = 32, CL_ROWS = CL_T * CL_N };

/* A parameter with its gradient and Adam moments. */
typedef struct { size_t n; float *p, *g, *m, *v; } cl_param;

static struct {
    int64_t tokens[CL_ROWS], targets[CL_ROWS];
    cl_param emb, w_ih[2], w_hh[2], b_ih[2], b_hh[2], out_w, out_b;
    nn_rnn_params p[2];
    float *x, *y[2], *saved[2], *ws[2], *logits, *logp, *loss, *dz, *dy[2], *dx;
    long step;
} cl;

static void cl_param_init(cl_param *q, size_t n, unsigned seed, float scale) {
    q->n = n;
    q->p = filled(n, seed); q->g = filled(n, 0); q->m = filled(n, 0); q->v = filled(n, 0);
    for (size_t i = 0; i < n; i++) { q->p[i] *= scale; q->m[i] = 0; q->v[i] = 0; }
}

static void cl_param_free(cl_param *q) { free(q->p); free(q->g); free(q->m); free(q->v); }

static void charlm_setup(void) {
    unsigned s = 77;
    for (int i = 0; i < CL_ROWS; i++) {
        s = s * 1664525u + 1013904223u; cl.tokens[i] = (s >> 8) % CL_V;
        s = s * 1664525u + 1013904223u; cl.targets[i] = (s >> 8) % CL_V;
    }
    cl_param_init(&cl.emb, (size_t)CL_V * CL_E, 40, 2.0f);
    for (int l = 0; l < 2; l++) {
        int d = l == 0 ? CL_E : CL_H;
        /* U(+-1/16), PyTorch's range for hidden 256. */
        cl_param_init(&cl.w_ih[l], (size_t)4 * CL_H * d, 41 + 4 * l, 0.125f);
        cl_param_init(&cl.w_hh[l], (size_t)4 * CL_H * CL_H, 42 + 4 * l, 0.125f);
        cl_param_init(&cl.b_ih[l], (size_t)4 * CL_H, 43 + 4 * l, 0.125f);
        cl_param_init(&cl.b_hh[l], (size_t)4 * CL_H, 44 + 4 * l, 0.125f);
        cl.p[l] = (nn_rnn_params){.cell = NN_CELL_LSTM, .steps = CL_T, .batch = CL_N, .input = d, .hidden = CL_H, .ldy = CL_H};
        cl.y[l] = filled((size_t)CL_ROWS * CL_H, 0);
        cl.dy[l] = filled((size_t)CL_ROWS * CL_H, 0);
        cl.saved[l] = filled(nn_rnn_saved_size(&cl.p[l]), 0);
        cl.ws[l] = filled(nn_rnn_workspace_size(&cl.p[l]), 0);
    }
    cl_param_init(&cl.out_w, (size_t)CL_V * CL_H, 50, 0.125f);
    cl_param_init(&cl.out_b, CL_V, 51, 0.125f);
    cl.x = filled((size_t)CL_ROWS * CL_E, 0);
    cl.dx = filled((size_t)CL_ROWS * CL_E, 0);
    cl.logits = filled((size_t)CL_ROWS * CL_V, 0);
    cl.logp = filled((size_t)CL_ROWS * CL_V, 0);
    cl.dz = filled((size_t)CL_ROWS * CL_V, 0);
    cl.loss = filled(CL_ROWS, 0);
    cl.step = 0;
}

static cl_param *cl_params(int i) {
    cl_param *all[] = {&cl.emb, &cl.w_ih[0], &cl.w_hh[0], &cl.b_ih[0], &cl.b_hh[0],
                       &cl.w_ih[1], &cl.w_hh[1], &cl.b_ih[1], &cl.b_hh[1], &cl.out_w, &cl.out_b};
    return i < 11 ? all[i] : NULL;
}

static void charlm_step(void) {
    for (int i = 0; i < 11; i++) memset(cl_params(i)->g, 0, cl_params(i)->n * sizeof(float));
    /* Forward. */
    nn_embedding_forward(cl.x, cl.emb.p, cl.tokens, CL_ROWS, CL_V, CL_E);
    const float *in = cl.x;
    for (int l = 0; l < 2; l++) {
        nn_rnn_weights w = {.w_ih = cl.w_ih[l].p, .w_hh = cl.w_hh[l].p, .b_ih = cl.b_ih[l].p, .b_hh = cl.b_hh[l].p};
        nn_rnn_forward(cl.y[l], NULL, NULL, cl.saved[l], in, NULL, NULL, &w, cl.ws[l], &cl.p[l]);
        in = cl.y[l];
    }
    for (int r = 0; r < CL_ROWS; r++) memcpy(cl.logits + (size_t)r * CL_V, cl.out_b.p, CL_V * sizeof(float));
    nn_sgemm(0, 1, CL_ROWS, CL_V, CL_H, 1.0f, cl.y[1], CL_H, cl.out_w.p, CL_H, 1.0f, cl.logits, CL_V);
    nn_cross_entropy_forward(cl.loss, cl.logp, cl.logits, cl.targets, NULL, CL_ROWS, CL_V);
    volatile double loss = nn_sum_all(cl.loss, CL_ROWS) / CL_ROWS;
    (void)loss;
    /* Backward. */
    nn_cross_entropy_backward(cl.dz, NULL, cl.logp, cl.targets, NULL, 1.0f / CL_ROWS, CL_ROWS, CL_V);
    nn_sgemm(1, 0, CL_V, CL_H, CL_ROWS, 1.0f, cl.dz, CL_V, cl.y[1], CL_H, 1.0f, cl.out_w.g, CL_H);
    nn_reduce_sum(cl.out_b.g, cl.dz, 1, CL_ROWS, CL_V);
    nn_sgemm(0, 0, CL_ROWS, CL_H, CL_V, 1.0f, cl.dz, CL_V, cl.out_w.p, CL_H, 0.0f, cl.dy[1], CL_H);
    for (int l = 1; l >= 0; l--) {
        nn_rnn_weights w = {.w_ih = cl.w_ih[l].p, .w_hh = cl.w_hh[l].p, .b_ih = cl.b_ih[l].p, .b_hh = cl.b_hh[l].p};
        nn_rnn_grads g = {.w_ih = cl.w_ih[l].g, .w_hh = cl.w_hh[l].g, .b_ih = cl.b_ih[l].g, .b_hh = cl.b_hh[l].g};
        float *dx = l == 1 ? cl.dy[0] : cl.dx;
        nn_rnn_backward(dx, NULL, NULL, &g, cl.dy[l], NULL, NULL, l == 1 ? cl.y[0] : cl.x, &w, cl.saved[l], cl.ws[l], &cl.p[l]);
    }
    nn_embedding_backward(cl.emb.g, cl.dx, cl.tokens, -1, CL_ROWS, CL_V, CL_E);
    /* Adam(lr 2e-3). */
    cl.step++;
    for (int i = 0; i < 11; i++) {
        cl_param *q = cl_params(i);
        nn_adam_step(q->p, q->m, q->v, q->g, q->n, 2e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, 0, cl.step);
    }
}

static void charlm_teardown(void) {
    for (int i = 0; i < 11; i++) cl_param_free(cl_params(i));
    for (int l = 0; l < 2; l++) { free(cl.y[l]); free(cl.dy[l]); free(cl.saved[l]); free(cl.ws[l]); }
    free(cl.x); free(cl.dx); free(cl.logits); free(cl.logp); free(cl.dz); free(cl.loss);
}

#define CL_LSTM_FLOPS(d) (2.0 * CL_T * CL_N * 4 * CL_H * ((d) + CL_H))
#define CBENCH_CHARLM_CASES \
    {"charlm_train_step", 3.0 * (CL_LSTM_FLOPS(CL_E) + CL_LSTM_FLOPS(CL_H) + 2.0 * CL_ROWS * CL_H * CL_V), charlm_setup, charlm_step, charlm_teardown},

#endif
