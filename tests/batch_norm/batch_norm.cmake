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

# the C header of a model whose batch_norm sees one value per channel in a
# row: at least 2 rows a training batch (MIN_TRAIN_ROWS), as libnnc's
# min_train_rows; 1 for a model without
add_test(NAME batch_norm.header_min_rows
         COMMAND sh -c "\"$0\" \"$1\" --emit header -o /dev/stdout | grep -q '^#define nnc_resume_MIN_TRAIN_ROWS 2 ' && \"$0\" \"$2\" --emit header -o /dev/stdout | grep -q '_MIN_TRAIN_ROWS 1 '"
                 $<TARGET_FILE:nnc> ${CMAKE_CURRENT_LIST_DIR}/resume.nn ${PROJECT_SOURCE_DIR}/examples/moons.nn)
set_tests_properties(batch_norm.header_min_rows PROPERTIES LABELS batch_norm)
