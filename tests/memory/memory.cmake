# tests/memory/memory.cmake - the compiled code's memory (included from
# tests/CMakeLists.txt): the workspace is sized by the batch and reused by
# liveness (workspace.sh); forward and predict take any number of rows, in
# chunks of the compiled batch, in the JIT and libnnc (test_rows.c, through
# nnc.h) and in an object file (aot_rows.sh); the JIT's workspace is memory
# nnc maps, shared by the two modules of a split build, the object's its
# own .bss, and a mapping that fails is one line (workspace.sh, with
# fail_mmap.c preloaded)
add_library(fail_mmap MODULE ${CMAKE_CURRENT_LIST_DIR}/fail_mmap.c)
set_target_properties(fail_mmap PROPERTIES PREFIX "")
target_link_libraries(fail_mmap PRIVATE ${CMAKE_DL_LIBS})
foreach(case by_batch in_place shared aot_bss map_fails)
  add_test(NAME memory.workspace.${case}
           COMMAND ${CMAKE_CURRENT_LIST_DIR}/workspace.sh $<TARGET_FILE:nnc> ${case} $<TARGET_FILE:fail_mmap>)
  set_tests_properties(memory.workspace.${case} PROPERTIES LABELS memory TIMEOUT 120)
endforeach()
add_executable(test_rows ${CMAKE_CURRENT_LIST_DIR}/test_rows.c)
target_compile_options(test_rows PRIVATE ${NNC_WARNINGS})
target_link_libraries(test_rows PRIVATE nnc_lib)
add_test(NAME memory.rows COMMAND test_rows)
set_tests_properties(memory.rows PROPERTIES LABELS memory TIMEOUT 300)
add_test(NAME memory.aot_rows COMMAND ${CMAKE_CURRENT_LIST_DIR}/aot_rows.sh $<TARGET_FILE:nnc>)
set_tests_properties(memory.aot_rows PROPERTIES LABELS memory TIMEOUT 120)
