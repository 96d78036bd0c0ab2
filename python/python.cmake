# python/python.cmake - the Python package python/nnc (ctypes over libnnc.so,
# and numpy), included from the top-level CMakeLists.txt:
#   BUILD/python/nnc   the package as imported from the build tree
#                      (PYTHONPATH=BUILD/python): the sources, and _location.py
#                      naming BUILD's libnnc.so
#   cmake --install    the package in PREFIX/NNC_PYTHON_SITEDIR/nnc, its
#                      _location.py naming PREFIX/LIBDIR/libnnc.so
# NNC_PYTHON is the interpreter the tests and the site directory use: the
# first of /usr/bin/python3 and python3 on PATH that imports numpy (Debian's
# python3-numpy installs into /usr/bin/python3, which a python3 earlier on
# PATH, such as pyenv's, may not see). Set it to choose another.
if(NOT TARGET nnc_shared)
  return()
endif()

set(NNC_PYTHON "" CACHE FILEPATH "python3 that imports numpy (default: found)")
set(NNC_PYTHON_FOUND "")
if(NNC_PYTHON)
  set(NNC_PYTHON_FOUND ${NNC_PYTHON})
else()
  find_program(NNC_PATH_PYTHON3 python3)
  foreach(candidate /usr/bin/python3 ${NNC_PATH_PYTHON3})
    if(NOT NNC_PYTHON_FOUND AND EXISTS ${candidate})
      execute_process(COMMAND ${candidate} -c "import numpy" RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
      if(rc EQUAL 0)
        set(NNC_PYTHON_FOUND ${candidate})
      endif()
    endif()
  endforeach()
endif()

# where the interpreter's scheme puts packages, relative to the prefix
# (Debian: lib/python3.11/dist-packages under /usr/local; else site-packages)
set(NNC_PYTHON_SITEDIR "" CACHE STRING "Where cmake --install puts the nnc package, relative to the prefix")
if(NOT NNC_PYTHON_SITEDIR)
  set(site "lib/python3/site-packages")
  if(NNC_PYTHON_FOUND)
    execute_process(COMMAND ${NNC_PYTHON_FOUND} -c
      "import sysconfig; p = sysconfig.get_path('purelib', vars={'base': '@', 'platbase': '@'}); print(p[2:][len('local/'):] if p.startswith('@/local/') else p[2:])"
      OUTPUT_VARIABLE site OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc)
  endif()
  set(NNC_PYTHON_SITEDIR_USED ${site})
else()
  set(NNC_PYTHON_SITEDIR_USED ${NNC_PYTHON_SITEDIR})
endif()
message(STATUS "Python package: ${NNC_PYTHON_SITEDIR_USED} (tests with ${NNC_PYTHON_FOUND})")

set(NNC_PY_SOURCES __init__.py _lib.py model.py safetensors.py)
set(NNC_PY_BUILD ${CMAKE_CURRENT_BINARY_DIR}/python/nnc)
set(copied)
foreach(f ${NNC_PY_SOURCES})
  add_custom_command(OUTPUT ${NNC_PY_BUILD}/${f}
                     COMMAND ${CMAKE_COMMAND} -E copy ${PROJECT_SOURCE_DIR}/python/nnc/${f} ${NNC_PY_BUILD}/${f}
                     DEPENDS ${PROJECT_SOURCE_DIR}/python/nnc/${f})
  list(APPEND copied ${NNC_PY_BUILD}/${f})
endforeach()
# _location.py: the library, relative to the package's directory
file(GENERATE OUTPUT ${NNC_PY_BUILD}/_location.py CONTENT
     "# the libnnc.so this package uses (written by CMake)\nLIBRARY = \"../../$<TARGET_FILE_NAME:nnc_shared>\"\n")
add_custom_target(nnc_python ALL DEPENDS ${copied})

set(prefix_fake /PREFIX)
file(RELATIVE_PATH NNC_PY_TO_LIB ${prefix_fake}/${NNC_PYTHON_SITEDIR_USED}/nnc
     ${prefix_fake}/${CMAKE_INSTALL_LIBDIR}/libnnc.so)
file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/python-install/_location.py
     "# the libnnc.so this package uses (written by CMake at installation)\nLIBRARY = \"${NNC_PY_TO_LIB}\"\n")
foreach(f ${NNC_PY_SOURCES})
  install(FILES ${PROJECT_SOURCE_DIR}/python/nnc/${f} DESTINATION ${NNC_PYTHON_SITEDIR_USED}/nnc)
endforeach()
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/python-install/_location.py DESTINATION ${NNC_PYTHON_SITEDIR_USED}/nnc)
