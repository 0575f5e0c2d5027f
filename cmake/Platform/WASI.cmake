# cmake/Platform/WASI.cmake — CMake platform description for CMAKE_SYSTEM_NAME
# WASI (found through cmake/wasi.cmake). Executables are .wasm modules; there
# are no shared libraries in WASI preview1.
set(WASI 1)
set(CMAKE_EXECUTABLE_SUFFIX ".wasm")
set(CMAKE_STATIC_LIBRARY_PREFIX "lib")
set(CMAKE_STATIC_LIBRARY_SUFFIX ".a")
set_property(GLOBAL PROPERTY TARGET_SUPPORTS_SHARED_LIBS FALSE)
