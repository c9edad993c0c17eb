# Finds every dependency. LibTorch is looked up through FindTorchPrefix.cmake (shared with the
# installed megabenchConfig.cmake, so a plugin finds the same LibTorch).
include(${CMAKE_CURRENT_LIST_DIR}/FindTorchPrefix.cmake)

# CUDA first, so that LibTorch's CUDA detection and ours agree.
set(MEGABENCH_HAS_CUDA OFF)
if(NOT MEGABENCH_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    # LibTorch's CMake sets the nvcc -gencode flags from TORCH_CUDA_ARCH_LIST and ignores
    # CMAKE_CUDA_ARCHITECTURES. Default: Hopper (H100/H200) only, to keep CI's nvcc time short.
    set(TORCH_CUDA_ARCH_LIST "9.0" CACHE STRING "CUDA architectures for the kernels, e.g. \"8.0;9.0\"")
    set(CMAKE_CUDA_ARCHITECTURES OFF)
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(MEGABENCH_HAS_CUDA ON)
  elseif(MEGABENCH_CUDA STREQUAL "ON")
    message(FATAL_ERROR "MEGABENCH_CUDA=ON but no CUDA compiler (nvcc) was found")
  endif()
endif()

find_package(Torch REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(Eigen3 3.3 REQUIRED NO_MODULE)
find_package(boost_headers 1.74 REQUIRED CONFIG)  # Boost.Math's t distribution (api/stats.cpp)
find_package(CLI11 REQUIRED)
find_package(Catch2 2 REQUIRED)
find_package(benchmark REQUIRED)
find_package(Threads REQUIRED)

set(MEGABENCH_HAS_CUPTI OFF)
if(MEGABENCH_HAS_CUDA AND TARGET CUDA::cupti)
  set(MEGABENCH_HAS_CUPTI ON)
endif()
message(STATUS "megabench: LibTorch ${Torch_VERSION}, CUDA ${MEGABENCH_HAS_CUDA}, CUPTI ${MEGABENCH_HAS_CUPTI}")

# ccache, with the sloppiness that precompiled headers need.
find_program(CCACHE_PROGRAM ccache)
if(CCACHE_PROGRAM AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  # CCACHE_BASEDIR makes paths relative, so a fresh clone elsewhere (as CI makes) hits the cache.
  set(_ccache_env CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
      CCACHE_BASEDIR=${CMAKE_SOURCE_DIR} CCACHE_NOHASHDIR=1)
  set(CMAKE_CXX_COMPILER_LAUNCHER ${CMAKE_COMMAND} -E env ${_ccache_env} ${CCACHE_PROGRAM})
  set(CMAKE_CUDA_COMPILER_LAUNCHER ${CMAKE_COMMAND} -E env ${_ccache_env} ${CCACHE_PROGRAM})
endif()
