# cmake/wasi.cmake — toolchain file for wasm32-wasi (WASI preview1).
#
# Used by the `wasi` preset (CMakePresets.json). Needs clang, lld, Debian's
# wasi-libc and libclang-rt-14-dev-wasm32 (tests/run.sh installs them), and
# Node >= 18 to run the tests: every executable target runs under
# tests/wasi_run.mjs (Node's built-in node:wasi), which ctest prepends as the
# cross-compiling emulator. The same .wasm files run under wasmtime:
#   wasmtime run --dir=. build/wasi/tests/test_api.wasm
set(CMAKE_SYSTEM_NAME WASI)
set(CMAKE_SYSTEM_VERSION 1)
set(CMAKE_SYSTEM_PROCESSOR wasm32)
# Platform/WASI.cmake (next to this file): .wasm suffix, static libraries.
list(APPEND CMAKE_MODULE_PATH ${CMAKE_CURRENT_LIST_DIR})

find_program(CAIRN_WASI_CLANG NAMES clang clang-14 REQUIRED)
set(CMAKE_C_COMPILER ${CAIRN_WASI_CLANG})
set(CMAKE_C_COMPILER_TARGET wasm32-wasi)

# Debian's wasi-libc installs into clang's default wasm32-wasi search paths
# (/usr/include/wasm32-wasi, /usr/lib/wasm32-wasi); a wasi-sdk style sysroot
# is used when one is given or found.
set(CAIRN_WASI_SYSROOT "" CACHE PATH "WASI sysroot (empty: clang's default)")
if(NOT CAIRN_WASI_SYSROOT AND EXISTS /usr/share/wasi-sysroot/include)
  set(CAIRN_WASI_SYSROOT /usr/share/wasi-sysroot)
endif()
if(CAIRN_WASI_SYSROOT)
  set(CMAKE_SYSROOT ${CAIRN_WASI_SYSROOT})
endif()

# wasm-ld gives the shadow stack only 64 KiB by default; native programs get
# 8 MiB and the tests keep page-sized buffers on the stack.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-Wl,-z,stack-size=8388608")

# --no-turbo-fast-api-calls: Node's WASI syscalls are V8 "fast API calls",
# and a GC that one of them triggers (uvwasi reports its allocations with
# AdjustAmountOfExternalAllocatedMemory) corrupts V8's heap: nodejs/node
# issue #46777, still open. Seen here with Node 20.20.2 as V8_Fatal in the
# marker or sweeper (often reached from WasmMemoryObject::Grow) or SIGSEGV at
# exit, in test_model, test_concurrency and the bench. Without fast calls
# every run passes; the modules are unchanged (wasmtime needs no flag).
find_program(CAIRN_NODE NAMES node nodejs REQUIRED)
get_filename_component(_cairn_src ${CMAKE_CURRENT_LIST_DIR}/.. ABSOLUTE)
set(CMAKE_CROSSCOMPILING_EMULATOR ${CAIRN_NODE} --no-warnings
    --no-turbo-fast-api-calls ${_cairn_src}/tests/wasi_run.mjs)

set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
