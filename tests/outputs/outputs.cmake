# tests/outputs/outputs.cmake - links, devices, FIFOs and unusable names as
# outputs of -o, --save and --plot (included from tests/CMakeLists.txt)
add_test(NAME outputs.files COMMAND ${CMAKE_CURRENT_LIST_DIR}/outputs.sh $<TARGET_FILE:nnc> ${PROJECT_SOURCE_DIR}/examples)
set_tests_properties(outputs.files PROPERTIES LABELS "outputs;report" TIMEOUT 300)
