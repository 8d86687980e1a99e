# Builds libmapguard_rt.a and mapguard_rt_static.rsp from the objects compiled
# with MG_STATIC_RUNTIME (see runtime/mg_real.h): every NAME the objects reach
# as __real_NAME is an interceptor, whose definition is renamed __wrap_NAME,
# and gets a `--wrap=NAME` line. The response file also links the whole
# archive, wherever it stands on the command line: libc.a's own objects reach
# wrapped names (_setjmp) after an ordinary archive would have been scanned.
# Run with cmake -P; inputs: OBJECTS (|-separated), NM, OBJCOPY, AR, WORK_DIR,
# ARCHIVE, RESPONSE_FILE.
string(REPLACE "|" ";" objects "${OBJECTS}")
set(names "")
foreach(obj IN LISTS objects)
  execute_process(COMMAND ${NM} --undefined-only --format=just-symbols ${obj}
                  OUTPUT_VARIABLE out RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "StaticRuntime: ${NM} failed on ${obj}")
  endif()
  string(REGEX MATCHALL "__real_[A-Za-z0-9_]+" refs "${out}")
  foreach(ref IN LISTS refs)
    string(REGEX REPLACE "^__real_" "" name ${ref})
    list(APPEND names ${name})
  endforeach()
endforeach()
list(REMOVE_DUPLICATES names)
list(SORT names)
list(LENGTH names count)
if(count LESS 10)
  message(FATAL_ERROR "StaticRuntime: only ${count} interceptors found (${names}); was MG_STATIC_RUNTIME set?")
endif()
set(renames "")
set(wraps "--whole-archive\n-lmapguard_rt\n--no-whole-archive\n")
foreach(name IN LISTS names)
  string(APPEND renames "${name} __wrap_${name}\n")
  string(APPEND wraps "--wrap=${name}\n")
endforeach()
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
file(WRITE ${WORK_DIR}/renames.txt "${renames}")
set(renamed "")
set(index 0)
foreach(obj IN LISTS objects)
  get_filename_component(base ${obj} NAME)
  set(dest ${WORK_DIR}/${index}-${base})
  math(EXPR index "${index} + 1")
  # mapguard_text: the runtime's code in one output section whose bounds the
  # linker defines, so reports can hide the runtime's frames (mg_stack.cpp).
  execute_process(COMMAND ${OBJCOPY} --redefine-syms=${WORK_DIR}/renames.txt
                          --rename-section .text=mapguard_text ${obj} ${dest}
                  RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "StaticRuntime: ${OBJCOPY} failed on ${obj}")
  endif()
  list(APPEND renamed ${dest})
endforeach()
file(REMOVE ${ARCHIVE})
execute_process(COMMAND ${AR} rcs ${ARCHIVE} ${renamed} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "StaticRuntime: ${AR} failed")
endif()
file(WRITE ${RESPONSE_FILE} "${wraps}")
