# tests/ops/ops.cmake - max, min, where and embedding against PyTorch:
# ops.CASE.ENGINE runs --grad on tests/ops/CASE.nn with the parameters of
# CASE.safetensors and compares the loss and gradients with reference.json
# (written by torch_ops.py with PyTorch; the test needs only python3):
# ties of max and min, where's two sides, an embedding row used twice.
set(OPS_DIR ${CMAKE_CURRENT_LIST_DIR})
foreach(case max_tie min_tie max_params where embedding)
  foreach(engine interp jit)
    add_test(NAME ops.${case}.${engine} COMMAND python3 ${OPS_DIR}/check.py $<TARGET_FILE:nnc> ${case} ${engine})
    set_tests_properties(ops.${case}.${engine} PROPERTIES LABELS ops)
  endforeach()
endforeach()
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${OPS_DIR}/reference.json)

# an embedding index in the data that is not a row of the table: an error
# at its line and column of the file (after a header and a blank line),
# for training data and for --predict
add_test(NAME cli.embedding_index_not_integer
         COMMAND ${PROJECT_SOURCE_DIR}/tests/cli.sh $<TARGET_FILE:nnc> 1 stderr
                 "^../ops/bad_index.csv:4:3: error: ids\\[2\\] is 4.5, which is not a row of embedding1.W \\(an integer in \\[0, 6\\)\\)$"
                 ../ops/bad_index.nn --train)
add_test(NAME cli.embedding_index_out_of_range
         COMMAND ${PROJECT_SOURCE_DIR}/tests/cli.sh $<TARGET_FILE:nnc> 1 stderr
                 "^../ops/bad_predict.csv:2:4: error: ids\\[3\\] is 6, which is not a row of embedding1.W \\(an integer in \\[0, 6\\)\\)$"
                 ../ops/embedding.nn --load ../ops/embedding.safetensors --predict ../ops/bad_predict.csv)

# a number beyond f32's range in an f32 model's data: the row and column
# (in f64 it is a number like any other)
add_test(NAME cli.data_beyond_f32
         COMMAND ${PROJECT_SOURCE_DIR}/tests/cli.sh $<TARGET_FILE:nnc> 1 stderr
                 "^../ops/f32_range.csv:3:3: error: -2e\\+39 is beyond the range of f32, the model's dtype \\(at most 3.40282e\\+38 in magnitude\\)$"
                 ../ops/f32_range.nn --grad)
add_test(NAME cli.data_beyond_f32_in_f64
         COMMAND ${PROJECT_SOURCE_DIR}/tests/cli.sh $<TARGET_FILE:nnc> 0 stdout "^loss " ../ops/f32_range.nn --grad
                 --dtype f64)

# examples/reviews.nn (an embedding of word indices) learns its task
add_test(NAME accept.reviews
         COMMAND ${PROJECT_SOURCE_DIR}/tests/train/accept.sh $<TARGET_FILE:nnc> ${PROJECT_SOURCE_DIR}/examples reviews)
set_tests_properties(accept.reviews PROPERTIES LABELS "suites;accept;jit" TIMEOUT 300)
