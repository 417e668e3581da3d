/*
 * main() of the reference executable (c_unit_reference): the vtest suite
 * linked with the original illumos vmm_gpt.c instead of the Rust library.
 */
#include "vtest.h"

int
main(int argc, char **argv)
{
	return (vtest_main(argc, argv, true));
}
