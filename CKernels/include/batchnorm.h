/* batchnorm kernels: batch normalisation, PyTorch's nn.BatchNorm1d / nn.BatchNorm2d.
 *
 * Shapes, for every function below: x, y, dx, dy are (N, C, S), seen per channel, where S = H*W for
 * (N, C, H, W) input, S = L for (N, C, L) and S = 1 for (N, C); gamma, beta, dgamma, dbeta, mean, invstd,
 * running_mean, running_var are (C). Each channel normalises over its M = N*S values.
 *
 *   y = (x - mean) * invstd * gamma + beta,   invstd = 1 / sqrt(var + eps)
 *
 * Training mode uses the batch mean and the biased batch variance (divided by M) and updates the running
 * statistics in place, PyTorch's rule: running = (1 - momentum) * running + momentum * batch, where the
 * running variance takes the UNBIASED batch variance var * M / (M - 1). (PyTorch's momentum 0.1 weighs the
 * new batch; Keras's 0.99 weighs the old value, i.e. Keras momentum = 1 - PyTorch momentum.) Eval mode
 * uses the running statistics and updates nothing.
 *
 * Rounding follows PyTorch's CPU kernel on AVX2/AVX-512 machines bit for bit: mean = f32(sum / M) (sum in
 * double), deviations from it squared in float and summed in double, invstd = f32(1 / sqrt(f32(var_sum / M)
 * + eps)) in training and 1 / sqrtf(running_var + eps) in float in eval mode, then scale = invstd * gamma,
 * shift = fma(-mean, scale, beta) and y = fma(x, scale, shift); running statistics in float steps.
 *
 * gamma and beta may be null (affine = false: gamma = 1, beta = 0). Per-channel sums are accumulated in
 * double in a fixed order (n, then s) and each thread owns whole channels, so results are identical for
 * any thread count. Backward WRITES dx (=) and ACCUMULATES (+=) dgamma and dbeta.
 */
#ifndef NEURON_BATCHNORM_H
#define NEURON_BATCHNORM_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Training forward. Writes y and the batch statistics mean, invstd that backward needs; updates
 * running_mean, running_var in place (both null: track_running_stats = false). Requires M = N*S > 1.
 * eps is a double, as PyTorch's (1e-5 and 1e-5f give different invstd roundings). y may alias x. */
void nn_batchnorm_forward_train(float *y, float *mean, float *invstd, float *running_mean, float *running_var,
                                const float *x, const float *gamma, const float *beta,
                                int n, int c, int s, float momentum, double eps);

/* Eval forward with the running statistics. mean, invstd (nullable) receive running_mean and
 * 1/sqrt(running_var + eps), the statistics to hand to nn_batchnorm_backward with training = 0.
 * y may alias x. */
void nn_batchnorm_forward_eval(float *y, float *mean, float *invstd, const float *x, const float *gamma,
                               const float *beta, const float *running_mean, const float *running_var,
                               int n, int c, int s, float eps);

/* Backward from dy, the forward's input x and the statistics its forward saved (mean, invstd).
 *   training = 1: gradients flow through the batch statistics,
 *       dx = gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)),  xhat = (x - mean) * invstd;
 *   training = 0: the statistics are constants, dx = gamma * invstd * dy.
 *   Both: dgamma += sum(dy * xhat), dbeta += sum(dy) over each channel's M values.
 * dx (written), dgamma, dbeta (accumulated) may each be null to skip them; gamma null means 1. */
void nn_batchnorm_backward(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                           const float *gamma, const float *mean, const float *invstd,
                           int n, int c, int s, int training);

/* One channel at a time in the textbook form: the references the tests compare the kernels above against.
 * Same buffers and contract. */
void nn_batchnorm_forward_train_ref(float *y, float *mean, float *invstd, float *running_mean, float *running_var,
                                    const float *x, const float *gamma, const float *beta,
                                    int n, int c, int s, float momentum, double eps);
void nn_batchnorm_backward_ref(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                               const float *gamma, const float *mean, const float *invstd,
                               int n, int c, int s, int training);

#ifdef __cplusplus
}
#endif
#endif
