# tests/llvm/llvm.cmake - checks on the generated code (included from
# tests/CMakeLists.txt): FileCheck on --emit llvm, --emit asm/obj/header,
# many JIT create/dispose cycles in one process (LSan in the sanitizer
# build), and the fuzz corpus replayed through every compile stage.
find_program(FILECHECK FileCheck HINTS /usr/lib/llvm-19/bin REQUIRED)
set(LLVM_TESTS ${CMAKE_CURRENT_LIST_DIR})
set(FC ${LLVM_TESTS}/run_filecheck.sh)
set(MOONS ${PROJECT_SOURCE_DIR}/examples/moons.nn)
# filecheck_test(NAME CHECK PREFIX ARGS...): FileCheck CHECK --check-prefix
# PREFIX on what `nnc ARGS...` prints
function(filecheck_test name check prefix)
  add_test(NAME ${name} COMMAND ${FC} $<TARGET_FILE:nnc> ${FILECHECK} ${check} ${prefix} -- ${ARGN})
endfunction()

filecheck_test(llvm.functions ${LLVM_TESTS}/moons.check CHECK ${MOONS} --emit llvm -O2)
filecheck_test(llvm.no_allocation ${LLVM_TESTS}/moons.check NOALLOC ${MOONS} --emit llvm -O2)
filecheck_test(llvm.steps_allocate_nothing ${LLVM_TESTS}/steps.check CHECK ${MOONS} --emit llvm -O2)
add_test(NAME llvm.register_step COMMAND ${CMAKE_COMMAND} -E env NNC_VECTOR_BITS=256
         ${FC} $<TARGET_FILE:nnc> ${FILECHECK} ${LLVM_TESTS}/registers.check CHECK -- ${MOONS} --emit llvm -O0)
add_test(NAME llvm.register_step_off COMMAND ${CMAKE_COMMAND} -E env NNC_VECTOR_BITS=256 NNC_REGISTER_STEP=0
         ${FC} $<TARGET_FILE:nnc> ${FILECHECK} ${LLVM_TESTS}/registers.check OFF -- ${MOONS} --emit llvm -O0)
filecheck_test(llvm.vectorized_layer ${LLVM_TESTS}/wide.check CHECK ${LLVM_TESTS}/wide.nn --emit llvm -O2)
filecheck_test(llvm.chunk_loops_optnone ${LLVM_TESTS}/wide.check OPTNONE ${LLVM_TESTS}/wide.nn --emit llvm -O2)
filecheck_test(llvm.vector_loops ${LLVM_TESTS}/vector_loops.check CHECK
               ${LLVM_TESTS}/vector_loops.nn --emit llvm -O0 --cpu x86-64-v4)
add_test(NAME llvm.vector_loops_off COMMAND ${CMAKE_COMMAND} -E env NNC_VECTOR_LOOPS=0
         ${FC} $<TARGET_FILE:nnc> ${FILECHECK} ${LLVM_TESTS}/vector_loops.check OFF
         -- ${LLVM_TESTS}/vector_loops.nn --emit llvm -O0 --cpu x86-64-v4)
filecheck_test(llvm.window_loops ${LLVM_TESTS}/window_loops.check CHECK
               ${LLVM_TESTS}/window_loops.nn --emit llvm -O0 --cpu x86-64-v4)
filecheck_test(llvm.dropout_vector ${LLVM_TESTS}/window_loops.check DROP
               ${LLVM_TESTS}/window_loops.nn --emit llvm -O0 --cpu x86-64-v4)
filecheck_test(llvm.bn_channel_loop ${LLVM_TESTS}/bn_chain.check CHECK
               ${LLVM_TESTS}/bn_chain.nn --emit llvm -O0 --cpu x86-64-v4)
filecheck_test(llvm.bn_kernels ${LLVM_TESTS}/bn_kernels.check CHECK
               ${LLVM_TESTS}/bn_chain.nn --emit llvm -O0 --cpu x86-64-v4)
add_test(NAME llvm.window_loops_off COMMAND ${CMAKE_COMMAND} -E env NNC_VECTOR_LOOPS=0
         ${FC} $<TARGET_FILE:nnc> ${FILECHECK} ${LLVM_TESTS}/window_loops.check OFF
         -- ${LLVM_TESTS}/window_loops.nn --emit llvm -O0 --cpu x86-64-v4)
# vector loops and scalar loops train to the same bits: convolutional
# networks (1-D f32 and f64; 2-D with padding, max and average pooling),
# an embedding (its rows gathered by vector copies) and the W2 MLP
add_test(NAME llvm.vector_loops_same_bits.window
         COMMAND ${LLVM_TESTS}/same_bits.sh $<TARGET_FILE:nnc> ${LLVM_TESTS}/window_loops.nn 2)
add_test(NAME llvm.vector_loops_same_bits.window_f64
         COMMAND ${LLVM_TESTS}/same_bits.sh $<TARGET_FILE:nnc> ${LLVM_TESTS}/window_loops.nn 2 --dtype f64)
add_test(NAME llvm.vector_loops_same_bits.waves
         COMMAND ${LLVM_TESTS}/same_bits.sh $<TARGET_FILE:nnc> ${PROJECT_SOURCE_DIR}/examples/waves.nn 2)
add_test(NAME llvm.vector_loops_same_bits.waves_f64
         COMMAND ${LLVM_TESTS}/same_bits.sh $<TARGET_FILE:nnc> ${PROJECT_SOURCE_DIR}/examples/waves.nn 2 --dtype f64)
add_test(NAME llvm.vector_loops_same_bits.reviews
         COMMAND ${LLVM_TESTS}/same_bits.sh $<TARGET_FILE:nnc> ${PROJECT_SOURCE_DIR}/examples/reviews.nn 2)
add_test(NAME llvm.vector_loops_same_bits.w2
         COMMAND ${LLVM_TESTS}/same_bits.sh $<TARGET_FILE:nnc> ${PROJECT_SOURCE_DIR}/bench/w2_digits.nn 2)
filecheck_test(llvm.gemm_epilogues ${LLVM_TESTS}/epilogue.check CHECK ${LLVM_TESTS}/epilogue.nn --emit llvm -O0)
filecheck_test(llvm.gemm_transposed ${LLVM_TESTS}/trans.check CHECK
               ${PROJECT_SOURCE_DIR}/tests/train/gemm/trans.nn --emit llvm -O0)
filecheck_test(llvm.gemm_input_grad ${LLVM_TESTS}/input_grad.check CHECK
               ${PROJECT_SOURCE_DIR}/tests/train/gemm/panels.nn --emit llvm -O0)
filecheck_test(llvm.conv_epilogue ${LLVM_TESTS}/conv_epilogue.check CHECK
               ${LLVM_TESTS}/conv_epilogue.nn --emit llvm -O0)
filecheck_test(llvm.conv_transposed ${LLVM_TESTS}/conv_trans.check CHECK ${LLVM_TESTS}/conv_trans.nn --emit llvm -O0)
filecheck_test(llvm.conv_input_grad ${LLVM_TESTS}/conv_dx.check CHECK ${LLVM_TESTS}/conv_dx.nn --emit llvm -O0)
filecheck_test(llvm.gemm_edge_rows ${LLVM_TESTS}/edge_rows.check CHECK
               ${PROJECT_SOURCE_DIR}/bench/w2_digits.nn --emit llvm -O0 --cpu x86-64-v4)
filecheck_test(llvm.gemm_pack_transposed ${LLVM_TESTS}/pack.check CHECK
               ${LLVM_TESTS}/conv_epilogue.nn --emit llvm -O0 --cpu x86-64-v4)
filecheck_test(llvm.names_from_ir ${LLVM_TESTS}/names.check CHECK ${MOONS} --emit llvm -O0)
filecheck_test(llvm.rows_range ${LLVM_TESTS}/rows.check CHECK ${PROJECT_SOURCE_DIR}/examples/circles.nn --emit llvm -O0)
# the vector width of the CPU named by --cpu (tests/llvm/target.check)
foreach(level 2 3 4)
  add_test(NAME llvm.target_width.v${level} COMMAND ${FC} $<TARGET_FILE:nnc> ${FILECHECK} ${LLVM_TESTS}/target.check
           V${level} -- ${LLVM_TESTS}/wide.nn --emit llvm -O0 --cpu x86-64-v${level})
endforeach()
add_test(NAME llvm.emit_asm COMMAND ${CMAKE_COMMAND} -E env sh -c
         "$<TARGET_FILE:nnc> ${MOONS} --emit asm | grep -q nnc_moons_train_epoch")
add_test(NAME llvm.loop_outside COMMAND ${LLVM_TESTS}/unrolled_runs.sh $<TARGET_FILE:nnc>
         ${PROJECT_SOURCE_DIR}/examples/reviews.nn loop_outside)
add_test(NAME llvm.libm_loop COMMAND ${LLVM_TESTS}/unrolled_runs.sh $<TARGET_FILE:nnc>
         ${PROJECT_SOURCE_DIR}/examples/circles.nn libm_loop)
add_test(NAME llvm.exp_loop COMMAND ${LLVM_TESTS}/unrolled_runs.sh $<TARGET_FILE:nnc>
         ${PROJECT_SOURCE_DIR}/examples/fashion_cnn.nn exp_loop)
add_test(NAME llvm.exp_pair COMMAND ${LLVM_TESTS}/unrolled_runs.sh $<TARGET_FILE:nnc>
         ${PROJECT_SOURCE_DIR}/examples/reviews.nn exp_pair)
add_test(NAME llvm.dot_loop COMMAND ${LLVM_TESTS}/unrolled_runs.sh $<TARGET_FILE:nnc>
         ${PROJECT_SOURCE_DIR}/examples/fashion_cnn.nn dot_loop)
add_test(NAME llvm.emit_obj_header COMMAND ${LLVM_TESTS}/obj_header.sh $<TARGET_FILE:nnc> ${MOONS})
add_test(NAME llvm.header_names COMMAND ${LLVM_TESTS}/header_names.sh $<TARGET_FILE:nnc>)
add_test(NAME llvm.reserved_names COMMAND ${LLVM_TESTS}/reserved_names.sh $<TARGET_FILE:nnc>
         ${PROJECT_SOURCE_DIR}/include/nnc.h)
add_test(NAME llvm.abi_mismatch COMMAND ${LLVM_TESTS}/abi_mismatch.sh $<TARGET_FILE:nnc>
         ${PROJECT_SOURCE_DIR}/examples)
add_test(NAME llvm.large_workspace COMMAND ${LLVM_TESTS}/large_workspace.sh $<TARGET_FILE:nnc>
         ${PROJECT_SOURCE_DIR}/examples)

add_executable(test_jit_lifecycle ${PROJECT_SOURCE_DIR}/tests/unit/test_jit_lifecycle.c)
target_compile_options(test_jit_lifecycle PRIVATE ${NNC_WARNINGS})
target_link_libraries(test_jit_lifecycle PRIVATE nnc_lib)
add_test(NAME unit.jit_lifecycle COMMAND test_jit_lifecycle)
set_tests_properties(unit.jit_lifecycle PROPERTIES TIMEOUT 600)

add_executable(test_jit_lazy ${PROJECT_SOURCE_DIR}/tests/unit/test_jit_lazy.c)
target_compile_options(test_jit_lazy PRIVATE ${NNC_WARNINGS})
target_link_libraries(test_jit_lazy PRIVATE nnc_lib)
add_test(NAME unit.jit_lazy COMMAND test_jit_lazy)
set_tests_properties(unit.jit_lazy PROPERTIES TIMEOUT 600 ENVIRONMENT NNC_CACHE=0)

add_test(NAME fuzz.replay_corpus COMMAND fuzz_nnc ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus)
set_tests_properties(fuzz.replay_corpus PROPERTIES TIMEOUT 600)

# the common GEMM epilogues come with the prebuilt kernels
add_executable(test_fixed_epi ${PROJECT_SOURCE_DIR}/tests/unit/test_fixed_epi.c)
target_compile_options(test_fixed_epi PRIVATE ${NNC_WARNINGS})
target_link_libraries(test_fixed_epi PRIVATE nnc_lib)
add_test(NAME unit.fixed_epilogues COMMAND test_fixed_epi)

# Adam's step of a parameter is a prebuilt kernel, with the module's bits
add_executable(test_adam_kernel ${PROJECT_SOURCE_DIR}/tests/unit/test_adam_kernel.c)
target_compile_options(test_adam_kernel PRIVATE ${NNC_WARNINGS})
target_link_libraries(test_adam_kernel PRIVATE nnc_lib)
add_test(NAME unit.adam_kernel COMMAND test_adam_kernel)

# grad_part chooses a GEMM's orientation by the rows of its shard
add_executable(test_gemm_rows ${PROJECT_SOURCE_DIR}/tests/unit/test_gemm_rows.c)
target_compile_options(test_gemm_rows PRIVATE ${NNC_WARNINGS})
target_link_libraries(test_gemm_rows PRIVATE nnc_lib)
add_test(NAME unit.gemm_rows COMMAND test_gemm_rows)

# the optimizer step in slices (update_part): update's bits, or no update_part
add_executable(test_update_part ${PROJECT_SOURCE_DIR}/tests/unit/test_update_part.c)
target_compile_options(test_update_part PRIVATE ${NNC_WARNINGS})
target_link_libraries(test_update_part PRIVATE nnc_lib)
add_test(NAME unit.update_part COMMAND test_update_part)
set_tests_properties(unit.update_part PROPERTIES TIMEOUT 600 ENVIRONMENT NNC_CACHE=0)
