# check_floor.cmake — compiles one-line probes in a module target's include
# context and checks each outcome (run by ctest unit.build_floor.<module>,
# see CMakeLists.txt here).
#
#   -DCC=<compiler> -DINCS=<dir>|<dir>... -DWORK=<scratch dir>
#   -DCASES=<header>=ok|fail;...
#
# "fail" means: the compiler reports that very header as not found. Any
# other failure (a probe that breaks for some unrelated reason) fails the
# check too, so a broken probe cannot pass as an enforced floor; "ok" means
# it compiles. One wrong outcome fails the whole test.
string(REPLACE "|" ";" incs "${INCS}")
set(flags -std=c11 -D_GNU_SOURCE -fsyntax-only)
foreach(d ${incs})
  list(APPEND flags -I${d})
endforeach()
file(MAKE_DIRECTORY ${WORK})
set(bad 0)
set(i 0)
foreach(c ${CASES})
  string(REPLACE "=" ";" kv "${c}")
  list(GET kv 0 hdr)
  list(GET kv 1 want)
  math(EXPR i "${i} + 1")
  set(src ${WORK}/probe_${i}.c)
  file(WRITE ${src} "#include \"${hdr}\"\nint ts_floor_probe;\n")
  execute_process(COMMAND ${CC} ${flags} ${src} RESULT_VARIABLE rc
                  OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(want STREQUAL "ok")
    if(rc EQUAL 0)
      message(STATUS "ok:   \"${hdr}\" compiles, as it may")
    else()
      message(SEND_ERROR "\"${hdr}\" is allowed but does not compile:\n${out}")
      set(bad 1)
    endif()
  else()
    string(FIND "${out}" "${hdr}: No such file or directory" found)
    if(NOT rc EQUAL 0 AND NOT found EQUAL -1)
      message(STATUS "ok:   \"${hdr}\" is not on the include path, as it must not be")
    elseif(rc EQUAL 0)
      message(SEND_ERROR "\"${hdr}\" compiles, but it is above this module's floor")
      set(bad 1)
    else()
      message(SEND_ERROR "\"${hdr}\": probe failed for another reason than a missing header:\n${out}")
      set(bad 1)
    endif()
  endif()
endforeach()
if(bad)
  message(FATAL_ERROR "the build does not enforce this module's floor (top CMakeLists.txt, ts_module_floor)")
endif()
