/*
 * plugin.h - the parts of nnc loaded only when a run needs them (dlopen):
 *
 *   nnc-report.so  draws --plot reports with cairo (report.c)
 *   nnc-mpi.so     talks to MPI under mpirun (mpi.c)
 *
 * Linked into nnc, their libraries (cairo with fontconfig, freetype and
 * X11's; OpenMPI's runtime: two dozen) would be loaded at every start,
 * about 4 ms of a 30 ms training run; as plugins, only a run that plots,
 * or runs under mpirun, loads them.
 *
 * A plugin is looked for next to the running program (the build tree) and
 * in ../lib/nnc from it (an installed nnc, whatever the prefix), next to
 * the library holding this code and in its nnc/ directory (an installed
 * libnnc.so: LIBDIR/nnc), then in the directory nnc was configured to be
 * installed in (NNC_PLUGIN_DIR).
 */
#ifndef NNC_PLUGIN_H
#define NNC_PLUGIN_H

#include <stddef.h>

/* Symbol `symbol` of plugin `name` (nnc-NAME.so), loading it on first use;
 * NULL with the reason in err when it cannot be found or loaded. */
void *plugin_symbol(const char *name, const char *symbol, char *err, size_t errlen);

#endif
