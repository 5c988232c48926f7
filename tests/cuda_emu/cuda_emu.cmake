# The emulated CUDA build (tests/cuda_emu/README.md), included by the top-level CMakeLists.txt:
#
#   cuda_emu_rewrite        host tool: kernels/cuda/*.cu -> C++ with launches the emulator runs
#   nabla_emu               the library whose CUDA device is the emulator (the engine objects of
#                           `nabla` when those were built with the CUDA backend)
#   cuda_emu/nabla          the command line on nabla_emu, for test_cli's CUDA cases
#   emu_<test>              every tests/test_cuda_*.cpp, and the CUDA cases of test_explain,
#                           test_attack and test_cli, on nabla_emu; CTest runs each case once
#                           per thread order of the race probe, under the label cuda-emu
#   emu_test_cuda_emu       the emulator's own checks (tests/cuda_emu/test_cuda_emu.cu), and
#   cuda_emu_fault: ...     kernels built with a deliberate fault, whose parity test must fail:
#                           both under the label emulator
#
# Inputs from the top level: NABLA_CXX_FLAGS, NABLA_LIB_SOURCES, NABLA_CLI_SOURCES,
# NABLA_HAVE_CUDA, nabla_object_library_setup(), and the object libraries nabla_objects,
# nabla_cli_objects and nabla_test_main_object (built with NABLA_HAVE_CUDA when it is ON).

set(NABLA_EMU_DIR ${CMAKE_SOURCE_DIR}/tests/cuda_emu)
set(NABLA_EMU_ORDERS forward reverse CACHE STRING
    "Thread orders of the race probe that CTest runs the emulated CUDA tests under")
set(NABLA_EMU_FLAGS ${NABLA_CXX_FLAGS} -Wno-unknown-pragmas)
set(NABLA_EMU_LINK_FLAGS)
if(NABLA_CUDA_EMU_SANITIZE)
  list(APPEND NABLA_EMU_FLAGS -fsanitize=address,undefined -fno-omit-frame-pointer
       -fno-sanitize-recover=undefined)
  list(APPEND NABLA_EMU_LINK_FLAGS -fsanitize=address,undefined)
endif()

add_executable(cuda_emu_rewrite ${NABLA_EMU_DIR}/rewrite_launches.cpp)

# Rewrites one .cu file into ${outdir}/NAME.cu.cpp and compiles it, with the emulator's
# headers, into the object library ${target}.
function(nabla_emu_kernel_objects target cu outdir)
  get_filename_component(name ${cu} NAME_WE)
  set(gen ${outdir}/${name}.cu.cpp)
  add_custom_command(OUTPUT ${gen}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${outdir}
    COMMAND cuda_emu_rewrite ${cu} ${gen}
    DEPENDS cuda_emu_rewrite ${cu}
    COMMENT "Rewriting ${name}.cu for the CUDA emulator" VERBATIM)
  add_library(${target} OBJECT ${gen})
  target_link_libraries(${target} PRIVATE ${NABLA_EMU_OBJECTS})
  target_include_directories(${target} PRIVATE ${NABLA_EMU_DIR}/include)
  # nvcc defines __CUDACC__ for .cu files: common.cuh's device helpers need it.
  target_compile_definitions(${target} PRIVATE __CUDACC__=1 NABLA_CUDA_EMU=1)
  target_compile_options(${target} PRIVATE ${NABLA_EMU_FLAGS})
endfunction()

# The engine, CPU kernels and nets compiled with NABLA_HAVE_CUDA: those of `nabla` when the
# CUDA backend is built, otherwise a second compile.
if(NABLA_HAVE_CUDA)
  set(NABLA_EMU_OBJECTS nabla_objects)
else()
  add_library(nabla_emu_objects OBJECT ${NABLA_LIB_SOURCES})
  nabla_object_library_setup(nabla_emu_objects ON)
  set(NABLA_EMU_OBJECTS nabla_emu_objects)
endif()

# A library over the emulated runtime from the given kernel object libraries.
function(nabla_emu_library target)
  set(objects)
  foreach(k ${ARGN})
    list(APPEND objects $<TARGET_OBJECTS:${k}>)
  endforeach()
  add_library(${target} STATIC ${objects} ${NABLA_EMU_DIR}/scheduler.cpp ${NABLA_EMU_DIR}/runtime.cpp)
  target_link_libraries(${target} PUBLIC ${NABLA_EMU_OBJECTS})
  target_include_directories(${target} PUBLIC ${NABLA_EMU_DIR}/include PRIVATE ${NABLA_EMU_DIR})
  target_compile_definitions(${target} PUBLIC NABLA_CUDA_EMU=1)
  target_compile_options(${target} PRIVATE ${NABLA_EMU_FLAGS})
  target_link_options(${target} PUBLIC ${NABLA_EMU_LINK_FLAGS})
endfunction()

file(GLOB NABLA_EMU_CU CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/kernels/cuda/*.cu)
set(NABLA_EMU_KERNELS)
foreach(cu ${NABLA_EMU_CU})
  get_filename_component(name ${cu} NAME_WE)
  nabla_emu_kernel_objects(nabla_emu_${name} ${cu} ${CMAKE_BINARY_DIR}/cuda_emu/src)
  list(APPEND NABLA_EMU_KERNELS nabla_emu_${name})
endforeach()
nabla_emu_library(nabla_emu ${NABLA_EMU_KERNELS})

# The command line on the emulated device: cuda_emu/nabla.
# Its objects are those of `nabla` when that has the CUDA backend.
if(NABLA_HAVE_CUDA)
  add_executable(nabla_emu_cli $<TARGET_OBJECTS:nabla_cli_objects>)
else()
  add_executable(nabla_emu_cli ${NABLA_CLI_SOURCES})
  target_compile_options(nabla_emu_cli PRIVATE ${NABLA_CXX_FLAGS})
endif()
set_target_properties(nabla_emu_cli PROPERTIES OUTPUT_NAME nabla
                      RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/cuda_emu)
target_link_libraries(nabla_emu_cli PRIVATE nabla_emu)

if(NOT NABLA_BUILD_TESTS)
  return()
endif()

# Labels are set after doctest's discovered tests are read (TEST_INCLUDE_FILES run in order).
set(NABLA_EMU_LABELS_FILE ${CMAKE_BINARY_DIR}/cuda_emu/labels.cmake)
file(WRITE ${NABLA_EMU_LABELS_FILE} "")

# An emulated test program from src: its objects (reused by the deliberate faults) and the
# program on nabla_emu, whose cases (those matching `spec`, all when it is empty) CTest runs once
# per thread order, with the label `label`.
function(nabla_emu_test name src spec label)
  set(target emu_${name})
  add_library(${target}_objects OBJECT ${src})
  target_link_libraries(${target}_objects PRIVATE nabla_emu doctest::doctest)
  target_include_directories(${target}_objects PRIVATE ${CMAKE_SOURCE_DIR}/tests)
  target_compile_options(${target}_objects PRIVATE ${NABLA_EMU_FLAGS})
  add_executable(${target} $<TARGET_OBJECTS:${target}_objects>
                 $<TARGET_OBJECTS:nabla_test_main_object>)
  target_link_libraries(${target} PRIVATE nabla_emu doctest::doctest)
  foreach(order ${NABLA_EMU_ORDERS})
    # EXTRA_ARGS differ per order only so that doctest keeps the lists apart.
    doctest_discover_tests(${target} TEST_PREFIX "emu ${order}: ${name}: "
      TEST_SPEC ${spec} EXTRA_ARGS --dt-emu-order=${order}
      TEST_LIST ${target}_${order}_TESTS
      PROPERTIES ENVIRONMENT "OMP_NUM_THREADS=2;NABLA_EMU_ORDER=${order}")
    file(APPEND ${NABLA_EMU_LABELS_FILE}
         "set_tests_properties(\${${target}_${order}_TESTS} PROPERTIES LABELS ${label})\n")
  endforeach()
endfunction()

file(GLOB NABLA_CUDA_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/test_cuda_*.cpp)
foreach(src ${NABLA_CUDA_TESTS})
  get_filename_component(name ${src} NAME_WE)
  nabla_emu_test(${name} ${src} "" cuda-emu)
endforeach()
# Only the CUDA cases of these.
nabla_emu_test(test_explain ${CMAKE_SOURCE_DIR}/tests/test_explain.cpp "*CUDA*" cuda-emu)
nabla_emu_test(test_attack ${CMAKE_SOURCE_DIR}/tests/test_attack.cpp "*on the GPU*" cuda-emu)
nabla_emu_test(test_cli ${CMAKE_SOURCE_DIR}/tests/test_cli.cpp "*--device cuda*" cuda-emu)
add_dependencies(emu_test_cli nabla_emu_cli)
target_compile_definitions(emu_test_cli_objects PRIVATE
                           NABLA_BIN_DIR="${CMAKE_BINARY_DIR}/cuda_emu")

# The emulator's own checks: the kernels in test_cuda_emu.cu go through the rewriter too.
set(selftest ${CMAKE_BINARY_DIR}/cuda_emu/selftest/test_cuda_emu.cu.cpp)
add_custom_command(OUTPUT ${selftest}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/cuda_emu/selftest
  COMMAND cuda_emu_rewrite ${NABLA_EMU_DIR}/test_cuda_emu.cu ${selftest}
  DEPENDS cuda_emu_rewrite ${NABLA_EMU_DIR}/test_cuda_emu.cu VERBATIM)
nabla_emu_test(test_cuda_emu ${selftest} "" emulator)
target_compile_definitions(emu_test_cuda_emu_objects PRIVATE __CUDACC__=1)

# Deliberate faults: a kernel source with one change, built into its own emulated library, and
# a test program whose parity case must then fail with mismatches (not crash, not pass).
#   name  the CTest name; file  the kernel source; pattern / replacement  the change (the
#   pattern must occur in the source, or the configuration stops); test / case  what runs.
function(nabla_emu_fault name file pattern replacement test case)
  file(READ ${CMAKE_SOURCE_DIR}/kernels/cuda/${file} text)
  string(FIND "${text}" "${pattern}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "cuda_emu fault ${name}: '${pattern}' not found in kernels/cuda/${file}")
  endif()
  string(REPLACE "${pattern}" "${replacement}" text "${text}")
  set(dir ${CMAKE_BINARY_DIR}/cuda_emu/fault_${name})
  file(WRITE ${dir}/${file}.in "${text}")
  configure_file(${dir}/${file}.in ${dir}/${file} COPYONLY)  # rewritten only when it changes
  get_filename_component(faulted ${file} NAME_WE)
  nabla_emu_kernel_objects(nabla_emu_fault_${name}_kernel ${dir}/${file} ${dir}/src)
  set(kernels nabla_emu_fault_${name}_kernel)
  foreach(k ${NABLA_EMU_KERNELS})
    if(NOT k STREQUAL nabla_emu_${faulted})
      list(APPEND kernels ${k})
    endif()
  endforeach()
  nabla_emu_library(nabla_emu_fault_${name} ${kernels})
  set(target emu_fault_${name})
  add_executable(${target} $<TARGET_OBJECTS:emu_${test}_objects>
                 $<TARGET_OBJECTS:nabla_test_main_object>)
  target_link_libraries(${target} PRIVATE nabla_emu_fault_${name} doctest::doctest)
  set(test_name "cuda_emu_fault: ${name} makes '${case}' fail")
  string(REPLACE "," "\\," filter "${case}")  # doctest splits its filters at commas
  add_test(NAME ${test_name} COMMAND ${target} "--test-case=${filter}")
  # Passes only when the parity check reports wrong elements: a crash or a pass fails it.
  set_tests_properties(${test_name} PROPERTIES
    PASS_REGULAR_EXPRESSION "elements differ"
    ENVIRONMENT "OMP_NUM_THREADS=2;NABLA_EMU_QUIET=1" LABELS emulator)
endfunction()

if(NABLA_CUDA_EMU_FAULTS)
  # The second barrier of the SGEMM k-loop: the next tile loads overwrite shared memory that
  # other warps still read.
  nabla_emu_fault(sgemm_barrier gemm.cu
    "        __syncthreads();  // every warp is done reading before the next loads overwrite them\n"
    "" test_cuda_gemm "cuda gemm float vs the CPU: every transpose, ragged sizes, alpha/beta, NaN C")
  # The tail of the elementwise map skips its last element.
  nabla_emu_fault(map_tail elementwise.cu
    "  for (int64_t i = packs * V + tid; i < n; i += stride) {"
    "  for (int64_t i = packs * V + tid; i + 1 < n; i += stride) {"
    test_cuda_elementwise "cuda elementwise: every unary op, forward and backward, aligned and unaligned")
endif()

set_property(DIRECTORY ${CMAKE_SOURCE_DIR} APPEND PROPERTY TEST_INCLUDE_FILES ${NABLA_EMU_LABELS_FILE})
