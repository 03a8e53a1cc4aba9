/* conv2d kernels: declarations added with the kernels. */
#ifndef NEURON_CONV2D_H
#define NEURON_CONV2D_H
#include <stddef.h>
#include <stdint.h>

#endif
