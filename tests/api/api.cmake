# tests/api/api.cmake - libnnc's public API (included from tests/CMakeLists.txt):
#   api.unit            tests/api/test_api.c against nnc.h alone; prints nothing
#                       on standard error
#   api.install_*       (install.sh) cmake --install into a temporary prefix, then
#                       consumer.c built with pkg-config and with find_package(nnc),
#                       and the Python package imported from the prefix
#   api.cxx_linkage     nnc.h in C++: every function has C linkage
set(API_TESTS ${CMAKE_CURRENT_LIST_DIR})
add_executable(test_api ${API_TESTS}/test_api.c)
target_compile_options(test_api PRIVATE ${NNC_WARNINGS})
target_link_libraries(test_api PRIVATE nnc_lib)
add_test(NAME api.unit COMMAND sh -c "\"$0\" 2>stderr.txt && ! test -s stderr.txt || { cat stderr.txt; false; }"
         $<TARGET_FILE:test_api>)
set_tests_properties(api.unit PROPERTIES TIMEOUT 300)

add_test(NAME api.cxx_linkage COMMAND ${API_TESTS}/cxx_linkage.sh ${PROJECT_SOURCE_DIR}/include
         ${PROJECT_BINARY_DIR}/include)

# installing needs the shared library (not built for the fuzzer); the
# consumer is built without the sanitizers, so not in a sanitizer build
if(TARGET nnc_shared AND NOT NNC_SANITIZE)
  add_test(NAME api.install COMMAND ${API_TESTS}/install.sh ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR}
           "${NNC_PYTHON_FOUND}" ${NNC_PYTHON_SITEDIR_USED})
  set_tests_properties(api.install PROPERTIES TIMEOUT 300)
endif()

# libnnc.so exports nnc.h's functions and nothing else (cmake/libnnc.map):
# the LLVM linked into it must not clash with a program's own
if(TARGET nnc_shared)
  add_test(NAME api.exports COMMAND sh -c
    "nm -D --defined-only \"$0\" > exports.txt || exit 1; grep -q ' T nnc_compile_string$' exports.txt || { echo 'nnc_compile_string not exported'; exit 1; }; if grep -v ' nnc_' exports.txt; then echo 'exported beyond the API (above)'; exit 1; fi; echo \"$(wc -l < exports.txt) symbols, all nnc_\""
    $<TARGET_FILE:nnc_shared>)
endif()
