/*
 * main() of the C unit test executables that build.rs links outside the Rust
 * test targets: the vtest suite linked with the original vmm_gpt.c (with and
 * without -DDEBUG), with the kernel objects of illumos-build/build.sh
 * (vmm_gpt.o, vmm_gpt.debug.o) or with the release staticlib.  build.rs
 * compiles it once per kind of implementation, defining
 *
 *   VTEST_MAIN_REFERENCE  1: the original vmm_gpt.c; 0: the library's code
 *   VTEST_MAIN_DEBUG      1: a DEBUG build (ASSERTs live); 0: non-DEBUG
 *
 * Kept out of ctest/c itself, whose sources all go into the test library
 * of the Rust test targets (c_unit.rs has its own main).
 */
#include "vtest.h"

#if !defined(VTEST_MAIN_REFERENCE) || !defined(VTEST_MAIN_DEBUG)
#error "build.rs defines VTEST_MAIN_REFERENCE and VTEST_MAIN_DEBUG"
#endif

int
main(int argc, char **argv)
{
	return (vtest_main(argc, argv, VTEST_MAIN_REFERENCE != 0,
	    VTEST_MAIN_DEBUG != 0));
}
