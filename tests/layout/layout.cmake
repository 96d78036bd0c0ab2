# tests/layout/layout.cmake - the source layout (included from tests/CMakeLists.txt):
#   layout.includes   include/ and util/ < runtime/ < compiler/ and grammar/
#                     < driver/: every #include points down or sideways in
#                     its own layer, and the include graph has no cycle
add_test(NAME layout.includes COMMAND ${CMAKE_CURRENT_LIST_DIR}/includes.sh ${PROJECT_SOURCE_DIR})
