# tests/segments/segments.cmake - functions of many nodes built as
# segments (docs/internals.md, "Segments"; included from
# tests/CMakeLists.txt):
#   segments.llvm          deep.nn's training step calls its segments
#                          (FileCheck); W2's is built whole
#   segments.agree.*       deep.nn (fifty layers, built as segments): --grad
#                          of the interpreter = --jit's, and training ends
#                          where the interpreter's does; spill.nn (a full
#                          frame, straight-line nodes in the workspace):
#                          --grad of one row
#   agree.segments.NAME.DTYPE.b3
#                          every gradcheck model, moons and circles built
#                          as one segment a node (NNC_SEGMENTS_FROM=0
#                          NNC_SEGMENT_WEIGHT=1): --grad of the
#                          interpreter = --jit's
#   segments.train.NAME.DTYPE
#                          training as one segment a node ends where the
#                          interpreter's does: GEMM epilogues and k-blocks,
#                          a convolutional network, batch_norm, embeddings
#   segments.threads.agree, segments.threads.adam
#                          the same on 1, 2 and 3 threads (grad_part and
#                          update_part as segments too): parallel.sh's cases
include(${CMAKE_CURRENT_LIST_DIR}/../suites/suites.cmake) # suite_test, the gradcheck models
set(SEGMENTS_DIR ${CMAKE_CURRENT_LIST_DIR})
set(SEGMENTS_FORCED NNC_SEGMENTS_FROM=0 NNC_SEGMENT_WEIGHT=1)

add_test(NAME segments.llvm COMMAND ${PROJECT_SOURCE_DIR}/tests/llvm/run_filecheck.sh $<TARGET_FILE:nnc>
         ${FILECHECK} ${SEGMENTS_DIR}/segments.check CHECK -- ${SEGMENTS_DIR}/deep.nn --emit llvm -O0)
add_test(NAME segments.llvm.whole COMMAND ${PROJECT_SOURCE_DIR}/tests/llvm/run_filecheck.sh $<TARGET_FILE:nnc>
         ${FILECHECK} ${SEGMENTS_DIR}/segments.check WHOLE -- ${PROJECT_SOURCE_DIR}/bench/w2_digits.nn --emit llvm -O0)
set_tests_properties(segments.llvm segments.llvm.whole PROPERTIES LABELS "segments;llvm")

foreach(dtype f64 f32)
  add_test(NAME segments.agree.deep.${dtype}.b3
           COMMAND ${PROJECT_SOURCE_DIR}/tests/train/jit_agree.sh $<TARGET_FILE:nnc> ${SEGMENTS_DIR}/deep.nn ${dtype} 3)
  add_test(NAME segments.agree.deep_train.${dtype}
           COMMAND ${PROJECT_SOURCE_DIR}/tests/train/train_agree.sh $<TARGET_FILE:nnc> ${SEGMENTS_DIR}/deep.nn ${dtype})
  set_tests_properties(segments.agree.deep.${dtype}.b3 segments.agree.deep_train.${dtype}
                       PROPERTIES LABELS "segments;agree;jit" TIMEOUT 300)
endforeach()

add_test(NAME segments.agree.spill.f64.b1
         COMMAND ${PROJECT_SOURCE_DIR}/tests/train/jit_agree.sh $<TARGET_FILE:nnc> ${SEGMENTS_DIR}/spill.nn f64 1)
set_tests_properties(segments.agree.spill.f64.b1 PROPERTIES LABELS "segments;agree;jit" TIMEOUT 300)

foreach(nn ${SUITES_GRADCHECK_MODELS} ${PROJECT_SOURCE_DIR}/examples/moons.nn ${PROJECT_SOURCE_DIR}/examples/circles.nn)
  get_filename_component(name ${nn} NAME_WE)
  foreach(dtype f64 f32)
    suite_test(agree.segments.${name}.${dtype}.b3 LABELS "segments;agree;jit"
               COMMAND ${CMAKE_COMMAND} -E env ${SEGMENTS_FORCED}
                       ${SUITES_TRAIN_DIR}/jit_agree.sh ${SUITES_NNC} ${nn} ${dtype} 3)
  endforeach()
endforeach()

foreach(nn ${SUITES_TRAIN_DIR}/epilogue.nn ${SUITES_TRAIN_DIR}/gemm/kblocks.nn ${PROJECT_SOURCE_DIR}/tests/conv/conv_net.nn
           ${PROJECT_SOURCE_DIR}/tests/batch_norm/images.nn)
  get_filename_component(name ${nn} NAME_WE)
  foreach(dtype f64 f32)
    add_test(NAME segments.train.${name}.${dtype}
             COMMAND ${CMAKE_COMMAND} -E env ${SEGMENTS_FORCED}
                     ${SUITES_TRAIN_DIR}/train_agree.sh $<TARGET_FILE:nnc> ${nn} ${dtype})
    set_tests_properties(segments.train.${name}.${dtype} PROPERTIES LABELS "segments;agree;jit" TIMEOUT 120)
  endforeach()
endforeach()
# (reviews' f32 loss ends near 2.5e-5, below what f32 training keeps to 1e-4)
add_test(NAME segments.train.reviews.f64
         COMMAND ${CMAKE_COMMAND} -E env ${SEGMENTS_FORCED}
                 ${SUITES_TRAIN_DIR}/train_agree.sh $<TARGET_FILE:nnc> ${PROJECT_SOURCE_DIR}/examples/reviews.nn f64)
set_tests_properties(segments.train.reviews.f64 PROPERTIES LABELS "segments;agree;jit" TIMEOUT 120)

foreach(case threads.agree threads.adam)
  add_test(NAME segments.${case}
           COMMAND ${CMAKE_COMMAND} -E env ${SEGMENTS_FORCED}
                   ${PROJECT_SOURCE_DIR}/tests/parallel/parallel.sh $<TARGET_FILE:nnc> ${PROJECT_SOURCE_DIR}/examples ${case})
  set_tests_properties(segments.${case} PROPERTIES LABELS "segments;parallel" TIMEOUT 120)
endforeach()
