# The fuzz regression replay (any compiler; no libFuzzer needed) and, with clang and
# -DNABLA_FUZZ=ON, one libFuzzer binary per loader (scripts/fuzz.sh builds those).
add_library(nabla_fuzz_targets STATIC ${CMAKE_SOURCE_DIR}/tests/fuzz/targets.cpp)
target_link_libraries(nabla_fuzz_targets PUBLIC nabla)
target_compile_options(nabla_fuzz_targets PRIVATE ${NABLA_CXX_FLAGS})
add_executable(nabla_fuzz_replay ${CMAKE_SOURCE_DIR}/tests/fuzz/replay.cpp)
target_link_libraries(nabla_fuzz_replay PRIVATE nabla_fuzz_targets)
target_compile_options(nabla_fuzz_replay PRIVATE ${NABLA_CXX_FLAGS})
add_test(NAME "fuzz regressions: every crash file gives a nabla::Error, every seed loads"
         COMMAND nabla_fuzz_replay ${CMAKE_SOURCE_DIR}/tests/fuzz/regressions)
set_tests_properties("fuzz regressions: every crash file gives a nabla::Error, every seed loads"
                     PROPERTIES LABELS fuzz ENVIRONMENT "OMP_NUM_THREADS=2")

option(NABLA_FUZZ "Build the libFuzzer harnesses (clang only; see scripts/fuzz.sh)" OFF)
if(NABLA_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "NABLA_FUZZ needs clang (libFuzzer): CXX=clang++")
  endif()
  foreach(t safetensors npy idx idx_gz png image_mask run_state)
    add_executable(fuzz_${t} ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_target.cpp)
    target_compile_definitions(fuzz_${t} PRIVATE NABLA_FUZZ_TARGET="${t}")
    target_link_libraries(fuzz_${t} PRIVATE nabla_fuzz_targets)
    target_link_options(fuzz_${t} PRIVATE -fsanitize=fuzzer)
  endforeach()
endif()

# test_inspect_cli runs `nabla inspect` over the regression corpus.
if(TARGET test_inspect_cli)
  target_compile_definitions(test_inspect_cli PRIVATE
                             NABLA_FUZZ_REGRESSIONS="${CMAKE_SOURCE_DIR}/tests/fuzz/regressions")
endif()
