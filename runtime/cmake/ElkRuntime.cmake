# The elkbuild model runtime for a plugin project:
#
#   include(<elkbuild>/runtime/cmake/ElkRuntime.cmake)
#   elkrt_add(<target> ENGINE onnx|tflite INCLUDE_DIR <engine header folders...> [LIBRARY <engine library>]
#             [RESAMPLING])
#
# builds libelkrt once in this project's build tree with the one engine the plugin
# uses and links <target> to it, so a fix in runtime/ reaches every plugin at its
# next build instead of living in a copy. RESAMPLING also links elkrt_resampling
# (elkrt/resampling_model.h) and libsamplerate, which the toolchain must provide.
set(ELKRT_ROOT "${CMAKE_CURRENT_LIST_DIR}/.." CACHE INTERNAL "elkbuild's runtime/ folder")

function(elkrt_add target)
    cmake_parse_arguments(ELKRT_ADD "RESAMPLING" "ENGINE;LIBRARY" "INCLUDE_DIR" ${ARGN})
    if(NOT ELKRT_ADD_ENGINE MATCHES "^(onnx|tflite)$")
        message(FATAL_ERROR "elkrt_add(${target}): ENGINE must be onnx or tflite, not '${ELKRT_ADD_ENGINE}'")
    endif()
    if(TARGET elkrt)
        if(NOT ELKRT_ENGINE_IN_USE STREQUAL ELKRT_ADD_ENGINE)
            message(FATAL_ERROR "elkrt_add(${target}): this project already builds the runtime for ${ELKRT_ENGINE_IN_USE}")
        endif()
    else()
        set(ELKRT_TESTS OFF)
        set(ELKRT_TOOLS OFF)
        if(ELKRT_ADD_ENGINE STREQUAL "onnx")
            set(ELKRT_WITH_ONNX ON)
            set(ELKRT_ONNX_INCLUDE_DIR "${ELKRT_ADD_INCLUDE_DIR}")
            set(ELKRT_ONNX_LIBRARY "${ELKRT_ADD_LIBRARY}")
        else()
            set(ELKRT_WITH_TFLITE ON)
            set(ELKRT_TFLITE_INCLUDE_DIR "${ELKRT_ADD_INCLUDE_DIR}")
            set(ELKRT_TFLITE_LIBRARY "${ELKRT_ADD_LIBRARY}")
        endif()
        add_subdirectory("${ELKRT_ROOT}" "${CMAKE_BINARY_DIR}/elkrt")
        set(ELKRT_ENGINE_IN_USE "${ELKRT_ADD_ENGINE}" CACHE INTERNAL "")
    endif()
    target_link_libraries(${target} PRIVATE elkrt::elkrt)
    if(ELKRT_ADD_RESAMPLING)
        if(NOT TARGET elkrt_resampling)
            message(FATAL_ERROR "elkrt_add(${target}): resampling needs libsamplerate (samplerate.h and "
                                "libsamplerate.so) for this toolchain: apt-get install libsamplerate0-dev "
                                "natively, or add libsamplerate0-dev to the toolchain's sysroot packages")
        endif()
        target_link_libraries(${target} PRIVATE elkrt_resampling)
    endif()
endfunction()
