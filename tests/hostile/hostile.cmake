# tests/hostile/hostile.cmake - the hostile-file test set, included
# from tests/CMakeLists.txt: one test hostile.NAME per case of cases.txt,
# run by run.sh in a temporary copy of this directory (see run.sh).
#
# cases.txt is read at configure time; editing it reconfigures.
set(HOSTILE_DIR ${CMAKE_CURRENT_LIST_DIR})
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
             ${HOSTILE_DIR}/cases.txt)
# Only the case lines (NAME|...): comments, #pending lines and blank lines
# are skipped. Only the name is used here, so the messages' brackets and
# semicolons never reach a CMake list.
file(STRINGS ${HOSTILE_DIR}/cases.txt HOSTILE_LINES REGEX "^[A-Za-z0-9_.-]+\\|")
set(HOSTILE_NAMES)
foreach(line IN LISTS HOSTILE_LINES)
  if(line MATCHES "^([A-Za-z0-9_.-]+)\\|")
    list(APPEND HOSTILE_NAMES ${CMAKE_MATCH_1})
  endif()
endforeach()
list(REMOVE_DUPLICATES HOSTILE_NAMES)
foreach(name IN LISTS HOSTILE_NAMES)
  add_test(NAME hostile.${name}
           COMMAND ${HOSTILE_DIR}/run.sh $<TARGET_FILE:nnc> ${name})
  set_tests_properties(hostile.${name} PROPERTIES LABELS hostile TIMEOUT 300)
endforeach()

add_test(NAME hostile.diverge_save COMMAND ${HOSTILE_DIR}/diverge.sh $<TARGET_FILE:nnc>)
set_tests_properties(hostile.diverge_save PROPERTIES LABELS hostile TIMEOUT 300)

# Data from /dev/zero, pipes and FIFOs: stopped by the limits, memory bounded.
add_test(NAME hostile.streams COMMAND ${HOSTILE_DIR}/streams.py $<TARGET_FILE:nnc>)
set_tests_properties(hostile.streams PROPERTIES LABELS hostile TIMEOUT 400)
