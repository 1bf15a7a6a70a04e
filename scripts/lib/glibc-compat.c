/*
 * glibc-compat.c: arc4random, arc4random_buf and arc4random_uniform for the
 * release binary, so that it runs on glibc 2.34 (Amazon Linux 2023, RHEL 9)
 * although it is built on glibc 2.36 (Debian 12).
 *
 * Why: scripts/release links libstdc++ statically (RocksDB is C++). GCC 12's
 * libstdc++ was configured against glibc 2.36 and calls arc4random (from
 * std::random_device), which glibc has had only since 2.36; linked against
 * this machine's libc.so that one reference raises the binary's glibc floor
 * from 2.34 to 2.36. This object is linked ahead of the libraries, so the
 * static libstdc++ binds to these definitions and the binary carries no
 * GLIBC_2.36 reference (scripts/release checks the floor after linking).
 *
 * What: the contract of glibc's own arc4random on Linux (a getrandom(2)
 * call per request): bytes from the kernel's CSPRNG; getrandom is retried
 * on EINTR and after a short read; if
 * the kernel has no getrandom (ENOSYS, kernels older than 3.17) it falls
 * back to /dev/urandom; anything else is fatal: the process aborts with a
 * message. It never returns weak or zero bytes silently.
 *
 * Must not: be linked into anything but the release binary (the dev and
 * test builds use the system libstdc++ and glibc's own arc4random), or
 * define any symbol beyond the three below.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <unistd.h>

static void compat_fatal(const char *what, int err)
{
	fprintf(stderr, "geokv: arc4random: %s failed (errno %d); aborting\n", what, err);
	abort();
}

/* Fills buf from /dev/urandom (only when the kernel lacks getrandom). */
static void compat_urandom(unsigned char *buf, size_t n)
{
	int fd;
	do {
		fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	} while (fd < 0 && errno == EINTR);
	if (fd < 0)
		compat_fatal("open /dev/urandom", errno);
	while (n > 0) {
		ssize_t got = read(fd, buf, n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			compat_fatal("read /dev/urandom", got < 0 ? errno : EIO);
		buf += got;
		n -= (size_t)got;
	}
	close(fd);
}

void arc4random_buf(void *p, size_t n)
{
	unsigned char *buf = p;
	while (n > 0) {
		ssize_t got = getrandom(buf, n, 0);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOSYS) {
				compat_urandom(buf, n);
				return;
			}
			compat_fatal("getrandom", errno);
		}
		buf += got;
		n -= (size_t)got;
	}
}

uint32_t arc4random(void)
{
	uint32_t r;
	arc4random_buf(&r, sizeof r);
	return r;
}

/* Uniform in [0, bound) without modulo bias (rejection sampling). */
uint32_t arc4random_uniform(uint32_t bound)
{
	if (bound < 2)
		return 0;
	/* 2^32 mod bound: values below it would make low results likelier. */
	uint32_t min = -bound % bound;
	for (;;) {
		uint32_t r = arc4random();
		if (r >= min)
			return r % bound;
	}
}
