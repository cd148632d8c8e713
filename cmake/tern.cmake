# Helpers shared by every part of the build.

# tern_program(NAME DIR): builds DIR/*.c except main.c into a static library
# <dirname>_lib (e.g. authd_lib, so tests and fuzzers can link the daemon's logic) and
# DIR/main.c into the program NAME (e.g. tern-authd).
function(tern_program prog dir)
  get_filename_component(name ${dir} NAME)
  file(GLOB srcs CONFIGURE_DEPENDS ${dir}/*.c)
  list(FILTER srcs EXCLUDE REGEX "/main\\.c$")
  if(srcs)
    add_library(${name}_lib STATIC ${srcs})
    target_include_directories(${name}_lib PUBLIC ${dir})
    target_link_libraries(${name}_lib PUBLIC common)
  else()
    add_library(${name}_lib INTERFACE)
    target_link_libraries(${name}_lib INTERFACE common)
  endif()
  if(NOT TERN_FUZZ AND EXISTS ${dir}/main.c)
    add_executable(${prog} ${dir}/main.c)
    target_link_libraries(${prog} PRIVATE ${name}_lib)
  endif()
endfunction()

# tern_unit_tests(DIR LIBS...): every DIR/test_*.c becomes a cmocka test.
function(tern_unit_tests dir)
  file(GLOB tests CONFIGURE_DEPENDS ${dir}/test_*.c)
  foreach(src ${tests})
    get_filename_component(base ${src} NAME_WE)
    file(RELATIVE_PATH rel ${CMAKE_SOURCE_DIR}/tests ${dir})
    string(REPLACE "/" "_" prefix ${rel})
    set(target ${prefix}_${base})
    add_executable(${target} ${src})
    target_link_libraries(${target} PRIVATE ${ARGN} PkgConfig::CMOCKA)
    target_compile_definitions(${target} PRIVATE
      TERN_SOURCE_DIR="${CMAKE_SOURCE_DIR}" TERN_BINARY_DIR="${CMAKE_BINARY_DIR}")
    add_test(NAME unit/${rel}/${base} COMMAND ${target})
    # A hang guard, not a speed check: ASan builds on a loaded 2-core machine are slow.
    set_tests_properties(unit/${rel}/${base} PROPERTIES TIMEOUT 600)
  endforeach()
endfunction()
