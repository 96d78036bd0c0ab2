# tests/parallel/parallel.cmake - threads and MPI (included from tests/CMakeLists.txt)
set(NNC_PAR ${CMAKE_CURRENT_LIST_DIR}/parallel.sh)
foreach(case threads.repeat threads.agree threads.adam threads.gemm threads.dropout threads.unbatched threads.usage threads.clamp threads.stats
             features.bits features.conv features.choice)
  add_test(NAME parallel.${case} COMMAND ${NNC_PAR} $<TARGET_FILE:nnc> ${PROJECT_SOURCE_DIR}/examples ${case})
  set_tests_properties(parallel.${case} PROPERTIES LABELS parallel TIMEOUT 120)
endforeach()
find_program(NNC_MPIRUN mpirun)
if(MPI_C_FOUND AND NNC_MPIRUN)
  foreach(case mpi.equal mpi.dropout mpi.fault mpi.diverge mpi.disagree mpi.batch_norm)
    add_test(NAME parallel.${case} COMMAND ${NNC_PAR} $<TARGET_FILE:nnc> ${PROJECT_SOURCE_DIR}/examples ${case})
    # two processes each: never alongside another MPI test
    set_tests_properties(parallel.${case} PROPERTIES LABELS "parallel;mpi" TIMEOUT 300 RESOURCE_LOCK mpi)
  endforeach()
endif()

# the message of an nnc without MPI started by mpirun: parallel.c built
# again without NNC_HAVE_MPI, in a small driver that pretends to be rank 0 of 2
# (the rest comes from libnnc, whose own parallel.o is never pulled in: this
# one defines its symbols first)
add_executable(test_no_mpi ${CMAKE_CURRENT_LIST_DIR}/no_mpi.c ${PROJECT_SOURCE_DIR}/driver/parallel.c)
target_compile_options(test_no_mpi PRIVATE ${NNC_WARNINGS})
target_link_libraries(test_no_mpi PRIVATE nnc_lib)
add_test(NAME parallel.no_mpi_message COMMAND sh -c
  "out=$($<TARGET_FILE:test_no_mpi> 2>&1); rc=$?; echo \"$out\"; [ $rc -eq 1 ] && [ \"$out\" = 'nnc: started by mpirun with 2 processes, but this nnc was built without MPI (install libopenmpi-dev and rebuild)' ]")
set_tests_properties(parallel.no_mpi_message PROPERTIES LABELS parallel)

# nnc without its plugins (a copy of the executable alone): --plot and
# mpirun say which plugin is missing, exit 1, and leave no file behind
add_test(NAME plugins.missing COMMAND ${CMAKE_CURRENT_LIST_DIR}/missing_plugins.sh $<TARGET_FILE:nnc>
         ${PROJECT_SOURCE_DIR}/examples/moons.nn)
set_tests_properties(plugins.missing PROPERTIES LABELS "parallel;report")

# the CPUs nnc may use (affinity, cgroup quota) and waits that sleep
add_executable(test_threads ${CMAKE_CURRENT_LIST_DIR}/test_threads.c)
target_compile_options(test_threads PRIVATE ${NNC_WARNINGS})
target_link_libraries(test_threads PRIVATE nnc_lib)
add_test(NAME parallel.threads.pool COMMAND test_threads)
set_tests_properties(parallel.threads.pool PROPERTIES LABELS parallel TIMEOUT 120)
# (not under the sanitizers: LeakSanitizer's own thread cannot start there)
if(NOT NNC_SANITIZE)
  add_test(NAME parallel.thread_limit
           COMMAND ${CMAKE_CURRENT_LIST_DIR}/thread_limit.sh $<TARGET_FILE:nnc> ${PROJECT_SOURCE_DIR}/examples)
endif()

# the feature split's worker (runtime/fork.c) with a kernel that records
# the parts it is called for
add_executable(test_fork ${CMAKE_CURRENT_LIST_DIR}/test_fork.c)
target_compile_options(test_fork PRIVATE ${NNC_WARNINGS})
target_link_libraries(test_fork PRIVATE nnc_lib)
add_test(NAME parallel.fork.unit COMMAND test_fork)
set_tests_properties(parallel.fork.unit PROPERTIES LABELS parallel TIMEOUT 60)
