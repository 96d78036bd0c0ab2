# tests/batch_norm/batch_norm.cmake - batch_norm (included from
# tests/CMakeLists.txt):
#   batch_norm.torch.ENGINE   batch_norm.sh: training and evaluation modes,
#                             a step's running statistics against PyTorch
#                             (gen.py wrote the expected numbers once),
#                             checkpoints, the run-time errors
#   batch_norm.resume.ENGINE  --resume continues a run with running
#                             statistics bit for bit (tests/optim/resume.sh)
foreach(engine interp jit)
  add_test(NAME batch_norm.torch.${engine}
           COMMAND ${CMAKE_CURRENT_LIST_DIR}/batch_norm.sh $<TARGET_FILE:nnc> ${CMAKE_CURRENT_LIST_DIR} ${engine})
  add_test(NAME batch_norm.resume.${engine}
           COMMAND ${PROJECT_SOURCE_DIR}/tests/optim/resume.sh $<TARGET_FILE:nnc> ${CMAKE_CURRENT_LIST_DIR}/resume.nn
                   ${engine} 3)
  set_tests_properties(batch_norm.torch.${engine} batch_norm.resume.${engine}
                       PROPERTIES LABELS "batch_norm;${engine}" TIMEOUT 120)
endforeach()
