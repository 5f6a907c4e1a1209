# ctest driver: install the build tree to a scratch prefix, then build and run a consumer with
# find_package(eccl), and another with pkg-config.
foreach(var BUILD_DIR WORK_DIR SOURCE_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "${var} is required")
  endif()
endforeach()
file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  message(STATUS "${out}")
endfunction()

run(${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix}")
run(${CMAKE_COMMAND} -S "${SOURCE_DIR}/consumer" -B "${WORK_DIR}/cmake-consumer" -G Ninja
    "-DCMAKE_PREFIX_PATH=${prefix}")
run(${CMAKE_COMMAND} --build "${WORK_DIR}/cmake-consumer")
run("${WORK_DIR}/cmake-consumer/consumer")

# pkg-config
set(ENV{PKG_CONFIG_PATH} "${prefix}/lib/pkgconfig")
execute_process(COMMAND pkg-config --cflags --libs eccl OUTPUT_VARIABLE flags RESULT_VARIABLE rc
                OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "pkg-config does not know eccl")
endif()
separate_arguments(flags UNIX_COMMAND "${flags}")
execute_process(COMMAND pkg-config --variable=cxxflags eccl OUTPUT_VARIABLE cxxflags OUTPUT_STRIP_TRAILING_WHITESPACE)
run(c++ ${cxxflags} -o "${WORK_DIR}/pc-consumer" "${SOURCE_DIR}/consumer/main.cc" ${flags} "-Wl,-rpath,${prefix}/lib")
run("${WORK_DIR}/pc-consumer")
# A C program takes the same --cflags (no C++-only flag in them) and the C API.
run(cc -std=c11 -Wall -Werror -o "${WORK_DIR}/pc-c-consumer" "${SOURCE_DIR}/consumer/main.c" ${flags} "-Wl,-rpath,${prefix}/lib")
run("${WORK_DIR}/pc-c-consumer")

# The Python package as installed: importable from the prefix, finding the libraries there (no
# build tree, no environment variable), serving and using a store.
if(PYTHON)
  file(GLOB pydir "${prefix}/lib/python*/dist-packages")
  if(NOT pydir)
    message(FATAL_ERROR "the Python package was not installed under ${prefix}/lib/python*/dist-packages")
  endif()
  unset(ENV{ECCL_LIBRARY_PATH})
  run(${PYTHON} -I -c "import sys; sys.path.insert(0, '${pydir}'); import eccl, eccl._lib as L; \
assert L.library_path().startswith('${prefix}'), L.library_path(); \
s = eccl.TcpStoreServer.start(); c = eccl.TcpStore.connect(s.address); c.set('k', b'v'); assert c.get('k') == b'v'; \
print('installed python package OK from', L.library_path())")
endif()
