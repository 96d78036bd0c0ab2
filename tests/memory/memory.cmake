# tests/memory/memory.cmake - the compiled code's memory (included from
# tests/CMakeLists.txt): the workspace is sized by the batch and reused by
# liveness (workspace.sh); forward and predict take any number of rows, in
# chunks of the compiled batch, in the JIT and libnnc (test_rows.c, through
# nnc.h) and in an object file (aot_rows.sh)
foreach(case by_batch in_place)
  add_test(NAME memory.workspace.${case} COMMAND ${CMAKE_CURRENT_LIST_DIR}/workspace.sh $<TARGET_FILE:nnc> ${case})
  set_tests_properties(memory.workspace.${case} PROPERTIES LABELS memory TIMEOUT 120)
endforeach()
add_executable(test_rows ${CMAKE_CURRENT_LIST_DIR}/test_rows.c)
target_compile_options(test_rows PRIVATE ${NNC_WARNINGS})
target_link_libraries(test_rows PRIVATE nnc_lib)
add_test(NAME memory.rows COMMAND test_rows)
set_tests_properties(memory.rows PROPERTIES LABELS memory TIMEOUT 300)
add_test(NAME memory.aot_rows COMMAND ${CMAKE_CURRENT_LIST_DIR}/aot_rows.sh $<TARGET_FILE:nnc>)
set_tests_properties(memory.aot_rows PROPERTIES LABELS memory TIMEOUT 120)
