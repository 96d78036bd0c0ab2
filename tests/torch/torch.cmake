# tests/torch/torch.cmake - gradients against PyTorch (included from
# tests/CMakeLists.txt)
#
#   torch.NAME.ENGINE   tests/torch/NAME.nn --grad with NAME.safetensors
#                       prints NAME.grad, which gen.py computed once with
#                       PyTorch in float64 (the tests do not need PyTorch)
set(TORCH_DIR ${CMAKE_CURRENT_LIST_DIR})
file(GLOB TORCH_MODELS LIST_DIRECTORIES false CONFIGURE_DEPENDS ${TORCH_DIR}/*.nn)
foreach(nn ${TORCH_MODELS})
  get_filename_component(name ${nn} NAME_WE)
  foreach(engine interp jit)
    add_test(NAME torch.${name}.${engine} COMMAND ${TORCH_DIR}/torch.sh $<TARGET_FILE:nnc> ${nn} ${engine})
    set_tests_properties(torch.${name}.${engine} PROPERTIES LABELS "torch;${engine}" TIMEOUT 120)
  endforeach()
endforeach()
