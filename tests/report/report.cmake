# tests/report/report.cmake - the --plot report and the --emit dot picture
# (included from tests/CMakeLists.txt)
foreach(case moons circles digits classes3 errors axes)
  add_test(NAME report.${case} COMMAND ${CMAKE_CURRENT_LIST_DIR}/plot.sh $<TARGET_FILE:nnc> ${PROJECT_SOURCE_DIR}/examples ${case}
           ${PROJECT_SOURCE_DIR}/tests/train)
  set_tests_properties(report.${case} PROPERTIES LABELS report TIMEOUT 300)
endforeach()

cli_test(plot_scale_bad 2 stderr "^nnc: --plot-scale is log or linear, got 'cubic'$" relu.nn --train --plot r.png --plot-scale cubic)
cli_test(plot_scale_bad_usage 2 stderr "^usage: nnc " relu.nn --train --plot r.png --plot-scale cubic)
cli_test(plot_scale_no_plot 2 stderr "^nnc: --plot-scale goes with --plot$" relu.nn --train --plot-scale log)
cli_test(plot_scale_no_value 2 stderr "^nnc: --plot-scale needs a value$" relu.nn --train --plot r.png --plot-scale)
# an output named twice: the first would not be written
cli_test(plot_twice 2 stderr "^nnc: --plot is given twice \\('a.png', then 'b.png'\\): a run writes one$" relu.nn --train --plot a.png --plot b.png)
cli_test(save_twice 2 stderr "^nnc: --save is given twice \\('a.st', then 'b.st'\\): a run writes one$" relu.nn --train --save a.st --save=b.st)
cli_test(out_twice 2 stderr "^nnc: -o is given twice \\('a.ll', then 'b.ll'\\): a run writes one$" relu.nn --emit llvm -o a.ll -o b.ll)
set_tests_properties(cli.plot_scale_bad cli.plot_scale_bad_usage cli.plot_scale_no_plot cli.plot_scale_no_value
                     cli.plot_twice cli.save_twice cli.out_twice PROPERTIES LABELS report)

# --emit dot renders with Graphviz (when it is installed)
find_program(NNC_DOT dot)
if(NNC_DOT)
  add_test(NAME report.dot_svg COMMAND ${CMAKE_CURRENT_LIST_DIR}/dot.sh $<TARGET_FILE:nnc> ${PROJECT_SOURCE_DIR}/examples ${NNC_DOT})
  set_tests_properties(report.dot_svg PROPERTIES LABELS report TIMEOUT 120)
endif()

# image inputs: the image grid, the confusion matrices (tests/idx's test_idx
# writes a Fashion-MNIST subset)
add_test(NAME report.images COMMAND ${CMAKE_CURRENT_LIST_DIR}/images.sh $<TARGET_FILE:nnc> $<TARGET_FILE:test_idx>)
set_tests_properties(report.images PROPERTIES LABELS report TIMEOUT 300)
