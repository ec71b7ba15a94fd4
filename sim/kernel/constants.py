"""Constants of the user ABI (asm-generic/mman-common.h) and of mm internals."""

# -- pages and the address space -------------------------------------------------------
PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PAGE_MASK = ~(PAGE_SIZE - 1)
PTRS_PER_PTE = 512
PMD_SHIFT = 21                       # one PTE table covers 2 MiB
PGDIR_SHIFT = 30                     # one PMD table covers 1 GiB
PMD_SIZE = 1 << PMD_SHIFT
PMD_MASK = ~(PMD_SIZE - 1)
PGDIR_SIZE = 1 << PGDIR_SHIFT
#: Sv39 user space: [0, TASK_SIZE) (riscv's TASK_SIZE_64 for Sv39).
TASK_SIZE = 1 << 38
#: Lowest address mmap hands out without a hint (mmap_min_addr and a little more).
MMAP_MIN_ADDR = 0x10000
#: Where the bottom-up search for a free range starts.
TASK_UNMAPPED_BASE = 0x1000_0000
#: Largest file offset the model accepts (MAX_LFS_FILESIZE would be 2**63-1).
MAX_FILE_SIZE = 1 << 40


#: An unsigned long's values: the syscalls' arguments are taken modulo 2**64, as C has them.
ULONG_MAX = (1 << 64) - 1


def PAGE_ALIGN(x: int) -> int:
    return (x + PAGE_SIZE - 1) & PAGE_MASK


# -- mmap / mprotect / msync ABI -------------------------------------------------------
PROT_NONE = 0x0
PROT_READ = 0x1
PROT_WRITE = 0x2
PROT_EXEC = 0x4
PROT_SEM = 0x8
PROT_MASK = PROT_READ | PROT_WRITE | PROT_EXEC
PROT_GROWSDOWN = 0x01000000
PROT_GROWSUP = 0x02000000

MAP_SHARED = 0x01
MAP_PRIVATE = 0x02
MAP_SHARED_VALIDATE = 0x03
MAP_TYPE = 0x0F
MAP_FIXED = 0x10
MAP_ANONYMOUS = 0x20
MAP_GROWSDOWN = 0x0100
MAP_DENYWRITE = 0x0800
MAP_EXECUTABLE = 0x1000
MAP_LOCKED = 0x2000
MAP_NORESERVE = 0x4000
MAP_POPULATE = 0x8000
MAP_NONBLOCK = 0x10000
MAP_STACK = 0x20000
MAP_HUGETLB = 0x40000
MAP_SYNC = 0x80000
MAP_FIXED_NOREPLACE = 0x100000
MAP_UNINITIALIZED = 0x4000000
MAP_HUGE_SHIFT = 26
MAP_HUGE_2MB = 21 << MAP_HUGE_SHIFT
MAP_HUGE_1GB = 30 << MAP_HUGE_SHIFT
#: riscv has no MAP_32BIT (x86's is 0x40); include/linux/mman.h makes it 0.
MAP_32BIT = 0
#: include/linux/mman.h's LEGACY_MAP_MASK: the flags every file's mmap takes. do_mmap drops
#: the others silently under MAP_SHARED and refuses them (EOPNOTSUPP) under
#: MAP_SHARED_VALIDATE; MAP_SYNC and MAP_FIXED_NOREPLACE are not in it. The model acts on
#: MAP_LOCKED, MAP_POPULATE and MAP_NONBLOCK (and refuses MAP_GROWSDOWN and MAP_HUGETLB
#: where do_mmap and ksys_mmap_pgoff refuse them); the others change nothing here.
LEGACY_MAP_MASK = (MAP_SHARED | MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS | MAP_DENYWRITE
                   | MAP_EXECUTABLE | MAP_UNINITIALIZED | MAP_GROWSDOWN | MAP_LOCKED
                   | MAP_NORESERVE | MAP_POPULATE | MAP_NONBLOCK | MAP_STACK | MAP_HUGETLB
                   | MAP_32BIT | MAP_HUGE_2MB | MAP_HUGE_1GB)

MS_ASYNC = 1
MS_INVALIDATE = 2
MS_SYNC = 4

# -- vm_flags (include/linux/mm.h) ------------------------------------------------------
VM_NONE = 0x0
VM_READ = 0x1
VM_WRITE = 0x2
VM_EXEC = 0x4
VM_SHARED = 0x8
VM_MAYREAD = 0x10
VM_MAYWRITE = 0x20
VM_MAYEXEC = 0x40
VM_MAYSHARE = 0x80
VM_PFNMAP = 0x400
VM_LOCKED = 0x2000
VM_IO = 0x4000
VM_DONTCOPY = 0x20000
VM_SOFTDIRTY = 0x8000000
VM_UFFD_WP = 0x1000
VM_MIXEDMAP = 0x10000000
VM_ACCESS_FLAGS = VM_READ | VM_WRITE | VM_EXEC

# -- fault flags and results (include/linux/mm_types.h) ---------------------------------
FAULT_FLAG_WRITE = 0x01
FAULT_FLAG_INSTRUCTION = 0x100

VM_FAULT_OOM = 0x0001
VM_FAULT_SIGBUS = 0x0002
VM_FAULT_MAJOR = 0x0004
VM_FAULT_HWPOISON = 0x0010
VM_FAULT_SIGSEGV = 0x0040
VM_FAULT_NOPAGE = 0x0100
VM_FAULT_LOCKED = 0x0200
VM_FAULT_RETRY = 0x0400
VM_FAULT_ERROR = VM_FAULT_OOM | VM_FAULT_SIGBUS | VM_FAULT_SIGSEGV | VM_FAULT_HWPOISON

# -- writeback ----------------------------------------------------------------------------
WB_SYNC_NONE = 0
WB_SYNC_ALL = 1
