# tests/rules/rules.cmake - one golden --emit grad file per derivative rule
# (included from tests/CMakeLists.txt), so that each rule's shape is pinned
# as text: golden.rule.NAME compares the backward graph of tests/rules/NAME.nn
# with NAME.grad. The ops no .nn file can write (clamp_min, step, outer, ...) have
# a NAME.grad without a NAME.nn: rule_graph (rule_graph.c) builds their graph.
add_executable(rule_graph ${CMAKE_CURRENT_LIST_DIR}/rule_graph.c)
target_compile_options(rule_graph PRIVATE ${NNC_WARNINGS})
target_link_libraries(rule_graph PRIVATE nnc_lib)
test_names(RULE_NAMES ${CMAKE_CURRENT_LIST_DIR} nn grad)
foreach(name ${RULE_NAMES})
  set(dir ${CMAKE_CURRENT_LIST_DIR})
  if(EXISTS ${dir}/${name}.nn)
    add_test(NAME golden.rule.${name}
             COMMAND ${GOLDEN} $<TARGET_FILE:nnc> --emit grad ${dir}/${name}.nn ${dir}/${name}.grad)
  else()
    add_test(NAME golden.rule.${name}
             COMMAND ${GOLDEN} $<TARGET_FILE:rule_graph> ${dir}/${name}.op ${dir}/${name}.grad)
  endif()
endforeach()
add_test(NAME golden.rule.every_op
         COMMAND ${CMAKE_CURRENT_LIST_DIR}/every_op.sh ${PROJECT_SOURCE_DIR}/compiler/ops.def)
