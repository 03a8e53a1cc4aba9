/* pool kernels: declarations added with the kernels. */
#ifndef NEURON_POOL_H
#define NEURON_POOL_H
#include <stddef.h>
#include <stdint.h>

#endif
