# nncConfig.cmake - find_package(nnc) gives the imported target nnc::nnc,
# the shared libnnc with nnc.h on its include path. libnnc.so carries its own
# dependencies (LLVM, cJSON; cairo and MPI through its plugins in
# LIBDIR/nnc), so nothing else needs to be found.
include("${CMAKE_CURRENT_LIST_DIR}/nncTargets.cmake")
