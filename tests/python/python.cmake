# tests/python/python.cmake - the Python package (python/nnc), with pytest
# (included from tests/CMakeLists.txt); label `python`:
#   python.FILE         tests/python/test_FILE.py on the package of the build
#                       tree (BUILD/python), with NNC_PYTHON (python.cmake)
#   python.pip_install  `pip install ./python` into a fresh virtual
#                       environment, offline, and the package runs from there
# Not in a sanitizer build: an instrumented libnnc.so in an uninstrumented
# Python needs the sanitizers' runtimes preloaded (LD_PRELOAD of libasan and
# libubsan, ASAN_OPTIONS=detect_leaks=0, as the interpreter keeps memory to
# its exit by design), which the sanitizer suite does not do yet; api.unit
# runs the same library calls under the sanitizers.
if(NOT TARGET nnc_shared OR NNC_SANITIZE)
  return()
endif()
if(NOT NNC_PYTHON_FOUND)
  add_test(NAME python.found COMMAND sh -c
           "echo 'no python3 that imports numpy: install python3-numpy and python3-pytest (scripts/build.sh does)'; false")
  return()
endif()

set(PY_TESTS ${CMAKE_CURRENT_LIST_DIR})
set(PY_ENV "PYTHONPATH=${PROJECT_BINARY_DIR}/python:${PY_TESTS}" "NNC=$<TARGET_FILE:nnc>" "PYTHONDONTWRITEBYTECODE=1")

file(GLOB PY_TEST_FILES CONFIGURE_DEPENDS ${PY_TESTS}/test_*.py)
foreach(f ${PY_TEST_FILES})
  get_filename_component(name ${f} NAME_WE)
  string(REGEX REPLACE "^test_" "" name ${name})
  add_test(NAME python.${name} COMMAND ${NNC_PYTHON_FOUND} -m pytest -q -p no:cacheprovider ${f})
  set_tests_properties(python.${name} PROPERTIES LABELS python TIMEOUT 600 ENVIRONMENT "${PY_ENV}"
                       ENVIRONMENT_MODIFICATION "NNC_LIBRARY=unset:")
endforeach()

add_test(NAME python.pip_install COMMAND ${PY_TESTS}/pip_install.sh ${NNC_PYTHON_FOUND} ${PROJECT_SOURCE_DIR}
         $<TARGET_FILE:nnc_shared>)
set_tests_properties(python.pip_install PROPERTIES LABELS python TIMEOUT 600)
