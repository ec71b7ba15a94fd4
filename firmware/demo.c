/*
 * The demo: Linux's dirty tracking of a shared file mapping, for real, on QEMU's MMU.
 *
 * M-mode (main) delegates page faults and user ecalls to S and drops to the S-mode
 * kernel (start_kernel). The kernel maps a 16-page file shared and writable, its
 * clean pages read-only, and runs a user program that stores to random pages over
 * several rounds, calling msync after each. A store to a clean page faults; the
 * kernel does what Linux's do_wp_page does for a shared page (make the PTE writable
 * and dirty, set_page_dirty, flush). msync writes the dirty pages back the way
 * write_cache_pages does: page_mkclean write-protects and cleans every PTE of the
 * page and flushes it by address and ASID, then the page is copied to the "disk".
 * The user records each value it stores in a shadow area of its own, so the kernel
 * can check that the disk ends up with every last write (none lost) and that each
 * round faulted exactly once per page written (a store after page_mkclean faults).
 * The functions are named after the Linux functions they stand for.
 */
#include "common.h"

#define NR_PAGES	16	/* a power of two: the user program masks with it */
#define NR_ROUNDS	8
#define NR_STORES	16	/* per round */

/* User space: three VMAs in the second gigabyte. The kernel's mappings are the
 * first and third gigabytes, identity and global (MMIO, then RAM), as a Linux
 * kernel's are in every page table. */
#define USER_TEXT	0x40000000UL
#define FILE_START	0x40100000UL
#define SHADOW_START	0x40200000UL
#define USER_ASID	1

/* include/linux/mm.h */
#define VM_READ		0x1
#define VM_WRITE	0x2
#define VM_EXEC		0x4
#define VM_SHARED	0x8
#define FAULT_FLAG_WRITE 0x1
#define PG_dirty	4

#define SYS_exit	93
#define SYS_msync	227
#define MS_SYNC		4

struct pt_regs {
	u64 epc;
	u64 ra, sp, gp, tp, t0, t1, t2, s0, s1, a0, a1, a2, a3, a4, a5, a6, a7;
	u64 s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, t3, t4, t5, t6;
};

struct page {
	unsigned long flags;
	unsigned long index;	/* its page number in the file */
};

struct mm_struct;

struct vm_area_struct {
	u64 vm_start, vm_end;
	u64 vm_flags;
	u64 vm_page_prot;	/* the PTE bits of a page when it is mapped */
	u64 vm_pgoff;
	struct mm_struct *vm_mm;
	struct address_space *vm_file;
};

/* One file: its page cache (the pages), and where it is mapped. Linux keeps the
 * mappings in an interval tree (i_mmap) and the pages in an xarray tagged dirty;
 * this file has one mapping and its pages in an array. */
struct address_space {
	struct page pages[NR_PAGES];
	struct vm_area_struct *i_mmap;
};

struct mm_struct {
	pte_t *pgd;
	unsigned asid;
	struct vm_area_struct *mmap[3];
};

struct vm_fault {
	struct vm_area_struct *vma;
	u64 address;
	unsigned flags;
	pte_t *pte;
	pte_t orig_pte;
};

extern char __user_start[], __user_end[], user_main[];
extern void handle_exception(void);
noreturn void ret_to_user(struct pt_regs *regs);

/* The file's pages in memory, the "disk" they are written back to, and the user's
 * record of what it stored (an anonymous mapping, at the same offsets as the file). */
static u8 page_cache[NR_PAGES][PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));
static u8 disk[NR_PAGES][PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));
static u8 shadow[NR_PAGES][PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));
static u8 pt_space[8 * PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));
static u8 kernel_stack[16384] __attribute__((aligned(16)));

static struct pt_pool pt_pool;
static struct mm_struct init_mm = { .asid = USER_ASID };
static struct address_space file;
static struct vm_area_struct text_vma, file_vma, shadow_vma;

struct counts {
	u64 faults, writebacks, mkclean, sfence;
};
static struct counts total, this_round;	/* this_round: since the last msync */
static unsigned round_nr = 1;
static u64 lost;		/* words missing from the disk after an msync, summed */
static int failed;

/* -- PTEs (arch/riscv/include/asm/pgtable.h) -------------------------------------- */

static inline int pte_present(pte_t pte) { return pte & _PAGE_PRESENT; }
static inline int pte_write(pte_t pte) { return pte & _PAGE_WRITE; }
static inline int pte_dirty(pte_t pte) { return pte & _PAGE_DIRTY; }
static inline pte_t pte_mkwrite(pte_t pte) { return pte | _PAGE_WRITE; }
static inline pte_t pte_wrprotect(pte_t pte) { return pte & ~_PAGE_WRITE; }
static inline pte_t pte_mkdirty(pte_t pte) { return pte | _PAGE_DIRTY; }
static inline pte_t pte_mkclean(pte_t pte) { return pte & ~_PAGE_DIRTY; }
static inline pte_t pte_mkyoung(pte_t pte) { return pte | _PAGE_ACCESSED; }

static inline void set_pte_at(pte_t *ptep, pte_t pte)
{
	*(volatile pte_t *)ptep = pte;
}

/* An atomic swap with 0, as riscv's: the hardware may be setting A or D meanwhile. */
static inline pte_t ptep_get_and_clear(pte_t *ptep)
{
	pte_t old;

	__asm__ volatile("amoswap.d %0, zero, (%1)" : "=r"(old) : "r"(ptep) : "memory");
	return old;
}

static inline pte_t maybe_mkwrite(pte_t pte, struct vm_area_struct *vma)
{
	return vma->vm_flags & VM_WRITE ? pte_mkwrite(pte) : pte;
}

/* -- TLB (arch/riscv/mm/tlbflush.c) ------------------------------------------------- */

/* sfence.vma va, x0: every address space's translation of va. */
static void local_flush_tlb_page(u64 addr)
{
	sfence_vma_addr(addr);
	this_round.sfence++;
}

/* sfence.vma va, asid: this mm's translation of va (global mappings stay). */
static void flush_tlb_page(struct vm_area_struct *vma, u64 addr)
{
	sfence_vma_addr_asid(addr, vma->vm_mm->asid);
	this_round.sfence++;
}

/* RISC-V may cache a PTE that faulted: after any change, flush the address eagerly
 * (riscv's update_mmu_cache_range) rather than take a spurious fault later. */
static void update_mmu_cache(struct vm_area_struct *vma, u64 addr, pte_t *ptep)
{
	(void)vma;
	(void)ptep;
	local_flush_tlb_page(addr);
}

/* riscv's: store when different, and always report a change, so that
 * update_mmu_cache runs for a spurious fault too. */
static int ptep_set_access_flags(pte_t *ptep, pte_t entry)
{
	if (*ptep != entry)
		set_pte_at(ptep, entry);
	return 1;
}

/* mm/pgtable-generic.c */
static pte_t ptep_clear_flush(struct vm_area_struct *vma, u64 addr, pte_t *ptep)
{
	pte_t pte = ptep_get_and_clear(ptep);

	if (pte_present(pte))		/* pte_accessible() */
		flush_tlb_page(vma, addr);
	return pte;
}

/* -- pages --------------------------------------------------------------------------- */

static inline void *page_address(struct page *page)
{
	return page_cache[page - file.pages];
}

static inline int TestSetPageDirty(struct page *page)
{
	int old = page->flags >> PG_dirty & 1;

	page->flags |= 1UL << PG_dirty;
	return old;
}

static inline int TestClearPageDirty(struct page *page)
{
	int old = page->flags >> PG_dirty & 1;

	page->flags &= ~(1UL << PG_dirty);
	return old;
}

/* Mark the page dirty in the page cache (Linux also tags it in the mapping's xarray
 * and accounts it); true when it was clean. */
static int set_page_dirty(struct page *page)
{
	return !TestSetPageDirty(page);
}

static struct page *vm_normal_page(pte_t pte)
{
	u64 pa = pte_pfn(pte) << PAGE_SHIFT;

	if (pa < (uintptr_t)page_cache || pa >= (uintptr_t)page_cache + sizeof(page_cache))
		panic("vm_normal_page: not a page of the file");
	return &file.pages[(pa - (uintptr_t)page_cache) / PAGE_SIZE];
}

static u64 vma_address(struct page *page, struct vm_area_struct *vma)
{
	return vma->vm_start + ((page->index - vma->vm_pgoff) << PAGE_SHIFT);
}

/* -- the write fault (mm/memory.c) ------------------------------------------------------ */

static void wp_page_reuse(struct vm_fault *vmf)
{
	pte_t entry = pte_mkyoung(vmf->orig_pte);

	entry = maybe_mkwrite(pte_mkdirty(entry), vmf->vma);
	if (ptep_set_access_flags(vmf->pte, entry))
		update_mmu_cache(vmf->vma, vmf->address, vmf->pte);
}

static void fault_dirty_shared_page(struct vm_fault *vmf, struct page *page)
{
	(void)vmf;
	set_page_dirty(page);
}

/* The PTE is made writable (and dirty, so that the hardware need not) before the
 * page is marked dirty: writeback clears the page's flag only after cleaning its
 * PTEs, so either order of a racing writeback leaves the page dirty somewhere. */
static void wp_page_shared(struct vm_fault *vmf, struct page *page)
{
	wp_page_reuse(vmf);
	fault_dirty_shared_page(vmf, page);
}

/* A store to a present page whose PTE does not allow it. */
static void do_wp_page(struct vm_fault *vmf)
{
	struct page *page = vm_normal_page(vmf->orig_pte);

	if ((vmf->vma->vm_flags & (VM_WRITE | VM_SHARED)) == (VM_WRITE | VM_SHARED)) {
		wp_page_shared(vmf, page);
		return;
	}
	panic("do_wp_page: copy on write is not part of this demo");
}

static void handle_pte_fault(struct vm_fault *vmf)
{
	pte_t entry;

	vmf->pte = pte_lookup(init_mm.pgd, vmf->address);
	if (!vmf->pte || !pte_present(*vmf->pte))
		panic("handle_pte_fault: every page of this demo is mapped from the start");
	vmf->orig_pte = entry = *vmf->pte;
	if (vmf->flags & FAULT_FLAG_WRITE) {
		if (!pte_write(entry)) {
			do_wp_page(vmf);
			return;
		}
		entry = pte_mkdirty(entry);
	}
	/* A spurious fault: the PTE allowed the access already. */
	entry = pte_mkyoung(entry);
	if (ptep_set_access_flags(vmf->pte, entry))
		update_mmu_cache(vmf->vma, vmf->address, vmf->pte);
}

static struct vm_area_struct *find_vma(struct mm_struct *mm, u64 addr)
{
	for (unsigned i = 0; i < sizeof(mm->mmap) / sizeof(mm->mmap[0]); i++)
		if (addr >= mm->mmap[i]->vm_start && addr < mm->mmap[i]->vm_end)
			return mm->mmap[i];
	return NULL;
}

/* arch/riscv/mm/fault.c */
static void do_page_fault(u64 cause)
{
	u64 addr = csr_read(stval);
	struct vm_area_struct *vma = find_vma(&init_mm, addr);
	u64 need = cause == EXC_STORE_PAGE ? VM_WRITE : cause == EXC_INST_PAGE ? VM_EXEC : VM_READ;
	struct vm_fault vmf = { .vma = vma, .address = addr & ~(PAGE_SIZE - 1),
				.flags = cause == EXC_STORE_PAGE ? FAULT_FLAG_WRITE : 0 };

	if (!vma || !(vma->vm_flags & need)) {
		puts("segmentation fault at ");
		put_hex(addr);
		panic("bad_area");
	}
	this_round.faults++;
	handle_pte_fault(&vmf);
}

/* -- writeback (mm/rmap.c, mm/page-writeback.c) ------------------------------------------ */

/* Write-protect and clean one PTE of the page; flush it before it is rewritten, so
 * that no store can go on through a writable translation the TLB still holds. */
static int page_mkclean_one(struct page *page, struct vm_area_struct *vma, u64 address)
{
	pte_t *ptep = pte_lookup(vma->vm_mm->pgd, address);
	pte_t entry;

	(void)page;
	if (!ptep || !pte_present(*ptep))
		return 0;
	if (!pte_dirty(*ptep) && !pte_write(*ptep))
		return 0;
	entry = ptep_clear_flush(vma, address, ptep);
	entry = pte_wrprotect(entry);
	entry = pte_mkclean(entry);
	set_pte_at(ptep, entry);
	return 1;
}

/* Every PTE mapping the page (the rmap walk over the file's mappings), cleaned;
 * how many were dirty or writable. */
static int page_mkclean(struct page *page)
{
	struct vm_area_struct *vma = file.i_mmap;
	int cleaned = page_mkclean_one(page, vma, vma_address(page, vma));

	this_round.mkclean += cleaned;
	return cleaned;
}

/* A PTE's dirty bit moves into the page's before the page's is taken: a store
 * between the two is in the page flag, and in the data written next. */
static int clear_page_dirty_for_io(struct page *page)
{
	if (page_mkclean(page))
		set_page_dirty(page);
	return TestClearPageDirty(page);
}

static void writepage(struct page *page)
{
	memcpy(disk[page->index], page_address(page), PAGE_SIZE);
	this_round.writebacks++;
}

static void write_cache_pages(struct address_space *mapping)
{
	for (unsigned i = 0; i < NR_PAGES; i++) {
		struct page *page = &mapping->pages[i];

		if (!(page->flags & 1UL << PG_dirty))
			continue;
		if (clear_page_dirty_for_io(page))
			writepage(page);
	}
}

/* msync(MS_SYNC) of a shared file mapping: the range's file written back and waited
 * for (vfs_fsync_range, filemap_write_and_wait_range). This file is the whole range. */
static long ksys_msync(u64 start, u64 len, int flags)
{
	struct vm_area_struct *vma = find_vma(&init_mm, start);

	if (!vma || !vma->vm_file || !(vma->vm_flags & VM_SHARED) || !(flags & MS_SYNC)
	    || start + len > vma->vm_end)
		return -22;		/* -EINVAL: not what this demo's user does */
	write_cache_pages(vma->vm_file);
	return 0;
}

/* -- the demo's checks and report ---------------------------------------------------------- */

static void put_kv(const char *key, u64 v)
{
	puts(key);
	put_dec(v);
}

/* Pages the user stored to since the last writeback: those whose shadow differs
 * from the disk (every value stored is new, so a store always makes a difference). */
static u64 pages_written(void)
{
	u64 n = 0;

	for (unsigned i = 0; i < NR_PAGES; i++)
		n += memcmp(shadow[i], disk[i], PAGE_SIZE) != 0;
	return n;
}

/* Words of the disk that differ from what the user last stored there. */
static u64 words_lost(void)
{
	u64 n = 0;

	for (unsigned i = 0; i < NR_PAGES; i++)
		for (unsigned w = 0; w < PAGE_SIZE / 8; w++)
			n += ((u64 *)disk[i])[w] != ((u64 *)shadow[i])[w];
	return n;
}

static long sys_msync(u64 start, u64 len, int flags)
{
	u64 written = pages_written();
	long ret = ksys_msync(start, len, flags);

	/* When msync(MS_SYNC) returns, the disk holds every store made before it. */
	lost += words_lost();
	/* One fault per page written (a store after page_mkclean faults again), and
	 * one page cleaned and written back per page dirtied. */
	if (ret || this_round.faults != written || this_round.writebacks != written
	    || this_round.mkclean != written)
		failed = 1;
	put_kv("round ", round_nr);
	put_kv(": stores=", NR_STORES);
	put_kv(" faults=", this_round.faults);
	put_kv(" writeback=", this_round.writebacks);
	putchar('\n');
	total.faults += this_round.faults;
	total.writebacks += this_round.writebacks;
	total.mkclean += this_round.mkclean;
	total.sfence += this_round.sfence;
	this_round = (struct counts){ 0 };
	round_nr++;
	return ret;
}

static noreturn void sys_exit(void)
{
	if (lost || round_nr != NR_ROUNDS + 1 || this_round.faults)
		failed = 1;
	put_kv("mkclean-demo: faults=", total.faults);
	put_kv(" writebacks=", total.writebacks);
	put_kv(" mkclean=", total.mkclean);
	put_kv(" sfence=", total.sfence);
	put_kv(" lost=", lost);
	puts(failed ? " FAIL\n" : " PASS\n");
	poweroff(failed ? 1 : 0);
}

/* -- traps ----------------------------------------------------------------------------------- */

void do_trap(struct pt_regs *regs)
{
	u64 cause = csr_read(scause);

	switch (cause) {
	case EXC_INST_PAGE:
	case EXC_LOAD_PAGE:
	case EXC_STORE_PAGE:
		do_page_fault(cause);	/* then the access again */
		return;
	case EXC_ECALL_U:
		regs->epc += 4;
		if (regs->a7 == SYS_msync)
			regs->a0 = sys_msync(regs->a0, regs->a1, regs->a2);
		else if (regs->a7 == SYS_exit)
			sys_exit();
		else
			regs->a0 = -38;		/* -ENOSYS */
		return;
	}
	puts("user trap: scause=");
	put_hex(cause);
	puts(" sepc=");
	put_hex(regs->epc);
	puts(" stval=");
	put_hex(csr_read(stval));
	panic("unexpected");
}

void kernel_trap(void)
{
	puts("kernel trap: scause=");
	put_hex(csr_read(scause));
	puts(" sepc=");
	put_hex(csr_read(sepc));
	puts(" stval=");
	put_hex(csr_read(stval));
	panic("the kernel must not trap");
}

/* -- set-up ------------------------------------------------------------------------------------ */

/* The user's registers while the kernel runs sit at the top of the kernel stack,
 * where handle_exception saves them; the kernel's own frames are below. */
static struct pt_regs *user_regs(void)
{
	return (struct pt_regs *)(kernel_stack + sizeof(kernel_stack)) - 1;
}

static void map_vma(struct vm_area_struct *vma, uintptr_t pa)
{
	for (u64 va = vma->vm_start; va < vma->vm_end; va += PAGE_SIZE, pa += PAGE_SIZE)
		map_page(&pt_pool, init_mm.pgd, va, pa, vma->vm_page_prot, 0);
}

static noreturn void start_kernel(void)
{
	struct pt_regs *regs = user_regs();

	csr_write(stvec, handle_exception);
	csr_write(sscratch, 0);
	pt_pool_init(&pt_pool, pt_space, sizeof(pt_space));
	init_mm.pgd = pt_alloc(&pt_pool);
	map_page(&pt_pool, init_mm.pgd, 0, 0,
		 _PAGE_READ | _PAGE_WRITE | _PAGE_GLOBAL | _PAGE_ACCESSED | _PAGE_DIRTY, 2);
	map_page(&pt_pool, init_mm.pgd, RAM_BASE, RAM_BASE,
		 _PAGE_READ | _PAGE_WRITE | _PAGE_EXEC | _PAGE_GLOBAL | _PAGE_ACCESSED | _PAGE_DIRTY, 2);

	text_vma = (struct vm_area_struct){
		.vm_start = USER_TEXT, .vm_end = USER_TEXT + (__user_end - __user_start),
		.vm_flags = VM_READ | VM_EXEC, .vm_mm = &init_mm,
		.vm_page_prot = _PAGE_USER | _PAGE_READ | _PAGE_EXEC | _PAGE_ACCESSED };
	/* Shared and writable, but mapped read-only while clean (a mapping that wants
	 * write notification): the first store to each page faults. Accessed from the
	 * start, so that the hardware's A update plays no part. */
	file_vma = (struct vm_area_struct){
		.vm_start = FILE_START, .vm_end = FILE_START + NR_PAGES * PAGE_SIZE,
		.vm_flags = VM_READ | VM_WRITE | VM_SHARED, .vm_mm = &init_mm, .vm_file = &file,
		.vm_page_prot = _PAGE_USER | _PAGE_READ | _PAGE_ACCESSED };
	/* Private, anonymous and already written: never faults. */
	shadow_vma = (struct vm_area_struct){
		.vm_start = SHADOW_START, .vm_end = SHADOW_START + NR_PAGES * PAGE_SIZE,
		.vm_flags = VM_READ | VM_WRITE, .vm_mm = &init_mm,
		.vm_page_prot = _PAGE_USER | _PAGE_READ | _PAGE_WRITE | _PAGE_ACCESSED | _PAGE_DIRTY };
	init_mm.mmap[0] = &text_vma;
	init_mm.mmap[1] = &file_vma;
	init_mm.mmap[2] = &shadow_vma;
	file.i_mmap = &file_vma;
	for (unsigned i = 0; i < NR_PAGES; i++)
		file.pages[i].index = i;
	map_vma(&text_vma, (uintptr_t)__user_start);
	map_vma(&file_vma, (uintptr_t)page_cache);
	map_vma(&shadow_vma, (uintptr_t)shadow);
	paging_on(init_mm.pgd, init_mm.asid);

	put_kv("mkclean-demo seed=", boot.seed);
	put_kv(" pages=", NR_PAGES);
	put_kv(" rounds=", NR_ROUNDS);
	put_kv(" stores=", NR_STORES);
	putchar('\n');

	memset(regs, 0, sizeof(*regs));
	regs->epc = USER_TEXT + (user_main - __user_start);
	regs->a0 = FILE_START;
	regs->a1 = SHADOW_START;
	regs->a2 = boot.seed;
	regs->a3 = NR_ROUNDS;
	regs->a4 = NR_STORES;
	regs->a5 = NR_PAGES;
	csr_clear(sstatus, MSTATUS_SPP | MSTATUS_SUM);	/* sret to U; no user access from S */
	ret_to_user(regs);
}

/* M-mode: the page faults and user ecalls go to the S kernel, which reaches all of
 * memory (PMP entry 0 over everything; QEMU lets S and U reach nothing without one). */
noreturn void main(void)
{
	pmp_allow_all();
	delegate_exceptions(1UL << EXC_ECALL_U | 1UL << EXC_INST_PAGE | 1UL << EXC_LOAD_PAGE
			    | 1UL << EXC_STORE_PAGE);
	enter_smode(start_kernel, (uintptr_t)user_regs());
}
