# tests/passes/passes.cmake - one golden test per graph pass (included from
# tests/CMakeLists.txt): --emit opt shows what each pass removed or
# rewrote, --emit grad the backward graph as derived, NAME.notes the notes
# the stabilizing rewrites print; plus moons' --emit grad and --emit opt.
file(GLOB PASS_TESTS LIST_DIRECTORIES false CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.nn)
foreach(nn ${PASS_TESTS})
  get_filename_component(name ${nn} NAME_WE)
  foreach(mode opt grad)
    add_test(NAME passes.${name}.${mode}
             COMMAND ${CMAKE_CURRENT_LIST_DIR}/run.sh $<TARGET_FILE:nnc> ${name}.nn ${mode})
    set_tests_properties(passes.${name}.${mode} PROPERTIES LABELS passes)
  endforeach()
endforeach()
foreach(mode grad opt)
  add_test(NAME golden.example.moons.${mode}
           COMMAND ${PROJECT_SOURCE_DIR}/tests/golden.sh $<TARGET_FILE:nnc> --emit ${mode}
                   ${PROJECT_SOURCE_DIR}/examples/moons.nn ${PROJECT_SOURCE_DIR}/tests/examples/moons.${mode})
endforeach()
add_test(NAME golden.example.moons.layout
         COMMAND ${PROJECT_SOURCE_DIR}/tests/golden.sh $<TARGET_FILE:nnc> --emit layout
                 ${PROJECT_SOURCE_DIR}/examples/moons.nn ${PROJECT_SOURCE_DIR}/tests/examples/moons.layout)
add_test(NAME emit.dot COMMAND sh -c
         "$<TARGET_FILE:nnc> ${PROJECT_SOURCE_DIR}/examples/moons.nn --emit dot | grep -q -- '-> n' && \
          $<TARGET_FILE:nnc> ${PROJECT_SOURCE_DIR}/examples/moons.nn --emit dot | head -1 | grep -q '^digraph'")
add_test(NAME cli.summary COMMAND sh -c
         "$<TARGET_FILE:nnc> ${PROJECT_SOURCE_DIR}/examples/moons.nn | grep -q 'model moons, f64, 57 parameters in 8 tensors'")
