# tests/bench/bench.cmake - the hand-written references of bench/ (what
# bench/run and bench/scaling measure nnc against) build with the project's
# C compiler and end at the seed's losses (included from tests/CMakeLists.txt)
add_test(NAME bench.references
         COMMAND ${CMAKE_CURRENT_LIST_DIR}/references.sh ${CMAKE_C_COMPILER} ${PROJECT_SOURCE_DIR}
                 ${CMAKE_CURRENT_BINARY_DIR}/bench_references)
set_tests_properties(bench.references PROPERTIES LABELS bench TIMEOUT 120)
