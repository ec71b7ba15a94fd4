"""realcheck's host half: programs run on the host's own Linux kernel by the C executor
(sim/realcheck/executor.c), with Linux's answers written in, each beside the mm/ function
that decides it (checked on Linux 6.18, x86_64, ext4 with 4 KiB blocks); the fault counts'
lack of noise; bad input; the strict reading of the executor's output.

These tests need Linux and a C compiler: elsewhere they fail, saying so, rather than skip.
"""

import errno
import os
import platform
import signal
import textwrap

import pytest

from mkclean.sim.realcheck import host
from mkclean.sim.realcheck.host import FS_NAMES, HostError, run_on_host

A = 0x20_0000_0000          # the arena the kernel model uses
P = 4096
PROT_READ, PROT_WRITE = 1, 2
RW = PROT_READ | PROT_WRITE
MAP_SHARED, MAP_PRIVATE, MAP_SHARED_VALIDATE = 1, 2, 3
MAP_ANONYMOUS, MAP_FIXED_NOREPLACE = 0x20, 0x100000
MS_SYNC = 4
SIGBUS, SIGSEGV = int(signal.SIGBUS), int(signal.SIGSEGV)


def run(program: str):
    return run_on_host(textwrap.dedent(program))


def test_the_host_says_who_it_is():
    r = run("file 0 4096\nload 0x2000000000\n")
    assert r.kernel == platform.release()
    assert r.machine == platform.machine()
    assert r.page_size == os.sysconf("SC_PAGESIZE")
    assert r.block_size > 0 and r.fs_type > 0 and isinstance(FS_NAMES.get(r.fs_type, ""), str)
    assert r.results == [("sig", SIGSEGV, 0)]
    assert r.files == {0: bytes(4096)}


def test_shared_validate_anonymous_is_einval():
    # do_mmap: an anonymous mapping's switch on flags & MAP_TYPE has MAP_SHARED,
    # MAP_DROPPABLE and MAP_PRIVATE, no MAP_SHARED_VALIDATE: default -> -EINVAL.
    r = run(f"mmap {A:#x} {P} {RW} {MAP_SHARED_VALIDATE | MAP_ANONYMOUS:#x} -1 0\n")
    assert r.results == [("err", errno.EINVAL, None)]


def test_shared_validate_with_fixed_noreplace_is_eopnotsupp():
    # do_mmap: for a file, MAP_SHARED_VALIDATE rejects any flag outside LEGACY_MAP_MASK |
    # f_op->mmap_supported_flags (ext4: MAP_SYNC) with -EOPNOTSUPP; MAP_FIXED_NOREPLACE is
    # not legacy. (Its own check, -EEXIST on an occupied range, comes first: a free range.)
    flags = MAP_SHARED_VALIDATE | MAP_FIXED_NOREPLACE
    r = run(f"""\
        file 0 {P}
        mmap {A:#x} {P} {RW} {flags:#x} 0 0
        mmap {A:#x} {P} {RW} {MAP_SHARED_VALIDATE:#x} 0 0
        """)
    assert r.results == [("err", errno.EOPNOTSUPP, None), ("ok", A, None)]


def test_write_notify_on_a_shared_file_mapping():
    r = run(f"""\
        file 0 {4 * P}
        mmap {A:#x} {4 * P} {RW} {MAP_SHARED} 0 0
        load {A:#x}
        store {A:#x} 5
        store {A:#x} 6
        msync {A:#x} {P} {MS_SYNC}
        store {A:#x} 7
        load {A:#x}
        """)
    assert r.results == [
        ("ok", A, None),
        # filemap_fault: a page of a hole, read into the page cache as zeros, one fault;
        # do_read_fault maps it read-only (vma_wants_writenotify: a shared writable file
        # mapping's vm_page_prot has no write bit).
        ("ok", 0, 1),
        # do_wp_page -> wp_page_shared -> do_page_mkwrite (ext4_page_mkwrite), then the
        # page is dirty and its pte writable: one fault, then none.
        ("ok", None, 1),
        ("ok", None, 0),
        ("ok", 0, None),
        # msync(MS_SYNC) writes the page back; folio_mkclean (page_mkclean_one) write-
        # protected and cleaned its pte, so the next store is a write-notify fault again.
        ("ok", None, 1),
        ("ok", 7, 0),
    ]
    assert r.files[0][0] == 7


def test_beyond_eof_is_sigbus_and_a_hole_is_sigsegv():
    r = run(f"""\
        file 0 {P}
        mmap {A:#x} {2 * P} {PROT_READ} {MAP_SHARED} 0 0
        load {A + P:#x}
        load {A + 0x100000:#x}
        load {A:#x}
        """)
    assert r.results == [
        ("ok", A, None),
        # filemap_fault: index >= DIV_ROUND_UP(i_size, PAGE_SIZE) -> VM_FAULT_SIGBUS, a
        # VM_FAULT_ERROR that mm_account_fault does not count.
        ("sig", SIGBUS, 0),
        # lock_mm_and_find_vma finds no vma: bad_area -> SIGSEGV, handle_mm_fault never runs.
        ("sig", SIGSEGV, 0),
        ("ok", 0, 1),
    ]


def test_fork_child_runs_in_order_and_cow():
    anon = A + 0x100000
    r = run(f"""\
        file 0 {2 * P}
        mmap {A:#x} {2 * P} {RW} {MAP_SHARED} 0 0
        mmap {anon:#x} {P} {RW} {MAP_PRIVATE | MAP_ANONYMOUS:#x} -1 0
        store {anon:#x} 0x11
        load {A:#x}
        fork
          load {A:#x}
          load {A:#x}
          store {anon:#x} 0x22
          load {anon:#x}
        exit
        load {anon:#x}
        load {A:#x}
        store {anon:#x} 0x33
        """)
    assert r.results == [
        ("ok", A, None),
        ("ok", anon, None),
        ("ok", None, 1),        # do_anonymous_page
        ("ok", 0, 1),           # filemap_fault
        ("ok", 0, None),        # fork
        # copy_page_range -> vma_needs_copy: a file mapping without an anon_vma gets no
        # ptes at fork, so the child faults on the parent's present page once.
        ("ok", 0, 1),
        ("ok", 0, 0),
        # copy_present_pte write-protected the anonymous page in both; the child's store:
        # do_wp_page -> wp_page_copy, one fault; its copy reads back its byte.
        ("ok", None, 1),
        ("ok", 0x22, 0),
        ("ok", 0, None),        # the child's exit
        # The parent, after the child has gone: its own page, its own byte, no fault.
        ("ok", 0x11, 0),
        ("ok", 0, 0),
        # Still write-protected from the fork: do_wp_page -> wp_can_reuse_anon_folio
        # reuses it (the child's mapping is gone), but it is a fault.
        ("ok", None, 1),
    ]


def test_nested_forks_keep_program_order():
    r = run(f"""\
        mmap {A:#x} {P} {RW} {MAP_PRIVATE | MAP_ANONYMOUS:#x} -1 0
        fork
          store {A:#x} 1
          fork
            load {A:#x}
          exit
          load {A:#x}
        exit
        load {A:#x}
        """)
    # do_anonymous_page in the child; the grandchild's pte was copied (the vma has an
    # anon_vma): no fault; the parent's page was never written: the zero page, a fault.
    assert r.results == [("ok", A, None), ("ok", 0, None), ("ok", None, 1), ("ok", 0, None),
                         ("ok", 1, 0), ("ok", 0, None), ("ok", 1, 0), ("ok", 0, None),
                         ("ok", 0, 1)]


def test_mprotect_over_a_hole():
    r = run(f"""\
        mmap {A:#x} {P} {RW} {MAP_PRIVATE | MAP_ANONYMOUS:#x} -1 0
        mmap {A + 2 * P:#x} {P} {RW} {MAP_PRIVATE | MAP_ANONYMOUS:#x} -1 0
        store {A:#x} 1
        mprotect {A:#x} {3 * P} {PROT_READ}
        store {A:#x} 2
        load {A:#x}
        store {A + 2 * P:#x} 3
        """)
    assert r.results == [
        ("ok", A, None),
        ("ok", A + 2 * P, None),
        ("ok", None, 1),
        # do_mprotect_pkey: the vma walk applies mprotect_fixup to each vma in turn and
        # stops at the first gap with -ENOMEM; what it did before the gap stays done.
        ("err", errno.ENOMEM, None),
        ("sig", SIGSEGV, 0),    # access_error: a write to a read-only vma, bad area
        ("ok", 1, 0),
        ("ok", None, 1),        # after the gap: untouched, still writable
    ]


def test_final_file_contents():
    r = run(f"""\
        file 0 {2 * P}
        file 3 100
        mmap {A:#x} {2 * P} {RW} {MAP_SHARED} 0 0
        mmap {A + 0x100000:#x} {P} {RW} {MAP_PRIVATE} 0 0
        store {A + 5:#x} 0xab
        pwrite 0 {P + 10} 3 0x41
        store {A + 0x100000 + 6:#x} 0xcd
        pwrite 3 98 4 0x42
        ftruncate 0 {P + 12}
        """)
    assert [s for s, _, _ in r.results] == ["ok"] * 7
    assert r.results[5] == ("ok", 4, None)
    expected = bytearray(P + 12)
    expected[5] = 0xAB                      # a shared mapping's store is the file's
    expected[P + 10:P + 12] = b"AA"         # the pwrite, cut by the ftruncate
    # The private mapping's store went to its COW copy (wp_page_copy), not the file.
    assert r.files == {0: bytes(expected), 3: bytes(98) + b"BBBB"}


def test_fault_around_maps_cached_neighbours():
    # do_read_fault -> do_fault_around -> filemap_map_pages maps the cached, uptodate
    # pages of the fault_around_bytes window (64 KiB) with the faulting one; MADV_RANDOM
    # stops readahead, not fault-around.
    program = f"file 0 {16 * P}\n"
    program += "".join(f"pwrite 0 {i * P} 1 {i + 1}\n" for i in range(16))
    program += f"mmap {A:#x} {16 * P} {PROT_READ} {MAP_SHARED} 0 0\n"
    program += "".join(f"load {A + i * P:#x}\n" for i in range(16))
    r = run_on_host(program)
    assert r.results[17:] == [("ok", 1, 1)] + [("ok", i + 1, 0) for i in range(1, 16)]


def test_cold_pages_fault_one_by_one():
    # filemap_fault -> do_sync_mmap_readahead returns at once for VM_RAND_READ (the
    # executor's madvise(MADV_RANDOM)): only the faulting page is read, so fault-around
    # finds no cached neighbour and every page of a cold file is a fault of its own.
    program = f"file 0 {8 * P}\nmmap {A:#x} {8 * P} {PROT_READ} {MAP_SHARED} 0 0\n"
    program += "".join(f"load {A + i * P:#x}\n" for i in range(8))
    assert run_on_host(program).results[1:] == [("ok", 0, 1)] * 8


def test_no_noise_in_the_fault_counts():
    loads = "".join(f"load {A:#x}\n" for _ in range(50))
    r = run(f"mmap {A:#x} {P} {RW} {MAP_PRIVATE | MAP_ANONYMOUS:#x} -1 0\n"
            f"store {A:#x} 9\n{loads}fork\n{loads}exit\n{loads}")
    assert r.results[1] == ("ok", None, 1)
    accesses = [x for x in r.results[2:] if x[2] is not None]
    assert len(accesses) == 150
    assert set(accesses) == {("ok", 9, 0)}


def test_no_noise_in_a_signal_after_fork():
    # After a fork every writable page of the executor is copy-on-write and a child's
    # text is unmapped: the first signal in the child, and in the parent after it, must
    # still count 0 (the signal frame, the handler, siglongjmp's writes to the thread's
    # own block: all made present before the window).
    bad = f"load {A + P:#x}\nload {A + 0x100000:#x}\n"
    r = run(f"file 0 {P}\nmmap {A:#x} {2 * P} {PROT_READ} {MAP_SHARED} 0 0\n"
            f"fork\n{bad}fork\n{bad}exit\n{bad}exit\n{bad}")
    signals = [x for x in r.results if x[0] == "sig"]
    assert signals == [("sig", SIGBUS, 0), ("sig", SIGSEGV, 0)] * 4


@pytest.mark.parametrize("program, message", [
    ("file 0 4096\nload 0x2000000000\n\n# note\nfrob 1\n", "line 5: unknown op 'frob'"),
    ("load 1 2\n", "line 1: 'load' takes 1 fields, got 2"),
    ("pwrite 1 0 1 1\n", "line 1: file 1 is not declared"),
    ("fork\nexit\nexit\n", "line 3: 'exit' without a 'fork'"),
    ("fork\n" * 9, "line 9: forks nested more than 8 deep"),
    ("load 0\n" * 4097, "line 4097: more than 4096 ops"),
])
def test_bad_input_is_a_value_error_naming_the_line(program, message):
    with pytest.raises(ValueError, match=message):
        run_on_host(program)


def test_output_is_read_strictly():
    head = "linux 6.18 x86_64 pagesize 4096 blocksize 4096 fstype 0xef53\n"
    ops = ["load", "mmap"]
    info, results = host._parse(head + "0 sig 7 0\n1 ok 0x2000000000\nend\n", ops)
    assert info["fs_type"] == 0xEF53 and results == [("sig", 7, 0), ("ok", A, None)]
    for bad, what in [
        (head + "0 sig 7 0\n1 ok 0x2000000000\n", "no 'end'"),
        (head + "0 sig 7 0\nend\n", "1 result lines for a program of 2"),
        (head + "1 sig 7 0\n0 ok 0x2000000000\nend\n", "does not start with its index"),
        (head + "0 ok 7\n1 ok 0x2000000000\nend\n", "2 fields after the index, not 3"),
        (head + "0 err 7 0\n1 ok 0x2000000000\nend\n", "status 'err'"),
        (head + "0 sig 7 0\n1 ok 12\nend\n", "not 0x-hex"),
        ("linux 6.18\n0 sig 7 0\n1 ok 0x2000000000\nend\n", "header line"),
    ]:
        with pytest.raises(HostError, match=what):
            host._parse(bad, ops)


def test_not_linux_says_so(monkeypatch):
    monkeypatch.setattr(host.platform, "system", lambda: "Darwin")
    with pytest.raises(HostError, match="realcheck needs Linux: this host is Darwin"):
        run_on_host("load 0\n")
