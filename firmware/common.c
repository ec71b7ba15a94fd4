/* The shared start-up's C part: see common.h. */
#include "common.h"

struct bootargs boot;
volatile struct m_fault m_fault;
volatile u64 m_resume;

/* Between the bridge's access routines (bridge_access.S): a trap there is expected. */
extern char __mprv_start[], __mprv_end[];

noreturn void boot_main(void)
{
	volatile struct bootargs *b = (volatile struct bootargs *)BOOTARGS;

	/* QEMU's RAM starts zeroed, so a field the host did not write reads 0: it gets
	 * its default like every field of a block without the magic. */
	if (b->magic == BOOT_MAGIC) {
		boot.magic = BOOT_MAGIC;
		boot.seed = b->seed;
		boot.phys_base = b->phys_base;
		boot.phys_size = b->phys_size;
	}
	if (!boot.seed)
		boot.seed = DEFAULT_SEED;
	if (!boot.phys_base)
		boot.phys_base = DEFAULT_PHYS_BASE;
	if (!boot.phys_size)
		boot.phys_size = DEFAULT_PHYS_SIZE;
	uart_init();
	main();
}

/* The M-mode trap handler's C part (start.S saved the caller-saved registers). */
void m_trap(void)
{
	u64 cause = csr_read(mcause), epc = csr_read(mepc), tval = csr_read(mtval);
	unsigned from = csr_read(mstatus) >> MSTATUS_MPP_SHIFT & 3;

	if (!(cause >> 63)) {
		if (m_resume) {
			/* A probe in S or U trapped (whatever mepc is: it is the probe's
			 * address, which may be anywhere): back to M-mode where it asked. */
			m_fault.cause = cause;
			m_fault.tval = tval;
			m_fault.taken = 1;
			csr_write(mepc, m_resume);
			csr_set(mstatus, MSTATUS_MPP);
			m_resume = 0;
			return;
		}
		if (from == PRV_M && epc >= (uintptr_t)__mprv_start && epc < (uintptr_t)__mprv_end) {
			/* An access routine's one access: skip it (they are built without
			 * compressed instructions, so it is 4 bytes) and let it return. */
			m_fault.cause = cause;
			m_fault.tval = tval;
			m_fault.taken = 1;
			csr_write(mepc, epc + 4);
			return;
		}
	}
	puts("\nunexpected trap: mcause=");
	put_hex(cause);
	puts(" mepc=");
	put_hex(epc);
	puts(" mtval=");
	put_hex(tval);
	putchar('\n');
	poweroff(2);
}

/* ns16550a registers */
#define UART_RBR 0	/* receive buffer (read) */
#define UART_THR 0	/* transmit holding (write) */
#define UART_IER 1
#define UART_FCR 2	/* FIFO control (write) */
#define UART_LSR 5
#define UART_LSR_DR	0x01	/* a byte is waiting */
#define UART_LSR_THRE	0x20	/* room to transmit */

static inline volatile u8 *uart(unsigned reg) { return (volatile u8 *)(UART_BASE + reg); }

void uart_init(void)
{
	*uart(UART_IER) = 0;
}

/* QEMU's 16550 without its FIFO takes one byte from the host per turn of QEMU's
 * main loop, with it (receive trigger 14) up to 14: about 1 KiB/s against 12. But
 * QEMU empties the receive side whenever the FIFO is switched on or off, and with
 * wait=on the host may be sending before the CPU starts, so: on only when no byte
 * is waiting, and asked for when the host is sending nothing (the bridge: when it
 * waits for an answer). 1 when the FIFO is on. */
int uart_fifo_on(void)
{
	if (*uart(UART_LSR) & UART_LSR_DR)
		return 0;
	*uart(UART_FCR) = 0xc1;
	return 1;
}

void putchar(int c)
{
	while (!(*uart(UART_LSR) & UART_LSR_THRE))
		;
	*uart(UART_THR) = (u8)c;
}

void puts(const char *s)
{
	while (*s)
		putchar(*s++);
}

void put_hex(u64 v)
{
	int shift = 60;

	puts("0x");
	while (shift > 0 && !(v >> shift))
		shift -= 4;
	for (; shift >= 0; shift -= 4)
		putchar("0123456789abcdef"[(v >> shift) & 15]);
}

void put_dec(u64 v)
{
	char buf[20];
	int n = 0;

	do
		buf[n++] = '0' + v % 10;
	while ((v /= 10));
	while (n)
		putchar(buf[--n]);
}

int uart_rx_ready(void)
{
	return *uart(UART_LSR) & UART_LSR_DR;
}

int uart_getc(void)
{
	return *uart(UART_RBR);
}

u64 mtime(void)
{
	return *(volatile u64 *)CLINT_MTIME;
}

/* Sleep in wfi until mtime passes now + ticks, or less. It wakes on the timer's
 * interrupt, which the caller enables once with mie = MIP_MTIP (MTIE) while
 * mstatus.MIE stays 0: pending and enabled wakes wfi, but M-mode takes no trap.
 * (Writing mie around every wfi instead made QEMU take 4 times as long to hand
 * over the UART's input.) Code that leaves M-mode must clear MTIE first: in S and
 * U, M's interrupts are taken whatever MIE says. */
void mtime_sleep(u64 ticks)
{
	*(volatile u64 *)CLINT_MTIMECMP = mtime() + ticks;
	__asm__ volatile("wfi");
}

noreturn void poweroff(unsigned code)
{
	/* sifive_test: 0x5555 is pass, 0x3333 | code << 16 is fail with that exit code */
	*(volatile u32 *)TEST_BASE = code ? 0x3333 | code << 16 : 0x5555;
	for (;;)
		__asm__ volatile("wfi");
}

noreturn void panic(const char *why)
{
	puts("\npanic: ");
	puts(why);
	putchar('\n');
	poweroff(2);
}

void *memset(void *d, int c, size_t n)
{
	u8 *p = d;

	while (n--)
		*p++ = (u8)c;
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	u8 *p = d;
	const u8 *q = s;

	while (n--)
		*p++ = *q++;
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const u8 *p = a, *q = b;

	for (; n; n--, p++, q++)
		if (*p != *q)
			return *p < *q ? -1 : 1;
	return 0;
}

void pmp_napot(u64 base, u64 size, unsigned perm)
{
	/* NAPOT: pmpaddr holds base >> 2 with size / 8 - 1 in its low bits; A = 3 */
	csr_write(pmpaddr0, (base >> 2) | ((size >> 3) - 1));
	csr_write(pmpcfg0, (3 << 3) | perm);
}

void pmp_allow_all(void)
{
	csr_write(pmpaddr0, ~0UL >> 10);	/* NAPOT over all 2^56 bytes */
	csr_write(pmpcfg0, (3 << 3) | PMP_R | PMP_W | PMP_X);
}

void delegate_exceptions(u64 mask)
{
	csr_write(medeleg, mask);
	csr_write(mideleg, 0);
}

noreturn void enter_smode(void (*fn)(void), uintptr_t sp)
{
	u64 ms = csr_read(mstatus);

	ms &= ~(MSTATUS_MPP | MSTATUS_MPRV | MSTATUS_MPIE | MSTATUS_SUM | MSTATUS_MXR);
	csr_write(mstatus, ms | (u64)PRV_S << MSTATUS_MPP_SHIFT);
	csr_write(mepc, fn);
	__asm__ volatile("mv sp, %0; mret" :: "r"(sp));
	__builtin_unreachable();
}

void pt_pool_init(struct pt_pool *pool, void *base, size_t bytes)
{
	pool->next = ((uintptr_t)base + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	pool->end = (uintptr_t)base + bytes;
}

pte_t *pt_alloc(struct pt_pool *pool)
{
	pte_t *t = (pte_t *)pool->next;

	if (pool->next + PAGE_SIZE > pool->end)
		panic("out of page-table pages");
	pool->next += PAGE_SIZE;
	return memset(t, 0, PAGE_SIZE);
}

static inline unsigned vpn(u64 va, int level)
{
	return (va >> (PAGE_SHIFT + 9 * level)) & 511;
}

void map_page(struct pt_pool *pool, pte_t *root, u64 va, u64 pa, u64 prot, int level)
{
	pte_t *table = root;

	for (int l = 2; l > level; l--) {
		pte_t *pte = &table[vpn(va, l)];

		if (!(*pte & _PAGE_PRESENT))
			/* a pointer to the next level: V alone (no R/W/X, and no A/D/U,
			 * which are reserved in a non-leaf) */
			*pte = pfn_pte((uintptr_t)pt_alloc(pool) >> PAGE_SHIFT, _PAGE_PRESENT);
		else if (*pte & (_PAGE_READ | _PAGE_WRITE | _PAGE_EXEC))
			panic("map_page: a superpage is in the way");
		table = (pte_t *)(pte_pfn(*pte) << PAGE_SHIFT);
	}
	if (table[vpn(va, level)] & _PAGE_PRESENT)
		panic("map_page: already mapped");
	table[vpn(va, level)] = pfn_pte(pa >> PAGE_SHIFT, prot | _PAGE_PRESENT);
}

pte_t *pte_lookup(pte_t *root, u64 va)
{
	pte_t *table = root;

	for (int l = 2; l >= 0; l--) {
		pte_t *pte = &table[vpn(va, l)];

		if (!(*pte & _PAGE_PRESENT))
			return NULL;
		if (*pte & (_PAGE_READ | _PAGE_WRITE | _PAGE_EXEC))
			return pte;
		table = (pte_t *)(pte_pfn(*pte) << PAGE_SHIFT);
	}
	return NULL;
}

void paging_on(pte_t *root, unsigned asid)
{
	csr_write(satp, SATP_MODE_SV39 | (u64)asid << SATP_ASID_SHIFT | (uintptr_t)root >> PAGE_SHIFT);
	sfence_vma_all();
}
