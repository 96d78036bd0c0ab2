# tests/dropout/dropout.cmake - dropout's masks (included from
# tests/CMakeLists.txt): dropout.mask.ENGINE runs dropout.sh
foreach(engine interp jit)
  add_test(NAME dropout.mask.${engine}
           COMMAND ${CMAKE_CURRENT_LIST_DIR}/dropout.sh $<TARGET_FILE:nnc> ${CMAKE_CURRENT_LIST_DIR} ${engine})
  set_tests_properties(dropout.mask.${engine} PROPERTIES LABELS "dropout;${engine}" TIMEOUT 120)
endforeach()
