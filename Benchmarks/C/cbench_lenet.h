/* lenet_train_step in C: LeNet-5 on N64 x 1x28x28 composed from the kernels alone (conv, ReLU, max-pool,
 * GEMM for the dense layers, softmax cross-entropy), backward, and an SGD(lr 0.01) step. This is the floor
 * under the Swift runner's case of the same name: the difference is the library's own overhead. */
#ifndef NEURON_CBENCH_LENET_H
#define NEURON_CBENCH_LENET_H

enum { LN_N = 64, LN_CLASSES = 10 };

/* A dense layer's buffers: weight [out, in], bias [out], their gradients, its output before and after ReLU. */
typedef struct { int in, out; float *w, *b, *dw, *db, *z, *a, *dz; } ln_dense;
/* A conv -> ReLU -> max-pool 2 stage. */
typedef struct { nn_conv2d_params p; nn_pool2d_params pool; float *w, *b, *dw, *db, *y, *r, *dy, *pooled, *dpooled, *ws; int64_t *idx; } ln_stage;

static struct {
    float *x, *logp, *loss, *dflat, *ones;
    int64_t labels[LN_N];
    ln_stage c1, c2;
    ln_dense f1, f2, f3;
} ln;

static void ln_stage_init(ln_stage *s, int c_in, int hw, int c_out, int pad, unsigned seed) {
    nn_conv2d_params p = {LN_N, c_in, hw, hw, c_out, 5, 5, 1, 1, pad, pad, pad, pad, 1, 1, 1};
    s->p = p;
    int oh = nn_conv2d_out_h(&p);
    nn_pool2d_params pool = {LN_N, c_out, oh, oh, 2, 2, 2, 2, 0, 0, 0, 1};
    s->pool = pool;
    size_t ny = (size_t)LN_N * c_out * oh * oh, nw = (size_t)c_out * c_in * 25, np = ny / 4;
    s->w = filled(nw, seed); s->b = filled((size_t)c_out, seed + 1);
    s->dw = filled(nw, 0); s->db = filled((size_t)c_out, 0);
    s->y = filled(ny, 0); s->r = filled(ny, 0); s->dy = filled(ny, 0);
    s->pooled = filled(np, 0); s->dpooled = filled(np, 0);
    s->ws = filled(nn_conv2d_workspace_size(&p), 0);
    s->idx = malloc(np * sizeof(int64_t));
}

static void ln_dense_init(ln_dense *d, int in, int out, unsigned seed) {
    d->in = in; d->out = out;
    d->w = filled((size_t)in * out, seed); d->b = filled((size_t)out, seed + 1);
    d->dw = filled((size_t)in * out, 0); d->db = filled((size_t)out, 0);
    d->z = filled((size_t)LN_N * out, 0); d->a = filled((size_t)LN_N * out, 0); d->dz = filled((size_t)LN_N * out, 0);
}

static void lenet_setup(void) {
    ln.x = filled((size_t)LN_N * 28 * 28, 21);
    ln_stage_init(&ln.c1, 1, 28, 6, 2, 22);
    ln_stage_init(&ln.c2, 6, 14, 16, 0, 24);
    ln_dense_init(&ln.f1, 400, 120, 26);
    ln_dense_init(&ln.f2, 120, 84, 28);
    ln_dense_init(&ln.f3, 84, LN_CLASSES, 30);
    ln.logp = filled((size_t)LN_N * LN_CLASSES, 0);
    ln.loss = filled(LN_N, 0);
    ln.dflat = filled((size_t)LN_N * 400, 0);
    ln.ones = filled(LN_N, 0);
    for (int i = 0; i < LN_N; i++) { ln.ones[i] = 1.0f; ln.labels[i] = i % LN_CLASSES; }
}

static void ln_stage_free(ln_stage *s) {
    free(s->w); free(s->b); free(s->dw); free(s->db); free(s->y); free(s->r); free(s->dy);
    free(s->pooled); free(s->dpooled); free(s->ws); free(s->idx);
}

static void ln_dense_free(ln_dense *d) {
    free(d->w); free(d->b); free(d->dw); free(d->db); free(d->z); free(d->a); free(d->dz);
}

static void lenet_teardown(void) {
    ln_stage_free(&ln.c1); ln_stage_free(&ln.c2);
    ln_dense_free(&ln.f1); ln_dense_free(&ln.f2); ln_dense_free(&ln.f3);
    free(ln.x); free(ln.logp); free(ln.loss); free(ln.dflat); free(ln.ones);
}

static size_t ln_stage_outputs(const ln_stage *s) {
    return (size_t)LN_N * s->p.c_out * nn_conv2d_out_h(&s->p) * nn_conv2d_out_w(&s->p);
}

static void ln_stage_forward(ln_stage *s, const float *in) {
    nn_conv2d_forward(s->y, in, s->w, s->b, s->ws, &s->p);
    nn_unary(NN_UNARY_RELU, s->r, s->y, ln_stage_outputs(s));
    nn_max_pool2d_forward(s->pooled, s->idx, s->r, &s->pool);
}

/* dx may be null (the first stage needs no input gradient). */
static void ln_stage_backward(ln_stage *s, float *dx, const float *in) {
    nn_max_pool2d_backward(s->dy, s->dpooled, s->idx, &s->pool);
    nn_activation_backward(NN_ACT_RELU, s->dy, s->dy, s->y, 0.0f, ln_stage_outputs(s));
    nn_conv2d_backward(dx, s->dw, s->db, s->dy, in, s->w, s->ws, &s->p);
}

/* z = in W^T + b; a = relu(z) unless it is the last layer. */
static void ln_dense_forward(ln_dense *d, const float *in, int relu) {
    for (int r = 0; r < LN_N; r++) memcpy(d->z + (size_t)r * d->out, d->b, sizeof(float) * d->out);
    nn_sgemm(0, 1, LN_N, d->out, d->in, 1.0f, in, d->in, d->w, d->in, 1.0f, d->z, d->out);
    if (relu) nn_unary(NN_UNARY_RELU, d->a, d->z, (size_t)LN_N * d->out);
}

/* From dz (the gradient of z): dW += dz^T in, db += column sums, din = dz W. */
static void ln_dense_backward(ln_dense *d, float *din, const float *in) {
    nn_sgemm(1, 0, d->out, d->in, LN_N, 1.0f, d->dz, d->out, in, d->in, 1.0f, d->dw, d->in);
    nn_sgemm(0, 0, 1, d->out, LN_N, 1.0f, ln.ones, LN_N, d->dz, d->out, 1.0f, d->db, d->out);
    nn_sgemm(0, 0, LN_N, d->in, d->out, 1.0f, d->dz, d->out, d->w, d->in, 0.0f, din, d->in);
}

static void ln_sgd(float *p, float *g, size_t n) {
    nn_sgd_step(p, NULL, g, n, 0.01f, 0.0f, 0.0f, 0.0f, 0, 1);
    memset(g, 0, n * sizeof(float)); /* zero_grad for the next step */
}

static void lenet_step(void) {
    ln_stage_forward(&ln.c1, ln.x);
    ln_stage_forward(&ln.c2, ln.c1.pooled);
    ln_dense_forward(&ln.f1, ln.c2.pooled, 1);
    ln_dense_forward(&ln.f2, ln.f1.a, 1);
    ln_dense_forward(&ln.f3, ln.f2.a, 0);
    nn_cross_entropy_forward(ln.loss, ln.logp, ln.f3.z, ln.labels, NULL, LN_N, LN_CLASSES);

    nn_cross_entropy_backward(ln.f3.dz, NULL, ln.logp, ln.labels, NULL, 1.0f / LN_N, LN_N, LN_CLASSES);
    ln_dense_backward(&ln.f3, ln.f2.dz, ln.f2.a);
    nn_activation_backward(NN_ACT_RELU, ln.f2.dz, ln.f2.dz, ln.f2.z, 0.0f, (size_t)LN_N * ln.f2.out);
    ln_dense_backward(&ln.f2, ln.f1.dz, ln.f1.a);
    nn_activation_backward(NN_ACT_RELU, ln.f1.dz, ln.f1.dz, ln.f1.z, 0.0f, (size_t)LN_N * ln.f1.out);
    ln_dense_backward(&ln.f1, ln.c2.dpooled, ln.c2.pooled);
    ln_stage_backward(&ln.c2, ln.c1.dpooled, ln.c1.pooled);
    ln_stage_backward(&ln.c1, NULL, ln.x);

    ln_stage *stages[2] = {&ln.c1, &ln.c2};
    for (int i = 0; i < 2; i++) {
        ln_sgd(stages[i]->w, stages[i]->dw, (size_t)stages[i]->p.c_out * stages[i]->p.c_in * 25);
        ln_sgd(stages[i]->b, stages[i]->db, (size_t)stages[i]->p.c_out);
    }
    ln_dense *dense[3] = {&ln.f1, &ln.f2, &ln.f3};
    for (int i = 0; i < 3; i++) {
        ln_sgd(dense[i]->w, dense[i]->dw, (size_t)dense[i]->in * dense[i]->out);
        ln_sgd(dense[i]->b, dense[i]->db, (size_t)dense[i]->out);
    }
}

#define CBENCH_LENET_CASES {"lenet_train_step", 0, lenet_setup, lenet_step, lenet_teardown},

#endif
