/* Benchmark cases of the kernel families beyond GEMM. Each family has a header here that defines its
 * setup/run/teardown functions and a macro of its rows; CBENCH_FAMILY_CASES lists them all. */
#ifndef NEURON_CBENCH_CASES_H
#define NEURON_CBENCH_CASES_H

#include "cbench_conv.h"
#include "cbench_lenet.h"
#include "cbench_rnn.h"
#include "cbench_gram.h"
#include "cbench_boxes.h"
#include "cbench_charlm.h"

#define CBENCH_FAMILY_CASES CBENCH_CONV_CASES CBENCH_LENET_CASES CBENCH_RNN_CASES CBENCH_GRAM_CASES CBENCH_BOXES_CASES CBENCH_CHARLM_CASES

#endif
