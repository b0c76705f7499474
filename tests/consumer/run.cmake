# The "consumer" test: install hydra's build tree into a scratch prefix, then configure, build and
# run tests/consumer/ against it with find_package(hydra CONFIG REQUIRED), as a downstream project
# would. Fails with a message naming the step that went wrong.
#
#   cmake -DHYDRA_BINARY_DIR=<hydra build dir> -DCONSUMER_SOURCE_DIR=<this folder>
#         -DCONSUMER_WORK_DIR=<scratch dir, wiped first>
#         [-DCONSUMER_CXX_COMPILER=<compiler>] [-DCONSUMER_CUDA_COMPILER=<nvcc>] [-DHYDRA_EXPECTED_VERSION=<x.y.z>]
#         -P run.cmake
cmake_minimum_required(VERSION 3.21)

foreach(variable IN ITEMS HYDRA_BINARY_DIR CONSUMER_SOURCE_DIR CONSUMER_WORK_DIR)
  if(NOT ${variable})
    message(FATAL_ERROR "consumer: ${variable} is not set (see the usage at the top of run.cmake)")
  endif()
endforeach()

set(prefix ${CONSUMER_WORK_DIR}/prefix)
set(build ${CONSUMER_WORK_DIR}/build)
file(REMOVE_RECURSE ${CONSUMER_WORK_DIR})
file(MAKE_DIRECTORY ${CONSUMER_WORK_DIR})

# Runs a command with its output shown; on failure, stops with the step's name and the command.
function(run_step name)
  string(JOIN " " command_line ${ARGN})
  message(STATUS "consumer: ${name}: ${command_line}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "consumer: step '${name}' failed (${result}).\n  command: ${command_line}")
  endif()
endfunction()

# 1. Install.
run_step("install hydra" ${CMAKE_COMMAND} --install ${HYDRA_BINARY_DIR} --prefix ${prefix})

set(package_dir ${prefix}/share/cmake/hydra)
foreach(file IN ITEMS ${package_dir}/hydraConfig.cmake ${package_dir}/hydraConfigVersion.cmake
                      ${package_dir}/hydraTargets.cmake ${prefix}/include/hydra/core/tensor.hpp)
  if(NOT EXISTS ${file})
    message(FATAL_ERROR "consumer: the install did not produce ${file}")
  endif()
endforeach()

if(CONSUMER_CUDA_COMPILER AND NOT EXISTS ${package_dir}/hydraCudaTargets.cmake)
  message(FATAL_ERROR "consumer: hydra was built with CUDA but the install has no hydraCudaTargets.cmake")
endif()

# Our warnings-as-errors and sanitizer flags belong to hydra's own builds only: the exported
# target must not push them onto users.
file(GLOB targets_files ${package_dir}/hydra*Targets*.cmake)
foreach(file IN LISTS targets_files)
  file(READ ${file} contents)
  foreach(forbidden IN ITEMS Werror fsanitize hydra_internal)
    string(FIND "${contents}" "${forbidden}" position)
    if(NOT position EQUAL -1)
      message(FATAL_ERROR "consumer: the installed ${file} mentions '${forbidden}'; "
                          "the exported hydra::hydra must not carry hydra's internal build flags")
    endif()
  endforeach()
endforeach()

# 2. Configure the consumer against the installed package, and nothing else.
set(configure_args -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=${prefix}
                   -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
if(CONSUMER_CXX_COMPILER)
  list(APPEND configure_args -DCMAKE_CXX_COMPILER=${CONSUMER_CXX_COMPILER})
endif()
if(CONSUMER_CUDA_COMPILER)
  list(APPEND configure_args -DCONSUMER_CUDA_COMPILER=${CONSUMER_CUDA_COMPILER})
endif()
if(HYDRA_EXPECTED_VERSION)
  list(APPEND configure_args -DHYDRA_EXPECTED_VERSION=${HYDRA_EXPECTED_VERSION})
endif()
run_step("configure the consumer" ${CMAKE_COMMAND} -S ${CONSUMER_SOURCE_DIR} -B ${build} ${configure_args})

file(STRINGS ${build}/CMakeCache.txt hydra_dir_line REGEX "^hydra_DIR:")
string(REGEX REPLACE "^hydra_DIR:[A-Z]+=" "" hydra_dir "${hydra_dir_line}")
file(REAL_PATH "${hydra_dir}" hydra_dir)
file(REAL_PATH "${package_dir}" expected_dir)
if(NOT hydra_dir STREQUAL expected_dir)
  message(FATAL_ERROR "consumer: find_package(hydra) found '${hydra_dir}', not the package just "
                      "installed in '${expected_dir}'")
endif()

# 3. Build and 4. run.
run_step("build the consumer" ${CMAKE_COMMAND} --build ${build})
run_step("run the consumer" ${build}/consumer)
if(CONSUMER_CUDA_COMPILER)
  run_step("run the CUDA consumer" ${build}/consumer_cuda)
endif()

message(STATUS "consumer: OK (installed to ${prefix}, found, built and ran)")
