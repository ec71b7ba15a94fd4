/*
 * mkclean realcheck executor: runs a program of memory syscalls and single-byte accesses
 * on the host's own Linux kernel and prints what Linux did, op by op. The same program
 * runs on the project's kernel model (sim/kernel) and the two outcomes are compared; Linux
 * is the reference, so this executor's one job is to observe it faithfully and add no
 * noise. mkclean.sim.realcheck.host builds it (make build/realcheck-executor) and runs it
 * in a fresh empty directory, so each run's files start with an empty page cache.
 *
 * PROGRAM (stdin, text, one item per line; numbers in strtoull(.., 0) form, decimal or
 * 0x-hex; blank lines and lines whose first non-blank character is '#' are ignored)
 *
 *   Header lines, before any op:
 *     file N SIZE        create fN in the current directory (O_RDWR|O_CREAT|O_TRUNC, 0600),
 *                        ftruncate it to SIZE, posix_fadvise(POSIX_FADV_RANDOM); the fd
 *                        stays open for the whole run. N is 0..7.
 *   Ops, numbered from 0 in order of appearance (fork and exit lines included); each prints
 *   exactly one result line:
 *     mmap ADDR LEN PROT FLAGS FILE OFFSET   FILE -1 for none; PROT and FLAGS are Linux's
 *                        raw numbers. On success, madvise(ret, LEN, MADV_RANDOM): the model
 *                        has no readahead, and VM_RAND_READ makes do_sync_mmap_readahead
 *                        read exactly the faulting page (it does not turn fault-around
 *                        off). MAP_POPULATE is done after that, by MADV_POPULATE_(READ|
 *                        WRITE) (see the mmap op below). -> "ok 0x<ret hex>" | "err <errno>"
 *     munmap ADDR LEN | mprotect ADDR LEN PROT | msync ADDR LEN FLAGS | mlock ADDR LEN |
 *     munlock ADDR LEN   -> "ok 0" | "err <errno>"
 *     load ADDR          one volatile 1-byte load -> "ok <byte decimal> <faults>" |
 *                        "sig <signo> <faults>"
 *     store ADDR BYTE    one volatile 1-byte store -> "ok - <faults>" | "sig <signo> <faults>"
 *     pwrite N OFFSET LEN BYTE   LEN (<= 4096) bytes equal to BYTE to fN at OFFSET
 *                        -> "ok <bytes written>" | "err <errno>"
 *     ftruncate N SIZE   -> "ok 0" | "err <errno>"
 *     fork               the parent prints "ok 0" for this line, then forks. The child runs
 *                        the ops up to the matching exit (forks nest like brackets, at most
 *                        8 deep), prints "ok 0" for that exit and _exit(0)s. The parent
 *                        waits for it, then goes on after the matching exit.
 *     exit               ends a child (an exit outside a child is bad input).
 *
 * OUTPUT (stdout)
 *   linux <uname release> <uname machine> pagesize <sysconf PAGESIZE>
 *         blocksize <statvfs(".").f_bsize> fstype 0x<statfs(".").f_type hex>   (one line)
 *   <op index> <result>          one line per op, in program order
 *   end
 *   A child that dies, or exits other than by its exit line, makes the parent print
 *   "fatal child <wait status>" and exit 3.
 *
 *   How a child's lines reach the reader: the parent flushes its output before fork; the
 *   child inherits fd 1 (the same open file description: for a pipe the same pipe, for a
 *   file the same offset) and write(2)s its lines there itself, flushing before _exit; the
 *   parent writes nothing until waitpid returns. So the lines stay in program order and
 *   none is lost, with no relay.
 *
 * EXIT STATUS: 0 done; 2 bad input (unknown op, wrong number of fields, a bad number, a
 * file not declared, exit without fork, fork without exit, forks nested beyond 8, more than
 * 4096 ops): one line on stderr naming the line number and the problem, before any file is
 * created or any op runs (the whole program is parsed first, into static arrays); 3 the
 * executor's own setup or a child failed: one line on stderr.
 *
 * MEASUREMENT (what makes the fault counts trustworthy)
 *   - An access's faults = (ru_minflt + ru_majflt) after - before, getrusage(RUSAGE_SELF)
 *     right around the single access. Linux counts a fault there only once it is handled
 *     (mm_account_fault: not for VM_FAULT_ERROR, not for a bad-area SIGSEGV, and once for a
 *     retried fault; a page-cache miss is major, a hit minor, hence the sum), so a fault
 *     that ends in a signal counts 0. What getrusage says is reported, unadjusted.
 *   - Nothing else may fault inside the window. Everything the window and the signal
 *     handler write (both rusage structs, the sigjmp_buf, the caught signal, the loaded
 *     byte) is one page-aligned static struct; the handler runs on a static sigaltstack
 *     (SA_ONSTACK, SIGSEGV and SIGBUS) and siglongjmp's out (sigsetjmp(env, 1)). Right
 *     before each access the executor writes to every page of both, to the stack below
 *     the measuring frame, to the thread's own block (glibc's siglongjmp writes struct
 *     pthread in __pthread_cleanup_upto; the kernel writes the rseq area on signal
 *     delivery and on resuming a preempted task; errno is TLS), and calls getrusage once
 *     into the same structs: after a fork all of the parent's and the child's writable
 *     pages are copy-on-write, and the first write to each would fault inside the window.
 *     (Seen: without the thread block's page, a parent's first SIGBUS after its child
 *     exited counted 1 fault, the copy-on-write of struct pthread.)
 *   - Code and read-only data: fork copies no page table entries of file-backed mappings
 *     without anonymous pages, so a child's text is unmapped and its first execution of
 *     the access path or the handler would fault. So at start, in every child right after
 *     fork and in the parent once its child has exited, the executor warms the path up: a
 *     measured load and store of its own static page and a measured load of a kernel
 *     address (SIGSEGV without any vma, so no fault is counted and no page of the
 *     program's arena is touched), twice, and checks that the second round counted 0
 *     faults (exit 3 otherwise): a self-check of the measurement in every process.
 *   - No dynamic allocation: the program, the ops and the output are static arrays; the
 *     output is formatted with vsnprintf into a static buffer and written with write(2).
 *     The program's addresses are in an arena it chooses (the model uses 0x2000000000);
 *     the executor maps nothing of its own there, and at start checks that
 *     [0x2000000000, +1 GiB) is free (a PROT_NONE MAP_FIXED_NOREPLACE mapping, unmapped
 *     again; exit 3 if it cannot be made).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/rseq.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_OPS 4096
#define MAX_FILES 8
#define MAX_DEPTH 8
#define MAX_INPUT (1 << 20)
#define MAX_FIELDS 8
#define PAGE 4096
#define ALTSTACK_SIZE (64 * 1024)
#define STACK_TOUCH (32 * 1024)
#define ARENA_BASE 0x2000000000UL
#define ARENA_CHECK (1UL << 30)
/* A kernel address: a user access to it is a SIGSEGV decided before any vma is looked up. */
#define WARM_BAD_ADDR (~(uintptr_t)0 - 0xfff)

enum kind { MMAP, MUNMAP, MPROTECT, MSYNC, MLOCK, MUNLOCK, LOAD, STORE, PWRITE, FTRUNCATE,
            FORK, EXIT };
static const struct { const char *name; int nargs; } KINDS[] = {
    [MMAP] = {"mmap", 6}, [MUNMAP] = {"munmap", 2}, [MPROTECT] = {"mprotect", 3},
    [MSYNC] = {"msync", 3}, [MLOCK] = {"mlock", 2}, [MUNLOCK] = {"munlock", 2},
    [LOAD] = {"load", 1}, [STORE] = {"store", 2}, [PWRITE] = {"pwrite", 4},
    [FTRUNCATE] = {"ftruncate", 2}, [FORK] = {"fork", 0}, [EXIT] = {"exit", 0},
};
#define NKINDS ((int)(sizeof KINDS / sizeof KINDS[0]))

struct op {
    int kind;
    int line;
    int match; /* fork: index of its exit; exit: index of its fork */
    uint64_t a[6];
};

static char input[MAX_INPUT + 1];
static struct op ops[MAX_OPS];
static int nops;
static int file_declared[MAX_FILES];
static uint64_t file_size[MAX_FILES];
static int file_fd[MAX_FILES];

static char outbuf[1 << 20];
static size_t outlen;

static unsigned char pwbuf[PAGE];

/* Everything the measured window and the signal handler write: one page. */
static struct window {
    struct rusage before, after;
    sigjmp_buf env;
    volatile sig_atomic_t caught;
    volatile unsigned char loaded;
} W __attribute__((aligned(PAGE)));
_Static_assert(sizeof(struct window) <= PAGE, "the window's state is one page");

static char altstack[ALTSTACK_SIZE] __attribute__((aligned(PAGE)));

/* ---- output ------------------------------------------------------------------------- */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void flush_out(void)
{
    size_t done = 0;
    while (done < outlen) {
        ssize_t n = write(1, outbuf + done, outlen - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            outlen = 0;
            die("write to stdout failed: %s", strerror(errno));
        }
        done += (size_t)n;
    }
    outlen = 0;
}

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
    va_list ap;
    if (outlen > sizeof outbuf / 2)
        flush_out();
    va_start(ap, fmt);
    int n = vsnprintf(outbuf + outlen, sizeof outbuf - outlen, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof outbuf - outlen)
        die("an output line does not fit the output buffer");
    outlen += (size_t)n;
}

static void die(const char *fmt, ...)
{
    va_list ap;
    flush_out();
    fputs("realcheck-executor: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    _exit(3);
}

static void bad_input(int line, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void bad_input(int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "realcheck-executor: line %d: ", line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

/* ---- parsing ------------------------------------------------------------------------ */

static uint64_t number(int line, const char *field, const char *s, uint64_t max)
{
    char *end;
    if (*s == '-' || *s == '+')
        bad_input(line, "%s: '%s' is not an unsigned number", field, s);
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (*s == '\0' || *end != '\0' || errno)
        bad_input(line, "%s: '%s' is not a number", field, s);
    if (v > max)
        bad_input(line, "%s: %s is above %#llx", field, s, (unsigned long long)max);
    return v;
}

static int file_number(int line, const char *s)
{
    int n = (int)number(line, "file number", s, MAX_FILES - 1);
    if (!file_declared[n])
        bad_input(line, "file %d is not declared (no 'file %d SIZE' line)", n, n);
    return n;
}

static void parse(void)
{
    size_t len = 0;
    for (;;) {
        ssize_t n = read(0, input + len, MAX_INPUT + 1 - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("reading the program from stdin: %s", strerror(errno));
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > MAX_INPUT)
            bad_input(0, "the program is longer than %d bytes", MAX_INPUT);
    }
    input[len] = '\0';
    if (memchr(input, '\0', len))
        bad_input(0, "the program contains a NUL byte");

    int stack[MAX_DEPTH], depth = 0, line = 0;
    char *p = input;
    while (*p) {
        char *nl = strchr(p, '\n');
        char *next = nl ? nl + 1 : p + strlen(p);
        if (nl)
            *nl = '\0';
        line++;
        char *f[MAX_FIELDS + 1];
        int nf = 0;
        for (char *tok = strtok(p, " \t\r\v\f"); tok; tok = strtok(NULL, " \t\r\v\f")) {
            if (nf == MAX_FIELDS + 1)
                bad_input(line, "too many fields");
            f[nf++] = tok;
        }
        p = next;
        if (nf == 0 || f[0][0] == '#')
            continue;
        if (strcmp(f[0], "file") == 0) {
            if (nops)
                bad_input(line, "a 'file' line after the first op (files are declared first)");
            if (nf != 3)
                bad_input(line, "'file' takes 2 fields (N SIZE), got %d", nf - 1);
            int n = (int)number(line, "file number", f[1], MAX_FILES - 1);
            if (file_declared[n])
                bad_input(line, "file %d is declared twice", n);
            file_declared[n] = 1;
            file_size[n] = number(line, "file size", f[2], INT64_MAX);
            continue;
        }
        int k;
        for (k = 0; k < NKINDS; k++)
            if (strcmp(f[0], KINDS[k].name) == 0)
                break;
        if (k == NKINDS)
            bad_input(line, "unknown op '%s'", f[0]);
        if (nf - 1 != KINDS[k].nargs)
            bad_input(line, "'%s' takes %d fields, got %d", f[0], KINDS[k].nargs, nf - 1);
        if (nops == MAX_OPS)
            bad_input(line, "more than %d ops", MAX_OPS);
        struct op *o = &ops[nops];
        o->kind = k;
        o->line = line;
        o->match = -1;
        switch (k) {
        case MMAP:
            o->a[0] = number(line, "address", f[1], UINT64_MAX);
            o->a[1] = number(line, "length", f[2], UINT64_MAX);
            o->a[2] = number(line, "prot", f[3], UINT32_MAX);
            o->a[3] = number(line, "flags", f[4], UINT32_MAX);
            o->a[4] = strcmp(f[5], "-1") == 0 ? UINT64_MAX : (uint64_t)file_number(line, f[5]);
            o->a[5] = number(line, "offset", f[6], INT64_MAX);
            /* MADV_POPULATE_* (see the mmap op) has no FOLL_FORCE, so it would not fault
             * in a write- or exec-only mapping that MAP_POPULATE (__mm_populate) does. */
            if ((o->a[3] & MAP_POPULATE) && o->a[2] && !(o->a[2] & PROT_READ))
                bad_input(line, "MAP_POPULATE needs PROT_READ or PROT_NONE here (it is done "
                          "by MADV_POPULATE_*, which does not force access)");
            break;
        case MUNMAP: case MLOCK: case MUNLOCK:
            o->a[0] = number(line, "address", f[1], UINT64_MAX);
            o->a[1] = number(line, "length", f[2], UINT64_MAX);
            break;
        case MPROTECT: case MSYNC:
            o->a[0] = number(line, "address", f[1], UINT64_MAX);
            o->a[1] = number(line, "length", f[2], UINT64_MAX);
            o->a[2] = number(line, k == MPROTECT ? "prot" : "flags", f[3], UINT32_MAX);
            break;
        case LOAD:
            o->a[0] = number(line, "address", f[1], UINT64_MAX);
            break;
        case STORE:
            o->a[0] = number(line, "address", f[1], UINT64_MAX);
            o->a[1] = number(line, "byte", f[2], 255);
            break;
        case PWRITE:
            o->a[0] = (uint64_t)file_number(line, f[1]);
            o->a[1] = number(line, "offset", f[2], INT64_MAX);
            o->a[2] = number(line, "length", f[3], PAGE);
            o->a[3] = number(line, "byte", f[4], 255);
            break;
        case FTRUNCATE:
            o->a[0] = (uint64_t)file_number(line, f[1]);
            o->a[1] = number(line, "size", f[2], INT64_MAX);
            break;
        case FORK:
            if (depth == MAX_DEPTH)
                bad_input(line, "forks nested more than %d deep", MAX_DEPTH);
            stack[depth++] = nops;
            break;
        case EXIT:
            if (depth == 0)
                bad_input(line, "'exit' without a 'fork' (exit ends a child)");
            o->match = stack[--depth];
            ops[o->match].match = nops;
            break;
        }
        nops++;
    }
    if (depth)
        bad_input(ops[stack[depth - 1]].line, "'fork' without a matching 'exit'");
}

/* ---- the measured access ------------------------------------------------------------ */

static void on_fault(int sig)
{
    W.caught = sig;
    siglongjmp(W.env, 1);
}

/* Writes to the STACK_TOUCH bytes below its caller's frame (the window's calls use them). */
static __attribute__((noinline)) void touch_stack(void)
{
    volatile char below[STACK_TOUCH];
    for (size_t i = 0; i < sizeof below; i += 256)
        below[i] = 0;
}

static void touch_word(uintptr_t a)
{
    __atomic_fetch_or((unsigned *)(a & ~(uintptr_t)3), 0, __ATOMIC_RELAXED);
}

/* Makes every page the window writes present and writable, and the getrusage path warm. */
static void pretouch(void)
{
    for (size_t i = 0; i < sizeof W; i += 64)
        ((volatile char *)&W)[i] = ((volatile char *)&W)[i];
    for (size_t i = 0; i < sizeof altstack; i += PAGE / 4)
        ((volatile char *)altstack)[i] = 0;
    touch_stack();
    /* The thread's own block: glibc's siglongjmp writes struct pthread (cleanup_jmp_buf,
     * in __pthread_cleanup_upto), the kernel writes its rseq area (cpu_id...) when it
     * delivers a signal or resumes a preempted task, and errno lives in the TLS below
     * the thread pointer. Every page from the thread pointer to the end of the rseq area,
     * and errno's, is written with an atomic or of 0 (it races neither glibc nor the
     * kernel's updates). */
    uintptr_t tp = (uintptr_t)__builtin_thread_pointer();
    uintptr_t rseq = tp + (uintptr_t)__rseq_offset, rseq_end = rseq + (__rseq_size ? __rseq_size : 32);
    uintptr_t lo = rseq < tp ? rseq : tp, hi = rseq_end > tp + 1 ? rseq_end : tp + 1;
    for (uintptr_t a = lo; a < hi; a = (a | (PAGE - 1)) + 1)
        touch_word(a);
    touch_word((uintptr_t)&errno);
    getrusage(RUSAGE_SELF, &W.before);
    getrusage(RUSAGE_SELF, &W.after);
}

struct access { int sig; unsigned value; long faults; };

static __attribute__((noinline)) struct access measure(uintptr_t addr, int store, unsigned char byte)
{
    pretouch();
    W.caught = 0;
    W.loaded = 0;
    if (sigsetjmp(W.env, 1) == 0) {
        getrusage(RUSAGE_SELF, &W.before);
        /* ---- the window: the single access, and nothing else ---- */
        if (store)
            *(volatile unsigned char *)addr = byte;
        else
            W.loaded = *(volatile unsigned char *)addr;
    }
    getrusage(RUSAGE_SELF, &W.after);
    struct access r;
    r.sig = W.caught;
    r.value = W.loaded;
    r.faults = (W.after.ru_minflt + W.after.ru_majflt) - (W.before.ru_minflt + W.before.ru_majflt);
    return r;
}

/* Runs the access path and the signal path twice (the first run may fault on the
 * executor's own text, after a fork) and checks that the second run counted nothing. */
static void warm_up(const char *who)
{
    static unsigned char own __attribute__((aligned(PAGE)));
    for (int round = 0; round < 2; round++) {
        struct access a = measure((uintptr_t)&own, 0, 0);
        struct access b = measure((uintptr_t)&own, 1, 0);
        struct access c = measure(WARM_BAD_ADDR, 0, 0);
        if (c.sig != SIGSEGV)
            die("%s: warm-up: a load of a kernel address gave signal %d, not SIGSEGV", who, c.sig);
        if (round == 1 && (a.faults || b.faults || c.faults || a.sig || b.sig))
            die("%s: the measurement is noisy: an own present page's load and store and a "
                "kernel address's load counted %ld, %ld and %ld faults", who, a.faults,
                b.faults, c.faults);
    }
}

/* ---- setup -------------------------------------------------------------------------- */

static void setup(void)
{
    void *arena = mmap((void *)ARENA_BASE, ARENA_CHECK, PROT_NONE,
                       MAP_FIXED_NOREPLACE | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (arena == MAP_FAILED)
        die("the arena [%#lx, +1 GiB) is not free: %s", ARENA_BASE, strerror(errno));
    if (arena != (void *)ARENA_BASE) {
        munmap(arena, ARENA_CHECK);
        die("the arena [%#lx, +1 GiB) is not free (mmap put it at %p)", ARENA_BASE, arena);
    }
    if (munmap(arena, ARENA_CHECK))
        die("munmap of the arena check: %s", strerror(errno));

    stack_t ss = { .ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0 };
    if (sigaltstack(&ss, NULL))
        die("sigaltstack: %s", strerror(errno));
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fault;
    sa.sa_flags = SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, NULL) || sigaction(SIGBUS, &sa, NULL))
        die("sigaction: %s", strerror(errno));

    struct utsname u;
    struct statvfs sv;
    struct statfs sf;
    if (uname(&u))
        die("uname: %s", strerror(errno));
    if (statvfs(".", &sv))
        die("statvfs(\".\"): %s", strerror(errno));
    if (statfs(".", &sf))
        die("statfs(\".\"): %s", strerror(errno));
    long pagesize = sysconf(_SC_PAGESIZE);

    for (int n = 0; n < MAX_FILES; n++) {
        if (!file_declared[n])
            continue;
        char name[8];
        snprintf(name, sizeof name, "f%d", n);
        int fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0600);
        if (fd < 0)
            die("cannot create %s: %s", name, strerror(errno));
        if (ftruncate(fd, (off_t)file_size[n]))
            die("ftruncate(%s, %llu): %s", name, (unsigned long long)file_size[n], strerror(errno));
        int e = posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
        if (e)
            die("posix_fadvise(%s, RANDOM): %s", name, strerror(e));
        file_fd[n] = fd;
    }

    out("linux %s %s pagesize %ld blocksize %lu fstype %#lx\n", u.release, u.machine, pagesize,
        (unsigned long)sv.f_bsize, (unsigned long)sf.f_type);
    warm_up("start");
}

/* ---- running ------------------------------------------------------------------------ */

static void result(int i, long ret)
{
    if (ret < 0)
        out("%d err %d\n", i, errno);
    else
        out("%d ok 0\n", i);
}

static void run(void)
{
    for (int i = 0; i < nops; i++) {
        struct op *o = &ops[i];
        void *addr = (void *)(uintptr_t)o->a[0];
        size_t len = (size_t)o->a[1];
        switch (o->kind) {
        case MMAP: {
            int fd = o->a[4] == UINT64_MAX ? -1 : file_fd[o->a[4]];
            int prot = (int)o->a[2], flags = (int)o->a[3];
            /* MAP_POPULATE faults the range in inside mmap, before MADV_RANDOM can be set,
             * so its first fault would read around (32 pages) and fault-around would then
             * map what that read. Map without it, set MADV_RANDOM, then populate as
             * __mm_populate does: write faults for a private writable mapping (to break
             * COW), read faults otherwise, errors ignored. MAP_POPULATE is a legacy flag,
             * so taking it out changes no validation. */
            void *r = mmap(addr, len, prot, flags & ~MAP_POPULATE, fd, (off_t)o->a[5]);
            if (r == MAP_FAILED) {
                out("%d err %d\n", i, errno);
                break;
            }
            if (madvise(r, len, MADV_RANDOM))
                die("op %d (line %d): madvise(MADV_RANDOM) of the new mapping: %s", i, o->line,
                    strerror(errno));
            if (flags & MAP_POPULATE)
                (void)madvise(r, len, (prot & PROT_WRITE) && (flags & MAP_TYPE) == MAP_PRIVATE
                                          ? MADV_POPULATE_WRITE : MADV_POPULATE_READ);
            out("%d ok %#lx\n", i, (unsigned long)(uintptr_t)r);
            break;
        }
        case MUNMAP: result(i, munmap(addr, len)); break;
        case MPROTECT: result(i, mprotect(addr, len, (int)o->a[2])); break;
        case MSYNC: result(i, msync(addr, len, (int)o->a[2])); break;
        case MLOCK: result(i, mlock(addr, len)); break;
        case MUNLOCK: result(i, munlock(addr, len)); break;
        case LOAD: case STORE: {
            struct access a = measure((uintptr_t)o->a[0], o->kind == STORE, (unsigned char)o->a[1]);
            const char *status = a.sig ? "sig" : "ok";
            if (a.sig)
                out("%d sig %d %ld\n", i, a.sig, a.faults);
            else if (o->kind == LOAD)
                out("%d %s %u %ld\n", i, status, a.value, a.faults);
            else
                out("%d %s - %ld\n", i, status, a.faults);
            break;
        }
        case PWRITE: {
            memset(pwbuf, (int)o->a[3], sizeof pwbuf);
            ssize_t n = pwrite(file_fd[o->a[0]], pwbuf, (size_t)o->a[2], (off_t)o->a[1]);
            if (n < 0)
                out("%d err %d\n", i, errno);
            else
                out("%d ok %zd\n", i, n);
            break;
        }
        case FTRUNCATE: result(i, ftruncate(file_fd[o->a[0]], (off_t)o->a[1])); break;
        case FORK: {
            out("%d ok 0\n", i);
            flush_out();
            pid_t pid = fork();
            if (pid < 0)
                die("op %d (line %d): fork: %s", i, o->line, strerror(errno));
            if (pid == 0) {
                warm_up("child");
                break; /* the child runs the ops after the fork, up to its exit */
            }
            int status;
            while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                    die("op %d (line %d): waitpid: %s", i, o->line, strerror(errno));
            if (status != 0) {
                out("fatal child %d\n", status);
                die("op %d (line %d): the child %s %d", i, o->line,
                    WIFSIGNALED(status) ? "died of signal" : "exited with status",
                    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
            }
            warm_up("parent"); /* its writable pages are copy-on-write since the fork */
            i = o->match;       /* the parent goes on after the child's exit */
            break;
        }
        case EXIT:
            out("%d ok 0\n", i);
            flush_out();
            _exit(0);
        }
    }
    out("end\n");
    flush_out();
}

int main(void)
{
    parse();
    setup();
    run();
    return 0;
}
