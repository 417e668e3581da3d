/*
 * The three PTE-format indirection stubs that vmm_gpt calls on its hot path
 * (see "The hot-patch contract" in docs/abi.md).  Each is a single 5-byte
 * near jump, opcode 0xE9 with a signed 32-bit displacement from the end of
 * the instruction, initially to vmm_gpt_impl_panic; vmm_gpt_init() rewrites
 * the displacement to the installed format's function and vmm_gpt_fini()
 * puts it back.
 *
 * The jump is emitted byte by byte so that the assembler cannot pick the
 * 2-byte short form or anything else: a PC-relative 32-bit relocation
 * (R_X86_64_PC32, resolved at link time; the test programs are executables,
 * where vmm_gpt_impl_panic cannot be preempted).  Each stub starts 16-byte
 * aligned, with int3 (0xCC) padding between them, and has a symbol size so
 * that dladdr() (modgetsymname) finds it for any address inside it.
 */
	.text

	.p2align 4, 0xcc
	.globl	vmm_gpti_map_table
	.type	vmm_gpti_map_table, @function
vmm_gpti_map_table:
	.byte	0xe9
	.long	vmm_gpt_impl_panic - . - 4
	.size	vmm_gpti_map_table, . - vmm_gpti_map_table

	.p2align 4, 0xcc
	.globl	vmm_gpti_map_page
	.type	vmm_gpti_map_page, @function
vmm_gpti_map_page:
	.byte	0xe9
	.long	vmm_gpt_impl_panic - . - 4
	.size	vmm_gpti_map_page, . - vmm_gpti_map_page

	.p2align 4, 0xcc
	.globl	vmm_gpti_parse
	.type	vmm_gpti_parse, @function
vmm_gpti_parse:
	.byte	0xe9
	.long	vmm_gpt_impl_panic - . - 4
	.size	vmm_gpti_parse, . - vmm_gpti_parse

	.p2align 4, 0xcc

	.section .note.GNU-stack, "", @progbits
