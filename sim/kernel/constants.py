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


def PAGE_ALIGN(x: int) -> int:
    return (x + PAGE_SIZE - 1) & PAGE_MASK


# -- mmap / mprotect / msync ABI -------------------------------------------------------
PROT_NONE = 0x0
PROT_READ = 0x1
PROT_WRITE = 0x2
PROT_EXEC = 0x4
PROT_MASK = PROT_READ | PROT_WRITE | PROT_EXEC

MAP_SHARED = 0x01
MAP_PRIVATE = 0x02
MAP_SHARED_VALIDATE = 0x03
MAP_TYPE = 0x0F
MAP_FIXED = 0x10
MAP_ANONYMOUS = 0x20
MAP_LOCKED = 0x2000
MAP_POPULATE = 0x8000
MAP_FIXED_NOREPLACE = 0x100000
#: Flags MAP_SHARED_VALIDATE accepts (LEGACY_MAP_MASK and the ones modelled).
MAP_KNOWN = (MAP_SHARED | MAP_PRIVATE | MAP_TYPE | MAP_FIXED | MAP_ANONYMOUS | MAP_LOCKED
             | MAP_POPULATE | MAP_FIXED_NOREPLACE)

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
