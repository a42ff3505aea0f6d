# attune_add_subdirs(): add every immediate subdirectory that has a CMakeLists.txt, so modules
# and test folders join the build without editing a shared list.
include_guard(GLOBAL)
# ATTUNE_SKIP_SUBDIRS: paths (relative to the project root) to leave out of a local build.
set(ATTUNE_SKIP_SUBDIRS "" CACHE STRING "subdirectories to skip")
function(attune_add_subdirs)
  file(GLOB children LIST_DIRECTORIES true RELATIVE ${CMAKE_CURRENT_SOURCE_DIR}
       ${CMAKE_CURRENT_SOURCE_DIR}/*)
  list(SORT children)
  foreach(child ${children})
    file(RELATIVE_PATH rel ${PROJECT_SOURCE_DIR} ${CMAKE_CURRENT_SOURCE_DIR}/${child})
    if(rel IN_LIST ATTUNE_SKIP_SUBDIRS)
      continue()
    endif()
    if(IS_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/${child}
       AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${child}/CMakeLists.txt)
      add_subdirectory(${child})
    endif()
  endforeach()
endfunction()

# attune_add_dir(DIR): add_subdirectory unless DIR is in ATTUNE_SKIP_SUBDIRS.
function(attune_add_dir dir)
  if(NOT dir IN_LIST ATTUNE_SKIP_SUBDIRS)
    add_subdirectory(${dir})
  endif()
endfunction()
