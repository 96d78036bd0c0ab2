# tests/idx/idx.cmake - the idx data source (included from tests/CMakeLists.txt)
#
#   unit.idx              test_idx.c: the reader on raw and gzip files it
#                         writes, every element type, every malformed kind
#   idx.error.NAME        tests/idx/cases/NAME.nn --train: standard error
#                         equals NAME.err (the files come from `test_idx write`)
#   idx.train.*           a small MLP learns a Fashion-MNIST subset
#   idx.train_cnn.*       and so does a small convolutional network
set(IDX_DIR ${CMAKE_CURRENT_LIST_DIR})
add_executable(test_idx ${IDX_DIR}/test_idx.c)
target_compile_options(test_idx PRIVATE ${NNC_WARNINGS})
target_link_libraries(test_idx PRIVATE nnc_lib)
add_test(NAME unit.idx COMMAND test_idx)

file(GLOB IDX_CASES LIST_DIRECTORIES false CONFIGURE_DEPENDS ${IDX_DIR}/cases/*.nn)
foreach(nn ${IDX_CASES})
  get_filename_component(name ${nn} NAME_WE)
  add_test(NAME idx.error.${name}
           COMMAND ${IDX_DIR}/error.sh $<TARGET_FILE:nnc> $<TARGET_FILE:test_idx> ${nn} ${IDX_DIR}/cases/${name}.err)
endforeach()

# a Fashion-MNIST subset (Debian's dataset-fashion-mnist): compiled, and one
# epoch in the interpreter
add_test(NAME idx.train.jit COMMAND ${IDX_DIR}/train.sh $<TARGET_FILE:nnc> $<TARGET_FILE:test_idx> subset.nn --jit)
add_test(NAME idx.train.interp COMMAND ${IDX_DIR}/train.sh $<TARGET_FILE:nnc> $<TARGET_FILE:test_idx> subset.nn
         --epochs 1)
add_test(NAME idx.train_cnn.jit
         COMMAND ${IDX_DIR}/train.sh $<TARGET_FILE:nnc> $<TARGET_FILE:test_idx> subset_cnn.nn --jit)
