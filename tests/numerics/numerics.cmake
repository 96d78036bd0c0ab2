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

# a NaN through relu: passed on, so the op that made it is named (one row
# a step: the register step; four: the GEMM epilogue)
foreach(engine interp jit)
  foreach(batch 1 4)
    set(flags --train --batch ${batch})
    if(engine STREQUAL jit)
      list(APPEND flags --jit)
    endif()
    add_test(NAME numerics.relu_nan.${engine}.b${batch}
             COMMAND ${PROJECT_SOURCE_DIR}/tests/golden.sh $<TARGET_FILE:nnc> ${flags}
                     ${CMAKE_CURRENT_LIST_DIR}/relu_nan.nn ${CMAKE_CURRENT_LIST_DIR}/relu_nan.err)
    set_tests_properties(numerics.relu_nan.${engine}.b${batch} PROPERTIES LABELS numerics)
  endforeach()
endforeach()
