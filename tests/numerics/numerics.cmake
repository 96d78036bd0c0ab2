# tests/numerics/numerics.cmake - numerical edge cases of the checks nnc
# makes (included from tests/CMakeLists.txt).
foreach(engine interp jit)
  add_test(NAME numerics.check_grad.${engine}
           COMMAND ${CMAKE_CURRENT_LIST_DIR}/checkgrad.sh $<TARGET_FILE:nnc> ${CMAKE_CURRENT_LIST_DIR} ${engine})
  set_tests_properties(numerics.check_grad.${engine} PROPERTIES LABELS "numerics;${engine}" TIMEOUT 120)
endforeach()

# training that meets log of a negative value says it is outside log's domain
add_test(NAME numerics.domain
         COMMAND ${PROJECT_SOURCE_DIR}/tests/golden.sh $<TARGET_FILE:nnc> --train
                 ${CMAKE_CURRENT_LIST_DIR}/domain.nn ${CMAKE_CURRENT_LIST_DIR}/domain.err)
set_tests_properties(numerics.domain PROPERTIES LABELS numerics)
