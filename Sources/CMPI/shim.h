/* Open MPI for Swift. Open MPI's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM...) are macros over the
 * addresses of its predefined objects, which Swift does not import; these functions return them. */
#ifndef NEURON_CMPI_SHIM_H
#define NEURON_CMPI_SHIM_H

#include <mpi.h>

static inline MPI_Comm nmpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype nmpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype nmpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype nmpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype nmpi_uint64(void) { return MPI_UINT64_T; }
static inline MPI_Op nmpi_sum(void) { return MPI_SUM; }
static inline MPI_Errhandler nmpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline void *nmpi_in_place(void) { return MPI_IN_PLACE; }

#endif
