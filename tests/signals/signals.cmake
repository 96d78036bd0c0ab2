# tests/signals/signals.cmake - SIGINT and SIGTERM during training
# (included from tests/CMakeLists.txt)
foreach(case int.interp int.jit term.interp term.jit twice ignored big_table resume.interp resume.jit)
  add_test(NAME signals.${case} COMMAND ${CMAKE_CURRENT_LIST_DIR}/signals.sh $<TARGET_FILE:nnc>
           ${PROJECT_SOURCE_DIR}/examples ${case})
  set_tests_properties(signals.${case} PROPERTIES LABELS signals TIMEOUT 300)
endforeach()
