# A compile-fail test: compiling SOURCE must fail, and the compiler's output must contain the text
# after "// expect: " on the source's first line (the one-sentence diagnostic hydra promises).
file(STRINGS "${SOURCE}" first LIMIT_COUNT 1)
string(REGEX REPLACE "^// expect: " "" expected "${first}")
separate_arguments(flags UNIX_COMMAND "${FLAGS}")
execute_process(COMMAND "${COMPILER}" -std=c++20 -fsyntax-only ${flags} "${SOURCE}"
                RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(result EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but it must not")
endif()
string(FIND "${out}" "${expected}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "${SOURCE} failed to compile without the expected diagnostic\n  expected: ${expected}\n${out}")
endif()
message(STATUS "${SOURCE}: rejected with \"${expected}\"")
