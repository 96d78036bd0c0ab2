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

# a division by 0 is named as one, in the forward pass and in a derivative
# (sqrt's at 0); relu's gradient stops sqrt's infinite derivative at an
# inactive unit, as PyTorch's does (every gradient 0)
foreach(engine interp jit)
  set(flags)
  if(engine STREQUAL jit)
    set(flags --jit)
  endif()
  foreach(model div_zero sqrt_zero_backward)
    add_test(NAME numerics.${model}.${engine}
             COMMAND ${PROJECT_SOURCE_DIR}/tests/golden.sh $<TARGET_FILE:nnc> --train ${flags}
                     ${CMAKE_CURRENT_LIST_DIR}/${model}.nn ${CMAKE_CURRENT_LIST_DIR}/${model}.err)
    set_tests_properties(numerics.${model}.${engine} PROPERTIES LABELS numerics)
  endforeach()
  add_test(NAME numerics.relu_stops_inf.${engine}
           COMMAND ${PROJECT_SOURCE_DIR}/tests/golden.sh $<TARGET_FILE:nnc> --grad ${flags}
                   ${CMAKE_CURRENT_LIST_DIR}/sqrt_zero.nn ${CMAKE_CURRENT_LIST_DIR}/sqrt_zero.grad)
  set_tests_properties(numerics.relu_stops_inf.${engine} PROPERTIES LABELS numerics)
  # losses whose f32 sum over an epoch overflows, each finite: trained,
  # not reported as a divergence
  add_test(NAME numerics.f32_sum.${engine}
           COMMAND ${PROJECT_SOURCE_DIR}/tests/cli.sh $<TARGET_FILE:nnc> 0 stdout "^final train loss 2.24999979e\\+36$"
                   ${CMAKE_CURRENT_LIST_DIR}/f32_sum.nn --train ${flags})
  set_tests_properties(numerics.f32_sum.${engine} PROPERTIES LABELS numerics)
endforeach()

# --check-grad compares 64 elements of a tensor of 65, evenly spread
add_test(NAME numerics.checked_64
         COMMAND ${PROJECT_SOURCE_DIR}/tests/cli.sh $<TARGET_FILE:nnc> 0 stdout "^w max abs err .* ok \\(64 checked"
                 ${CMAKE_CURRENT_LIST_DIR}/checked65.nn --check-grad)
set_tests_properties(numerics.checked_64 PROPERTIES LABELS numerics)
