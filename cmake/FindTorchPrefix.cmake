# Adds LibTorch's CMake prefix to CMAKE_PREFIX_PATH, looked up, in order, through:
#   -DTorch_DIR=... or CMAKE_PREFIX_PATH (your own LibTorch: the pytorch.org zip, conda or pip),
#   the prefix that scripts/setup.sh recorded in ~/.cache/megabench/torch_prefix,
#   torch.utils.cmake_prefix_path of $MEGABENCH_PYTHON or python3.
# Used by megabench's own build and by the installed megabenchConfig.cmake.
if(NOT Torch_DIR AND NOT CMAKE_PREFIX_PATH MATCHES "torch|libtorch")
  set(_prefix_file "$ENV{HOME}/.cache/megabench/torch_prefix")
  if(EXISTS "${_prefix_file}")
    file(STRINGS "${_prefix_file}" _torch_prefix LIMIT_COUNT 1)
  endif()
  if(NOT _torch_prefix OR NOT EXISTS "${_torch_prefix}")
    if(DEFINED ENV{MEGABENCH_PYTHON})
      set(_py "$ENV{MEGABENCH_PYTHON}")
    else()
      find_program(_py NAMES python3 python)
    endif()
    execute_process(COMMAND "${_py}" -c "import torch; print(torch.utils.cmake_prefix_path)"
                    OUTPUT_VARIABLE _torch_prefix OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  endif()
  if(_torch_prefix)
    list(APPEND CMAKE_PREFIX_PATH "${_torch_prefix}")
  endif()
endif()
