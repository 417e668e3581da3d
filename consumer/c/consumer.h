/*
 * The consumer test's C interface: what the Rust side (consumer/src/lib.rs,
 * which mirrors these definitions) passes to a copy of the driver, and
 * what the driver (driver.c) uses of the services (services.c) beyond the
 * kernel's.
 *
 * Every copy of vmm_vm.c + driver.c in the process is renamed: its entry
 * point consumer_run() becomes consumer_<tag>_consumer_run() (build.rs).
 */
#ifndef _VMM_CONSUMER_H
#define	_VMM_CONSUMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ca_format; also consumer_set_vendor()'s argument */
#define	CONSUMER_EPT		0
#define	CONSUMER_RVI		1

/* ca_mode */
#define	CONSUMER_SEQUENTIAL	0
#define	CONSUMER_CONCURRENT	1

/* Processors (cpu_id values) of the simulated machine. */
#define	CONSUMER_MAX_CPUS	16

/* consumer_run()'s results */
#define	CONSUMER_OK		0	/* ran; every in-run check passed */
#define	CONSUMER_CHECK_FAILED	1	/* ran; "FAIL" lines say what failed */

typedef struct consumer_args {
	uint32_t	ca_size;	/* sizeof (consumer_args_t) */
	uint32_t	ca_format;	/* CONSUMER_EPT or CONSUMER_RVI */
	uint32_t	ca_mode;	/* CONSUMER_SEQUENTIAL or _CONCURRENT */
	/*
	 * Sequential: operations.  Concurrent: guest accesses per vCPU
	 * thread (device threads make a quarter as many holds).
	 */
	uint32_t	ca_ops;
	uint64_t	ca_seed;
	uint32_t	ca_vcpus;	/* concurrent: vCPU threads */
	uint32_t	ca_devices;	/* concurrent: device threads */
} consumer_args_t;

/*
 * Runs the scenario `args` selects over this copy's implementation and
 * returns CONSUMER_OK or CONSUMER_CHECK_FAILED, with the transcript in
 * *outp (malloc()ed, NUL-terminated text; the caller free()s it) and its
 * length in *lenp.  A failure of vmm_vm.c or of the implementation panics.
 */
int consumer_run(const consumer_args_t *args, char **outp, size_t *lenp);

/* services.c */
void consumer_set_vendor(int);
void consumer_set_cpu_id(int);
/* Takes (clears) a poke_cpu() of the calling thread's processor. */
bool consumer_take_poke(void);
uint64_t consumer_pokes_sent(void);

#endif /* _VMM_CONSUMER_H */
