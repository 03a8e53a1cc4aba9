#include "nn_internal.h"
#include <stdlib.h>

static int nn_thread_count = 0;

int nn_openmp_enabled(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

static int default_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int nn_threads(void) {
    int n = __atomic_load_n(&nn_thread_count, __ATOMIC_RELAXED);
    if (n <= 0) {
        n = default_threads();
        __atomic_store_n(&nn_thread_count, n, __ATOMIC_RELAXED);
    }
    return n;
}

void nn_set_num_threads(int n) {
    if (n <= 0) n = default_threads();
    __atomic_store_n(&nn_thread_count, n, __ATOMIC_RELAXED);
}

int nn_get_num_threads(void) {
#ifdef _OPENMP
    return nn_threads();
#else
    return 1;
#endif
}
