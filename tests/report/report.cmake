# tests/report/report.cmake - the --plot report (included from tests/CMakeLists.txt)
add_test(NAME report.plot COMMAND ${CMAKE_CURRENT_LIST_DIR}/plot.sh $<TARGET_FILE:nnc> ${PROJECT_SOURCE_DIR}/examples)
set_tests_properties(report.plot PROPERTIES LABELS report TIMEOUT 300)
