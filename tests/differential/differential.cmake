# tests/differential/differential.cmake - random models, the interpreter
# against the JIT, --check-grad and training (difftest.py; included from
# tests/CMakeLists.txt). A bounded number of models here (seeds 1..N, the
# same every run); scripts/difftest.sh runs it for as long as asked. A
# failing model is kept in BUILD/tests/difftest-failures/seed-S.
find_program(DIFFTEST_PYTHON python3)
if(DIFFTEST_PYTHON)
  if(NNC_SANITIZE)
    set(DIFFTEST_COUNT 8) # every nnc run is several times slower under the sanitizers
  else()
    set(DIFFTEST_COUNT 40)
  endif()
  add_test(NAME differential.models
           COMMAND ${DIFFTEST_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/difftest.py $<TARGET_FILE:nnc>
                   --seed 1 --count ${DIFFTEST_COUNT} --keep ${CMAKE_CURRENT_BINARY_DIR}/difftest-failures)
  set_tests_properties(differential.models PROPERTIES LABELS differential TIMEOUT 900)
endif()
