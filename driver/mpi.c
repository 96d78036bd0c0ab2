/*
 * mpi.c - nnc-mpi.so, the plugin (plugin.h) through which parallel.c talks
 * to MPI: par_init loads it only under mpirun, so other runs never load
 * OpenMPI's libraries. Everything is on MPI_COMM_WORLD.
 */
#include <mpi.h>

#include "parallel.h"

static void init(int *argc, char ***argv, int *rank, int *size) {
  MPI_Init(argc, argv);
  MPI_Comm_rank(MPI_COMM_WORLD, rank);
  MPI_Comm_size(MPI_COMM_WORLD, size);
}

static void finalize(void) { MPI_Finalize(); }

static int min_int(int v) {
  int least = v;
  MPI_Allreduce(&v, &least, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return least;
}

static void sum(void *data, int count, bool f64) {
  MPI_Allreduce(MPI_IN_PLACE, data, count, f64 ? MPI_DOUBLE : MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}

static void send_text(const char *text, int len, int to) {
  MPI_Send(text, len, MPI_CHAR, to, 1, MPI_COMM_WORLD);
}

static void recv_text(char *text, int cap, int from) {
  MPI_Recv(text, cap, MPI_CHAR, from, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
}

static void bcast(void *data, int bytes) { MPI_Bcast(data, bytes, MPI_BYTE, 0, MPI_COMM_WORLD); }

__attribute__((visibility("default"))) const ParMpi nnc_mpi = {init,      finalize,  min_int, sum,
                                                                send_text, recv_text, bcast};
