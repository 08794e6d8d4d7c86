# Stand-in for the SDK's OE toolchain file, behaving like OpenEmbedded's before
# Yocto 4.0.12: compilers and flags come from the sourced environment, and the
# processor is taken from the target sysroot's name ("cortexa72-elk-linux" gives
# "cortexa72"), which is what breaks Abseil unless a toolchain file overrides it.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_C_FLAGS "$ENV{CFLAGS}" CACHE STRING "" FORCE)
set(CMAKE_CXX_FLAGS "$ENV{CXXFLAGS}" CACHE STRING "" FORCE)
set(CMAKE_ASM_FLAGS "${CMAKE_C_FLAGS}" CACHE STRING "" FORCE)
set(CMAKE_LDFLAGS_FLAGS "${CMAKE_CXX_FLAGS}" CACHE STRING "" FORCE)
set(CMAKE_SYSROOT "$ENV{OECORE_TARGET_SYSROOT}")

set(CMAKE_FIND_ROOT_PATH "$ENV{OECORE_TARGET_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

get_filename_component(_oe_sysroot_name "$ENV{SDKTARGETSYSROOT}" NAME)
string(REGEX REPLACE "-.*$" "" CMAKE_SYSTEM_PROCESSOR "${_oe_sysroot_name}")

file(GLOB _oe_toolchain_parts "${CMAKE_CURRENT_LIST_FILE}.d/*.cmake")
foreach(_oe_part ${_oe_toolchain_parts})
  include("${_oe_part}")
endforeach()
