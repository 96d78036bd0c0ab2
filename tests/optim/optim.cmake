# tests/optim/optim.cmake - optimizers, schedules and clipping against
# torch.optim: optim.CASE.DTYPE trains tests/optim/model.nn with one case of
# tests/optim/reference.json (written by torch_reference.py with PyTorch;
# the tests themselves need only python3) in the interpreter and with --jit,
# and compares the parameters (and the learning rate per epoch) with
# torch's. Cases ending in .b1 train with batch 1 (the register step), .b2
# with batch 2 (loop nests, a last batch of one row; also on two threads,
# through grad_part and the compiled update).
set(OPTIM_DIR ${CMAKE_CURRENT_LIST_DIR})
file(READ ${OPTIM_DIR}/reference.json OPTIM_REFERENCE)
string(JSON OPTIM_CASES GET ${OPTIM_REFERENCE} cases)
string(JSON OPTIM_COUNT LENGTH ${OPTIM_CASES})
math(EXPR OPTIM_LAST "${OPTIM_COUNT} - 1")
foreach(i RANGE ${OPTIM_LAST})
  string(JSON name GET ${OPTIM_CASES} ${i} name)
  foreach(dtype f64 f32)
    add_test(NAME optim.${name}.${dtype}
             COMMAND python3 ${OPTIM_DIR}/check.py $<TARGET_FILE:nnc> ${name} ${dtype})
    set_tests_properties(optim.${name}.${dtype} PROPERTIES LABELS optim TIMEOUT 120)
  endforeach()
endforeach()
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${OPTIM_DIR}/reference.json)

# --resume equals one run, bit for bit (resume.sh): both engines, Adam with
# a schedule, clipping and shuffling (loop nests), Nesterov SGD at batch 1
# (the register step), early stopping resumed before and after its best
# epoch, and threads
foreach(engine interp jit)
  foreach(nn resume_adam resume_nesterov early_stop)
    add_test(NAME optim.resume.${nn}.${engine}
             COMMAND ${OPTIM_DIR}/resume.sh $<TARGET_FILE:nnc> ${OPTIM_DIR}/${nn}.nn ${engine} 5)
  endforeach()
  add_test(NAME optim.resume.early_stop_after_best.${engine}
           COMMAND ${OPTIM_DIR}/resume.sh $<TARGET_FILE:nnc> ${OPTIM_DIR}/early_stop.nn ${engine} 12)
endforeach()
add_test(NAME optim.resume.threads
         COMMAND ${OPTIM_DIR}/resume.sh $<TARGET_FILE:nnc> ${OPTIM_DIR}/resume_adam.nn jit 4 --threads 2 --batch 4)
set_tests_properties(optim.resume.threads PROPERTIES ENVIRONMENT NNC_SPLIT=batch)

# early stopping, --eval, --load of a checkpoint with optimizer state,
# --resume errors, gradients without data, training-health notes
# (features.sh has one line on each)
foreach(case early_stop eval load_skips load_dropout seed_valid resume_nothing_left resume_no_epoch resume_other_optimizer resume_bad_metadata grad_no_data
             grad_no_data_embedding dead_relu dead_relu_dropout dead_relu_sampled dead_relu_big loss_stuck schedule_plot)
  foreach(engine interp jit)
    add_test(NAME optim.${case}.${engine}
             COMMAND ${OPTIM_DIR}/features.sh $<TARGET_FILE:nnc> ${PROJECT_SOURCE_DIR}/tests
                     ${PROJECT_SOURCE_DIR}/examples ${case} ${engine})
  endforeach()
endforeach()

# the loss before training only when the health check compares it: on
# the interpreter, whose forward pass over the train set outweighs the rest
add_test(NAME optim.loss_initial_only.interp
         COMMAND ${OPTIM_DIR}/features.sh $<TARGET_FILE:nnc> ${PROJECT_SOURCE_DIR}/tests
                 ${PROJECT_SOURCE_DIR}/examples loss_initial_only interp)

# the command line of these features
function(optim_cli name status stream regex)
  add_test(NAME cli.${name} COMMAND ${PROJECT_SOURCE_DIR}/tests/cli.sh $<TARGET_FILE:nnc> ${status} ${stream} ${regex}
                                    ${ARGN})
endfunction()
optim_cli(resume_needs_train 2 stderr "^nnc: --resume goes with --train" relu.nn --grad --resume x.safetensors)
optim_cli(resume_and_load 2 stderr "^nnc: --resume reads the parameters too" relu.nn --train --resume a --load b)
optim_cli(resume_no_value 2 stderr "^nnc: --resume needs a value" relu.nn --train --resume)
optim_cli(resume_missing 1 stderr "^nope.safetensors: error: " ../data/seed_moons.nn --train --resume nope.safetensors)
optim_cli(eval_and_train 2 stderr "^nnc: choose one of --train, --grad, --check-grad, --eval" relu.nn --eval --train)
optim_cli(eval_no_data 1 stderr "^relu.nn: error: no training data" relu.nn --eval)

# examples/digits_adamw.nn learns its task and stops early
add_test(NAME accept.digits_adamw
         COMMAND ${PROJECT_SOURCE_DIR}/tests/train/accept.sh $<TARGET_FILE:nnc> ${PROJECT_SOURCE_DIR}/examples digits_adamw)
set_tests_properties(accept.digits_adamw PROPERTIES LABELS "suites;accept;jit" TIMEOUT 300)

# random cases against PyTorch (scripts/torch_optim_check.py draws them and
# trains them with torch.optim; tests/optim/random keeps a few, with torch's
# parameters): optim.random.CASE.ENGINE trains one from the same start
# (random_check.py, standard library only)
file(GLOB OPTIM_RANDOM LIST_DIRECTORIES false CONFIGURE_DEPENDS ${OPTIM_DIR}/random/*.json)
foreach(json ${OPTIM_RANDOM})
  get_filename_component(case ${json} NAME_WE)
  foreach(engine interp jit)
    add_test(NAME optim.random.${case}.${engine}
             COMMAND python3 ${OPTIM_DIR}/random_check.py $<TARGET_FILE:nnc> ${case} ${engine})
    set_tests_properties(optim.random.${case}.${engine} PROPERTIES LABELS optim TIMEOUT 120)
  endforeach()
endforeach()
