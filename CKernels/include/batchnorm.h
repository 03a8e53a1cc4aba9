/* batchnorm kernels: declarations added with the kernels. */
#ifndef NEURON_BATCHNORM_H
#define NEURON_BATCHNORM_H
#include <stddef.h>
#include <stdint.h>

#endif
