/* Convolution benchmark cases (../shared/bench/README.md). */
#define CBENCH_CONV_CASES
