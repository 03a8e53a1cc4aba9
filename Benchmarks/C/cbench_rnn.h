/* lstm_fwd, lstm_fwdbwd, gru_fwd, gru_fwdbwd: one layer, input 128, hidden 256, T64 x N32, zero initial
 * state (../shared/bench/torch_anchor.py). fwd runs inference (no activations saved); fwdbwd runs the
 * training forward and backward from a fixed upstream gradient on the output sequence, into the gradients
 * of the input and every parameter. FLOPs = 2·T·N·G·H·(D + H) per forward (G = 4 LSTM, 3 GRU), 3x for fwdbwd. */
#ifndef NEURON_CBENCH_RNN_H
#define NEURON_CBENCH_RNN_H

enum { RB_T = 64, RB_N = 32, RB_D = 128, RB_H = 256 };

static struct {
    nn_rnn_params p;
    nn_rnn_weights w;
    nn_rnn_grads g;
    float *x, *y, *h_n, *c_n, *saved, *ws, *dy, *dx;
    float *w_ih, *w_hh, *b_ih, *b_hh, *gw_ih, *gw_hh, *gb_ih, *gb_hh;
} rb;


static void rb_setup(nn_rnn_cell cell, int training) {
    const int gh = nn_rnn_gate_count(cell) * RB_H;
    rb.p = (nn_rnn_params){.cell = cell, .steps = RB_T, .batch = RB_N, .input = RB_D, .hidden = RB_H, .ldy = RB_H};
    rb.x = filled((size_t)RB_T * RB_N * RB_D, 1);
    rb.y = filled((size_t)RB_T * RB_N * RB_H, 0);
    rb.h_n = filled((size_t)RB_N * RB_H, 0);
    rb.c_n = filled((size_t)RB_N * RB_H, 0);
    /* filled() gives U(-0.5, 0.5); PyTorch's init is U(+-1/16) here: scale down so the gates stay in range. */
    rb.w_ih = filled((size_t)gh * RB_D, 2); rb.w_hh = filled((size_t)gh * RB_H, 3);
    rb.b_ih = filled((size_t)gh, 4); rb.b_hh = filled((size_t)gh, 5);
    for (size_t i = 0; i < (size_t)gh * RB_D; i++) rb.w_ih[i] *= 0.125f;
    for (size_t i = 0; i < (size_t)gh * RB_H; i++) rb.w_hh[i] *= 0.125f;
    rb.w = (nn_rnn_weights){.w_ih = rb.w_ih, .w_hh = rb.w_hh, .b_ih = rb.b_ih, .b_hh = rb.b_hh};
    rb.ws = filled(nn_rnn_workspace_size(&rb.p), 0);
    rb.saved = training ? filled(nn_rnn_saved_size(&rb.p), 0) : NULL;
    if (training) {
        rb.dy = filled((size_t)RB_T * RB_N * RB_H, 6);
        rb.dx = filled((size_t)RB_T * RB_N * RB_D, 0);
        rb.gw_ih = filled((size_t)gh * RB_D, 0); rb.gw_hh = filled((size_t)gh * RB_H, 0);
        rb.gb_ih = filled((size_t)gh, 0); rb.gb_hh = filled((size_t)gh, 0);
        rb.g = (nn_rnn_grads){.w_ih = rb.gw_ih, .w_hh = rb.gw_hh, .b_ih = rb.gb_ih, .b_hh = rb.gb_hh};
    }
}

static void rb_teardown(void) {
    free(rb.x); free(rb.y); free(rb.h_n); free(rb.c_n); free(rb.w_ih); free(rb.w_hh); free(rb.b_ih); free(rb.b_hh);
    free(rb.ws); free(rb.saved);
    if (rb.dy) { free(rb.dy); free(rb.dx); free(rb.gw_ih); free(rb.gw_hh); free(rb.gb_ih); free(rb.gb_hh); }
    memset(&rb, 0, sizeof rb);
}

static void rb_forward(void) {
    nn_rnn_forward(rb.y, rb.h_n, rb.c_n, rb.saved, rb.x, NULL, NULL, &rb.w, rb.ws, &rb.p);
}

static void rb_forward_backward(void) {
    rb_forward();
    nn_rnn_backward(rb.dx, NULL, NULL, &rb.g, rb.dy, NULL, NULL, rb.x, &rb.w, rb.saved, rb.ws, &rb.p);
}

static void lstm_fwd_setup(void) { rb_setup(NN_CELL_LSTM, 0); }
static void lstm_fwdbwd_setup(void) { rb_setup(NN_CELL_LSTM, 1); }
static void gru_fwd_setup(void) { rb_setup(NN_CELL_GRU, 0); }
static void gru_fwdbwd_setup(void) { rb_setup(NN_CELL_GRU, 1); }

#define CBENCH_RNN_CASES                                                                              \
    {"lstm_fwd", 2.0 * RB_T * RB_N * 4 * RB_H * (RB_D + RB_H), lstm_fwd_setup, rb_forward, rb_teardown},            \
    {"lstm_fwdbwd", 6.0 * RB_T * RB_N * 4 * RB_H * (RB_D + RB_H), lstm_fwdbwd_setup, rb_forward_backward, rb_teardown}, \
    {"gru_fwd", 2.0 * RB_T * RB_N * 3 * RB_H * (RB_D + RB_H), gru_fwd_setup, rb_forward, rb_teardown},              \
    {"gru_fwdbwd", 6.0 * RB_T * RB_N * 3 * RB_H * (RB_D + RB_H), gru_fwdbwd_setup, rb_forward_backward, rb_teardown},

#endif
