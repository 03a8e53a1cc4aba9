/* Optimiser updates, in place, following PyTorch's update rules (torch.optim, single-tensor path).
 * p, g and every state buffer are [n]. */
#include "nn_internal.h"
#include <math.h>

void nn_sgd_step(float *p, float *buf, const float *g, size_t n, float lr, float momentum, float dampening,
                 float weight_decay, int nesterov, int first_step) {
    assert(momentum == 0.0f || buf);
    NN_PARALLEL_FOR_IF(n >= NN_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) {
        float d = g[i] + weight_decay * p[i];
        if (momentum != 0.0f) {
            buf[i] = first_step ? d : momentum * buf[i] + (1.0f - dampening) * d;
            d = nesterov ? d + momentum * buf[i] : buf[i];
        }
        p[i] -= lr * d;
    }
}

void nn_adam_step(float *p, float *m, float *v, const float *g, size_t n, float lr, float beta1, float beta2,
                  float eps, float weight_decay, int decoupled, long step) {
    assert(step >= 1);
    float bc1 = 1.0f - powf(beta1, (float)step);
    float bc2_sqrt = sqrtf(1.0f - powf(beta2, (float)step));
    float step_size = lr / bc1;
    NN_PARALLEL_FOR_IF(n >= NN_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        if (decoupled) p[i] *= 1.0f - lr * weight_decay;
        else gi += weight_decay * p[i];
        m[i] += (gi - m[i]) * (1.0f - beta1);
        v[i] = beta2 * v[i] + (1.0f - beta2) * gi * gi;
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] -= step_size * m[i] / denom;
    }
}

void nn_adagrad_step(float *p, float *sum, const float *g, size_t n, float lr, float lr_decay,
                     float weight_decay, float eps, long step) {
    assert(step >= 1);
    float clr = lr / (1.0f + (float)(step - 1) * lr_decay);
    NN_PARALLEL_FOR_IF(n >= NN_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + weight_decay * p[i];
        sum[i] += gi * gi;
        p[i] -= clr * gi / (sqrtf(sum[i]) + eps);
    }
}

void nn_rmsprop_step(float *p, float *sq, float *gavg, float *buf, const float *g, size_t n, float lr,
                     float alpha, float eps, float weight_decay, float momentum, int centered) {
    assert(!centered || gavg);
    assert(momentum == 0.0f || buf);
    NN_PARALLEL_FOR_IF(n >= NN_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + weight_decay * p[i];
        sq[i] = alpha * sq[i] + (1.0f - alpha) * gi * gi;
        float avg = sq[i];
        if (centered) {
            gavg[i] = alpha * gavg[i] + (1.0f - alpha) * gi;
            avg -= gavg[i] * gavg[i];
        }
        float denom = sqrtf(avg) + eps;
        if (momentum > 0.0f) {
            buf[i] = momentum * buf[i] + gi / denom;
            p[i] -= lr * buf[i];
        } else {
            p[i] -= lr * gi / denom;
        }
    }
}
