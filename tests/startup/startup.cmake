# tests/startup/startup.cmake - the nnc executable's code layout (included
# from tests/CMakeLists.txt, only when it is linked with the symbol order):
# the order is applied (LLVM's ~400 static constructors lie together, not
# over the whole 34 MB of .text) and scripts/symbol_order.py turns a profile
# into the order (a small profile written by the test, no valgrind run);
# the thread that faults in the compile's code changes nothing a run prints
if(NNC_SYMBOL_ORDER)
  add_test(NAME startup.order_applied COMMAND ${CMAKE_CURRENT_LIST_DIR}/order.sh applied $<TARGET_FILE:nnc>)
  add_test(NAME startup.order_script
           COMMAND ${CMAKE_CURRENT_LIST_DIR}/order.sh script $<TARGET_FILE:nnc> ${PROJECT_SOURCE_DIR}/scripts/symbol_order.py)
  add_test(NAME startup.fault_in COMMAND ${CMAKE_CURRENT_LIST_DIR}/fault_in.sh $<TARGET_FILE:nnc>
                                         ${PROJECT_SOURCE_DIR}/examples/moons.nn)
  set_tests_properties(startup.order_applied startup.order_script startup.fault_in PROPERTIES LABELS startup TIMEOUT 60)
endif()
