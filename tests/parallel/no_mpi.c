/* no_mpi.c - driver/parallel.c built without MPI, started as if by
 * `mpirun -np 2`: it must exit 1 with its one-line message (checked by
 * parallel.cmake's PASS_REGULAR_EXPRESSION) instead of training alone. */
#include <stdio.h>
#include <stdlib.h>

#include "parallel.h"

int main(int argc, char **argv) {
  setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
  setenv("OMPI_COMM_WORLD_RANK", "0", 1);
  par_init(&argc, &argv); /* exits */
  printf("par_init returned: no message\n");
  return 0;
}
