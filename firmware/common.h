/* The shared start-up's services for both programs: QEMU virt's devices, the
 * boot-parameter block, CSR access, PMP and delegation, and Sv39 page tables. */
#ifndef COMMON_H
#define COMMON_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long u64;
typedef unsigned long uintptr_t;
typedef unsigned long size_t;

#define NULL ((void *)0)
#define noreturn __attribute__((noreturn))

/* QEMU virt's memory map (hw/riscv/virt.c). */
#define TEST_BASE	0x00100000UL	/* sifive_test: poweroff */
#define CLINT_MTIMECMP	0x02004000UL	/* hart 0's mtimecmp */
#define CLINT_MTIME	0x0200bff8UL	/* CLINT's mtime, 10 MHz */
#define UART_BASE	0x10000000UL	/* ns16550a */
#define RAM_BASE	0x80000000UL
#define MTIME_HZ	10000000UL

/* The boot-parameter block: the host fills it with QEMU's generic loader before the
 * CPU starts (README.md). The image must end below it (link.ld asserts so). */
#define BOOTARGS	0x80100000UL
#define BOOT_MAGIC	0x004e41454c434b4dUL	/* the bytes "MKCLEAN\0", little-endian */
struct bootargs {
	u64 magic;
	u64 seed;	/* the demo's xorshift64 seed */
	u64 phys_base;	/* the bridge server's memory window */
	u64 phys_size;
};
#define DEFAULT_SEED		1UL
#define DEFAULT_PHYS_BASE	0x84000000UL
#define DEFAULT_PHYS_SIZE	(64UL << 20)
/* The block as read at boot, every field 0 replaced by its default. */
extern struct bootargs boot;

/* Entered by the start-up in M-mode on hart 0, .bss cleared and `boot` read. */
noreturn void main(void);

/* UART, polled: the programs run with every interrupt off. */
void uart_init(void);
void putchar(int c);
void puts(const char *s);			/* no newline added */
void put_hex(u64 v);				/* 0x..., no leading zeros */
void put_dec(u64 v);
int uart_fifo_on(void);			/* see common.c: 1 when on */
int uart_rx_ready(void);
int uart_getc(void);				/* call only when ready */
u64 mtime(void);
void mtime_sleep(u64 ticks);		/* wfi for up to that long, MTIE on; common.c */

/* Poweroff through the sifive_test device: code 0 passes (QEMU exits 0), any other
 * fails (QEMU exits with that code). Works in M and, identity-mapped, in S. */
noreturn void poweroff(unsigned code);
noreturn void panic(const char *why);

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);

/* CSRs */
#define csr_read(csr) ({ u64 __v; __asm__ volatile("csrr %0, " #csr : "=r"(__v) :: "memory"); __v; })
#define csr_write(csr, v) __asm__ volatile("csrw " #csr ", %0" :: "rK"((u64)(v)) : "memory")
#define csr_set(csr, v) __asm__ volatile("csrs " #csr ", %0" :: "rK"((u64)(v)) : "memory")
#define csr_clear(csr, v) __asm__ volatile("csrc " #csr ", %0" :: "rK"((u64)(v)) : "memory")

#define MIP_MTIP	(1UL << 7)
#define MSTATUS_MIE	(1UL << 3)
#define MSTATUS_SPIE	(1UL << 5)
#define MSTATUS_MPIE	(1UL << 7)
#define MSTATUS_SPP	(1UL << 8)
#define MSTATUS_MPP_SHIFT 11
#define MSTATUS_MPP	(3UL << MSTATUS_MPP_SHIFT)
#define MSTATUS_MPRV	(1UL << 17)
#define MSTATUS_SUM	(1UL << 18)
#define MSTATUS_MXR	(1UL << 19)
#define PRV_U 0
#define PRV_S 1
#define PRV_M 3

/* Exception causes */
#define EXC_INST_ACCESS		1
#define EXC_LOAD_ACCESS		5
#define EXC_STORE_ACCESS	7
#define EXC_ECALL_U		8
#define EXC_INST_PAGE		12
#define EXC_LOAD_PAGE		13
#define EXC_STORE_PAGE		15

/* PMP: entry 0 as one NAPOT region [base, base + size), size a power of two >= 8
 * and base aligned to it; perm a mix of PMP_R, PMP_W, PMP_X. Unlocked, so M-mode
 * itself is never checked. Every other entry stays off. */
#define PMP_R 1
#define PMP_W 2
#define PMP_X 4
void pmp_napot(u64 base, u64 size, unsigned perm);
/* Entry 0 over the whole address space, RWX: S and U reach everything. */
void pmp_allow_all(void);

/* M to S: the exception causes in `mask` go to S (medeleg) from now on, and
 * enter_smode() mret's to fn in S-mode with stack sp. */
void delegate_exceptions(u64 mask);
noreturn void enter_smode(void (*fn)(void), uintptr_t sp);

/* The M-mode trap handler's record of an expected trap (an access under MPRV, the
 * bridge's fetch probe): start.S saves the registers, m_trap() fills this. */
struct m_fault {
	u64 taken;	/* set by the handler; the caller clears it before the access */
	u64 cause;	/* mcause */
	u64 tval;	/* mtval */
};
extern volatile struct m_fault m_fault;
/* Set to an M-mode address before a probe that leaves M-mode: its trap returns
 * there, in M-mode, and the handler clears it. */
extern volatile u64 m_resume;

/* Sv39 */
#define PAGE_SHIFT	12
#define PAGE_SIZE	(1UL << PAGE_SHIFT)
#define _PAGE_PRESENT	(1UL << 0)	/* V */
#define _PAGE_READ	(1UL << 1)
#define _PAGE_WRITE	(1UL << 2)
#define _PAGE_EXEC	(1UL << 3)
#define _PAGE_USER	(1UL << 4)
#define _PAGE_GLOBAL	(1UL << 5)
#define _PAGE_ACCESSED	(1UL << 6)
#define _PAGE_DIRTY	(1UL << 7)
#define _PAGE_PFN_SHIFT	10
#define SATP_MODE_SV39	(8UL << 60)
#define SATP_ASID_SHIFT	44

typedef u64 pte_t;
static inline u64 pte_pfn(pte_t pte) { return (pte >> _PAGE_PFN_SHIFT) & ((1UL << 44) - 1); }
static inline pte_t pfn_pte(u64 pfn, u64 prot) { return (pfn << _PAGE_PFN_SHIFT) | prot; }

/* Page-table pages come from a region given to pt_pool_init(), zeroed, never freed. */
struct pt_pool {
	uintptr_t next, end;
};
void pt_pool_init(struct pt_pool *pool, void *base, size_t bytes);
pte_t *pt_alloc(struct pt_pool *pool);
/* Map va to pa with leaf bits prot (_PAGE_PRESENT is added) at level 0 (4 KiB),
 * 1 (2 MiB) or 2 (1 GiB), allocating the tables on the way. va and pa aligned to
 * the page; the slot must be free. */
void map_page(struct pt_pool *pool, pte_t *root, u64 va, u64 pa, u64 prot, int level);
/* The leaf PTE that maps va, or NULL: the kernel's walk (follow_pte). */
pte_t *pte_lookup(pte_t *root, u64 va);
/* satp = Sv39, asid, root; then sfence.vma x0, x0: nothing cached from before. */
void paging_on(pte_t *root, unsigned asid);

static inline void sfence_vma_all(void) { __asm__ volatile("sfence.vma zero, zero" ::: "memory"); }
static inline void sfence_vma_addr(u64 va) { __asm__ volatile("sfence.vma %0, zero" :: "r"(va) : "memory"); }
static inline void sfence_vma_asid(u64 asid) { __asm__ volatile("sfence.vma zero, %0" :: "r"(asid) : "memory"); }
static inline void sfence_vma_addr_asid(u64 va, u64 asid)
{
	__asm__ volatile("sfence.vma %0, %1" :: "r"(va), "r"(asid) : "memory");
}

#endif
