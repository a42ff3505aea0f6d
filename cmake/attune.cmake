# Build helpers: one directory, one library, one alias (STYLE.md §1).
#
#   attune_library(NAME <name> SRCS ... [DEPS ...] [PRIVATE_DEPS ...] [CXX_STANDARD 17])
#     makes attune_<name> with alias attune::<name>; -Wall -Wextra -Werror on our code only.
#   attune_test(NAME <name> LABEL UNIT|INTEGRATION SRCS ... DEPS ...)
#     a GoogleTest binary registered with ctest, labelled unit or integration.
include_guard(GLOBAL)

set(ATTUNE_WARNINGS -Wall -Wextra -Werror -Wno-missing-field-initializers)

function(attune_library)
  cmake_parse_arguments(A "" "NAME;CXX_STANDARD" "SRCS;DEPS;PRIVATE_DEPS" ${ARGN})
  set(target attune_${A_NAME})
  add_library(${target} STATIC ${A_SRCS})
  add_library(attune::${A_NAME} ALIAS ${target})
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${target} PUBLIC ${A_DEPS} PRIVATE ${A_PRIVATE_DEPS})
  target_compile_options(${target} PRIVATE ${ATTUNE_WARNINGS})
  if(A_CXX_STANDARD)
    set_target_properties(${target} PROPERTIES CXX_STANDARD ${A_CXX_STANDARD})
  endif()
endfunction()

function(attune_test)
  cmake_parse_arguments(A "" "NAME;LABEL" "SRCS;DEPS" ${ARGN})
  set(target test_${A_NAME})
  add_executable(${target} ${A_SRCS})
  target_link_libraries(${target} PRIVATE ${A_DEPS} GTest::gtest_main GTest::gmock)
  target_compile_options(${target} PRIVATE ${ATTUNE_WARNINGS})
  string(TOLOWER "${A_LABEL}" label)
  gtest_discover_tests(${target} PROPERTIES LABELS ${label} DISCOVERY_TIMEOUT 60)
endfunction()
