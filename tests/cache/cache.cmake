# tests/cache/cache.cmake - the JIT's object cache (included from tests/CMakeLists.txt)
add_test(NAME cache.objects COMMAND ${CMAKE_CURRENT_LIST_DIR}/cache.sh $<TARGET_FILE:nnc> ${PROJECT_SOURCE_DIR}/examples)
set_tests_properties(cache.objects PROPERTIES LABELS "cache;jit" TIMEOUT 300)
