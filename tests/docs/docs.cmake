# tests/docs/docs.cmake - the documents' examples run as written
# (tests/docs/doccheck.py): docs.NAME for README.md and every docs/*.md.
#
#   docs.README, docs.language, ...   every `$ command` of a console block
#                                     prints what the document shows, every
#                                     .nn example compiles, every link names
#                                     a file of the repository
#   docs.environment                  docs/internals.md lists every NNC*
#                                     environment variable the sources read,
#                                     and only those (environment.sh)
find_program(DOCS_PYTHON python3)
if(DOCS_PYTHON)
  file(GLOB DOCS_PAGES LIST_DIRECTORIES false CONFIGURE_DEPENDS
       ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/docs/*.md)
  foreach(page ${DOCS_PAGES})
    get_filename_component(name ${page} NAME_WE)
    # docs/python.md runs Python on libnnc.so, which in a sanitizer build
    # needs the sanitizers' runtimes preloaded (as tests/python.cmake says)
    if(NNC_SANITIZE AND name STREQUAL "python")
      continue()
    endif()
    add_test(NAME docs.${name}
             COMMAND ${DOCS_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/doccheck.py
                     $<TARGET_FILE:nnc> ${PROJECT_SOURCE_DIR} ${page})
    set_tests_properties(docs.${name} PROPERTIES LABELS docs TIMEOUT 600)
  endforeach()
endif()
add_test(NAME docs.environment COMMAND ${CMAKE_CURRENT_LIST_DIR}/environment.sh ${PROJECT_SOURCE_DIR})
set_tests_properties(docs.environment PROPERTIES LABELS docs)
