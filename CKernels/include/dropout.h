/* dropout kernels: declarations added with the kernels. */
#ifndef NEURON_DROPOUT_H
#define NEURON_DROPOUT_H
#include <stddef.h>
#include <stdint.h>

#endif
