/* Recurrent kernels: one layer, one direction, a whole sequence, forward and backward through time.
 *
 * Cells (G gate blocks of H rows in W_ih [G*H, D] and W_hh [G*H, H]; gx = x W_ih^T + b_ih and
 * gh = h_prev W_hh^T + b_hh, split into blocks of H; sigma is the logistic function):
 *   NN_CELL_RNN_TANH / _RELU (G = 1): h = act(gx + gh)                                     PyTorch nn.RNN
 *   NN_CELL_LSTM (G = 4: i, f, g, o):                                                       PyTorch nn.LSTM
 *       i = sigma(gx_i + gh_i), f = sigma(gx_f + gh_f), g = tanh(gx_g + gh_g), o = sigma(gx_o + gh_o)
 *       c = f * c_prev + i * g,  h = o * tanh(c)
 *   NN_CELL_LSTM_PEEPHOLE (G = 4, Gers & Schmidhuber): as NN_CELL_LSTM with diagonal peepholes
 *       i = sigma(... + w_ci * c_prev), f = sigma(... + w_cf * c_prev), o = sigma(... + w_co * c)
 *   NN_CELL_LSTM_COUPLED (G = 3: f, g, o): input gate coupled to the forget gate, i = 1 - f
 *       c = f * c_prev + (1 - f) * g,  h = o * tanh(c)
 *   NN_CELL_GRU (G = 3: r, z, n), reset applied after the recurrent product (PyTorch nn.GRU, cuDNN):
 *       r = sigma(gx_r + gh_r), z = sigma(gx_z + gh_z), n = tanh(gx_n + r * gh_n)  (gh_n includes b_hn)
 *       h = (1 - z) * n + z * h_prev
 *   NN_CELL_GRU_RESET_BEFORE (G = 3: r, z, n), Cho et al. 2014, reset applied to the state first:
 *       r, z as above, n = tanh(gx_n + (r * h_prev) W_hn^T + b_hn),  h = (1 - z) * n + z * h_prev
 *   NN_CELL_GRU_SIMPLE (G = 2: u, n), the GRU with only an update gate:
 *       u = sigma(gx_u + gh_u), n = tanh(gx_n + gh_n),  h = u * n + (1 - u) * h_prev
 * Update-gate convention: in both full GRUs z is the share of the OLD state kept (PyTorch's and Cho's
 * h = z h_prev + (1 - z) n; the classic notation's Gamma_u is 1 - z). The simplified GRU uses the
 * classic notation directly: its gate u (Gamma_u) is the share of the NEW candidate.
 *
 * Layouts: x is time-major [T, N, D] (contiguous); y is [T, N, ldy] of which this call owns columns
 * [0, H) (a bidirectional layer passes y + H and ldy = 2H for its reverse direction); states h0, h_n,
 * c0, c_n are [N, H]. Variable lengths: with `lengths` (N values in [1, T], any order), sequence n
 * runs steps 0 .. lengths[n]-1 (reverse: lengths[n]-1 .. 0, starting at its own last step, as PyTorch's
 * packed sequences do); y is exactly 0 at its padded steps, h_n/c_n hold its state after its own last
 * step, and its padded steps of x get exactly zero gradient. Without lengths every sequence has T steps.
 *
 * Work: the input projection of all steps is one matrix product before the time loop; each step is
 * one product for the recurrent part with the cell applied to it; backward reuses the gate activations
 * saved by forward and accumulates the weight gradients with one product over all steps after the loop.
 * By default (nn_rnn_set_fused) the projection and each step run on our register tiles in one OpenMP
 * team, the step fused with the cell (the standard LSTM with H a multiple of 16 takes each step's input
 * into that step's product instead of a projection before the loop), and the weight gradients after the
 * backward loop run on the same kind of tiles when input and hidden sizes are multiples of 16; the other
 * products are single-threaded OpenBLAS calls on fixed blocks run by our team (nn_sgemm_blocked), so every
 * result is bit-identical for any thread count, whichever core OpenBLAS chose its kernels for.
 */
#ifndef NEURON_RNN_H
#define NEURON_RNN_H
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    NN_CELL_RNN_TANH,
    NN_CELL_RNN_RELU,
    NN_CELL_LSTM,
    NN_CELL_LSTM_PEEPHOLE,
    NN_CELL_LSTM_COUPLED,
    NN_CELL_GRU,
    NN_CELL_GRU_RESET_BEFORE,
    NN_CELL_GRU_SIMPLE
} nn_rnn_cell;

/* G, the number of gate blocks of H rows in W_ih and W_hh (1, 4, 4, 3, 3, 3, 2 in the order above). */
int nn_rnn_gate_count(nn_rnn_cell cell);

typedef struct {
    nn_rnn_cell cell;
    int steps;             /* T >= 0 */
    int batch;             /* N >= 0 */
    int input;             /* D >= 0 */
    int hidden;            /* H >= 1 */
    int reverse;           /* 1: the reverse direction of a bidirectional layer */
    const long *lengths;   /* N valid lengths in [1, T], or null: every sequence has T steps */
    int ldy;               /* row stride of y and dy in floats, >= H */
    int accumulate_dx;     /* 1: backward adds into dx (the second direction of a bidirectional layer) */
} nn_rnn_params;

/* Parameters of one layer and direction. Biases may be null (bias=False); the peephole weights
 * [H] are read only by NN_CELL_LSTM_PEEPHOLE. */
typedef struct {
    const float *w_ih;     /* [G*H, D] */
    const float *w_hh;     /* [G*H, H] */
    const float *b_ih;     /* [G*H] or null */
    const float *b_hh;     /* [G*H] or null */
    const float *w_ci, *w_cf, *w_co; /* [H] each */
} nn_rnn_weights;

/* Gradients of the same parameters; backward ACCUMULATES (+=) into them. Any may be null to skip it. */
typedef struct {
    float *w_ih, *w_hh, *b_ih, *b_hh, *w_ci, *w_cf, *w_co;
} nn_rnn_grads;

/* Floats of the activations forward saves for backward (caller-owned, passed from one to the other). */
size_t nn_rnn_saved_size(const nn_rnn_params *p);
/* Floats of scratch that forward and backward need (one size serves both). */
size_t nn_rnn_workspace_size(const nn_rnn_params *p);

/* Runs the sequence:
 *   y [T, N, ldy] (columns [0, H) written), h_n [N, H], c_n [N, H] (LSTM cells only, else ignored);
 *   saved (nn_rnn_saved_size floats) filled for backward, or null for inference;
 *   x [T, N, D]; h0, c0 [N, H] or null for zeros; weights as above.
 * h_n and c_n may be null. workspace holds nn_rnn_workspace_size(p) floats. */
void nn_rnn_forward(float *y, float *h_n, float *c_n, float *saved, const float *x, const float *h0, const float *c0,
                    const nn_rnn_weights *w, float *workspace, const nn_rnn_params *p);

/* Backward through time from dy [T, N, ldy] (columns [0, H)), dh_n [N, H] and dc_n [N, H] (each may be
 * null: a zero gradient) with the x, weights and saved activations of the forward call:
 *   dx [T, N, D] WRITTEN (=), or added to when p->accumulate_dx; dh0, dc0 [N, H] WRITTEN;
 *   parameter gradients ACCUMULATED (+=).
 * dx, dh0, dc0 may be null to skip them. workspace holds nn_rnn_workspace_size(p) floats. */
void nn_rnn_backward(float *dx, float *dh0, float *dc0, const nn_rnn_grads *g, const float *dy, const float *dh_n,
                     const float *dc_n, const float *x, const nn_rnn_weights *w, const float *saved,
                     float *workspace, const nn_rnn_params *p);

/* Selects how the forward projection and each step's recurrent product are computed: 1 (the default)
 * our fused kernels, which keep each thread's block of W_hh in cache and apply the cell to the product's
 * register tiles; 0 OpenBLAS GEMMs (one per step) each followed by a pointwise pass over the rows (the
 * reset-before GRU, whose step needs two dependent products, always takes this path). For tests and
 * benchmarks; the results agree to float rounding. */
void nn_rnn_set_fused(int on);

/* Plain per-step, per-element loops in double with libm's exp and tanh: the references the tests
 * compare against. Same buffers and contracts as above, without saved activations or workspace
 * (backward recomputes the forward pass). */
void nn_rnn_forward_ref(float *y, float *h_n, float *c_n, const float *x, const float *h0, const float *c0,
                        const nn_rnn_weights *w, const nn_rnn_params *p);
void nn_rnn_backward_ref(float *dx, float *dh0, float *dc0, const nn_rnn_grads *g, const float *dy, const float *dh_n,
                         const float *dc_n, const float *x, const float *h0, const float *c0, const nn_rnn_weights *w,
                         const nn_rnn_params *p);

#ifdef __cplusplus
}
#endif

#endif
