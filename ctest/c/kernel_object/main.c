/*
 * main() of the kernel-object executables (c_unit_kernel_object): the vtest
 * suite linked with the kernel object that illumos-build/build.sh makes
 * (target/kernel/vmm_gpt.o, the object illumos links) and nothing of Rust's
 * runtime.  It is the library's code, so the library's expectations apply
 * (vtest_reference == false).  Kept out of ctest/c itself, whose sources
 * all go into the harness library of the Rust test targets.
 */
#include "vtest.h"

int
main(int argc, char **argv)
{
	return (vtest_main(argc, argv, false));
}
