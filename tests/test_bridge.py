"""The command bridge (hdl/bridge.py) in the board's core (hdl/boards/top.py: bridge, MMU,
block RAM) under Amaranth's simulator, driven by whole frames through its byte streams,
and once through the UART pins of the board top. Responses are checked byte for byte
against the encoder below, written from docs/bridge-protocol.md (not the host package).
"""

import binascii
import struct

from amaranth.hdl import Module
from amaranth.lib import data
from amaranth.sim import Simulator

from mkclean.hdl.boards.top import BoardCore, BoardTop
from mkclean.hdl.pte import TlbEntry
from mkclean.hdl.uart import UartRx, UartTx

PHYS = 32 << 10
TLB = 4
TIMEOUT = 300          # cycles: the bridge's inter-byte timeout in these tests
GAP = 3                # cycles between two request bytes

VERSION, RESET, READ, WRITE, CAS, CSR, SFENCE, ACCESS, COUNTERS, TLB_CMD = range(1, 11)
OK, BAD_CMD, BAD_ARG = 0, 1, 2
LOAD, STORE, FETCH, AMO = range(4)

# Sv39 PTE bits
V, R, W, X, U, G, A, D = (1 << i for i in range(8))


# ---- the protocol, from the document -------------------------------------------------

def frame(seq, cmd, body=b""):
    inner = struct.pack("<HBB", len(body), seq, cmd) + body
    return b"\xa5\x5a" + inner + struct.pack("<H", binascii.crc_hqx(inner, 0))


def item(vaddr, kind, size, payload=b""):
    return struct.pack("<QBH", vaddr, kind, size) + payload


def access(*items):
    return struct.pack("<H", len(items)) + b"".join(items)


def csr(mode=8, asid=0, ppn=1, priv=1, sum=0, mxr=0, adue=1):
    return struct.pack("<BHQBBBB", mode, asid, ppn, priv, sum, mxr, adue)


def sfence(vaddr=None, asid=None):
    flags = (vaddr is not None) | (asid is not None) << 1
    return struct.pack("<BQH", flags, vaddr or 0, asid or 0)


def words(*values):
    return b"".join(struct.pack("<Q", v) for v in values)


# ---- the simulation ------------------------------------------------------------------

class Host:
    """The host's end of the byte streams: sends frames, collects what comes back."""

    def __init__(self, core, ctx):
        self.core, self.ctx = core, ctx
        self.received = bytearray()

    async def send(self, raw, gap=GAP):
        ctx, rx = self.ctx, self.core.rx
        for byte in raw:
            ctx.set(rx.payload, byte)
            ctx.set(rx.valid, 1)
            await ctx.tick()
            ctx.set(rx.valid, 0)
            await self.idle(gap)

    async def idle(self, cycles):
        ctx, tx = self.ctx, self.core.tx
        ctx.set(tx.ready, 1)
        for _ in range(cycles):
            if ctx.get(tx.valid):
                self.received.append(ctx.get(tx.payload))
            await ctx.tick()

    async def response(self, limit=200_000):
        """The next whole response frame: (seq, cmd, body); its CRC checked."""
        ctx, tx = self.ctx, self.core.tx
        ctx.set(tx.ready, 1)
        for _ in range(limit):
            frame_ = parse(self.received)
            if frame_:
                return frame_
            await self.idle(1)
        raise AssertionError(f"no response; got {bytes(self.received).hex()}")

    async def request(self, seq, cmd, body=b""):
        await self.send(frame(seq, cmd, body))
        return await self.response()

    async def call(self, seq, cmd, body=b"", status=OK):
        """A request whose response must be the command's, with ``status``; returns the
        results."""
        rseq, rcmd, rbody = await self.request(seq, cmd, body)
        assert (rseq, rcmd, rbody[:1]) == (seq, cmd | 0x80, bytes([status])), rbody.hex()
        return rbody[1:]

    def peek(self, addr):
        return self.ctx.get(self.core.ram.memory.data[addr // 8])

    def poke(self, addr, value):
        self.ctx.set(self.core.ram.memory.data[addr // 8], value)


def parse(buf):
    """Take one frame off the front of ``buf`` (which must begin with it), or None."""
    if len(buf) < 8:
        return None
    assert buf[:2] == b"\xa5\x5a", bytes(buf).hex()
    length, seq, cmd = struct.unpack_from("<HBB", buf, 2)
    if len(buf) < 8 + length:
        return None
    inner = bytes(buf[2:6 + length])
    (crc,) = struct.unpack_from("<H", buf, 6 + length)
    assert crc == binascii.crc_hqx(inner, 0)
    del buf[:8 + length]
    return seq, cmd, inner[4:]


def run(bench, **params):
    core = BoardCore(phys_size=PHYS, tlb_entries=TLB, walk_cache_entries=2,
                     frame_timeout=TIMEOUT, **params)

    async def testbench(ctx):
        await bench(Host(core, ctx))

    sim = Simulator(core)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()


# Page tables in the test's memory: root 0x1000 -> 0x2000 -> 0x3000; VA 0x4000_0000 is
# the data page 0x4000 (A set, D clear), VA 0x4000_1000 is not mapped.
ROOT, L1, L0, PAGE = 0x1000, 0x2000, 0x3000, 0x4000
VA = 0x4000_0000
LEAF = (PAGE >> 12) << 10 | V | R | W | A


async def map_pages(host, seq):
    await host.call(seq, WRITE, struct.pack("<Q", ROOT + 8) + words((L1 >> 12) << 10 | V))
    await host.call(seq + 1, WRITE, struct.pack("<Q", L1) + words((L0 >> 12) << 10 | V))
    await host.call(seq + 2, WRITE, struct.pack("<Q", L0) + words(LEAF, 0))
    await host.call(seq + 3, CSR, csr(ppn=ROOT >> 12))


def counters(results):
    names = ("cycles", "tlb_hits", "tlb_misses", "walks", "walk_cycles", "ad_updates",
             "page_faults", "access_faults")
    return dict(zip(names, struct.unpack("<8Q", results)))


# ---- the tests -----------------------------------------------------------------------

def test_version():
    async def bench(host):
        results = await host.call(7, VERSION)
        assert results == struct.pack("<BQQBHB", 1, 0, PHYS, TLB, 744, 0b11)
    run(bench)


def test_write_then_read_and_cas_hit_and_miss():
    async def bench(host):
        assert await host.call(1, WRITE, struct.pack("<Q", 0x100) +
                               words(0x1111, 0x2222, 0x3333)) == b""
        assert await host.call(2, READ, struct.pack("<QH", 0x100, 3)) == \
            words(0x1111, 0x2222, 0x3333)
        assert host.peek(0x108) == 0x2222
        # CAS hit: found == expected, new stored
        assert await host.call(3, CAS, struct.pack("<QQQ", 0x108, 0x2222, 0xBEEF)) == \
            words(0x2222)
        assert host.peek(0x108) == 0xBEEF
        # CAS miss: found returned, nothing stored
        assert await host.call(4, CAS, struct.pack("<QQQ", 0x108, 0x2222, 0x5555)) == \
            words(0xBEEF)
        assert host.peek(0x108) == 0xBEEF
        # the last word of memory, and a one-word read
        await host.call(5, WRITE, struct.pack("<Q", PHYS - 8) + words(0xFEED))
        assert await host.call(6, READ, struct.pack("<QH", PHYS - 8, 1)) == words(0xFEED)
    run(bench)


def test_access_translates_loads_stores_amo_and_stops_at_the_trap():
    async def bench(host):
        await map_pages(host, 1)
        await host.call(5, WRITE, struct.pack("<Q", PAGE) +
                        words(0x0706050403020100, 0x0F0E0D0C0B0A0908,
                              0x1716151413121110, 0x1F1E1D1C1B1A1918, 0x2726252423222120))
        before = counters(await host.call(6, COUNTERS))
        results = await host.call(7, ACCESS, access(
            item(VA + 0x10, LOAD, 8),
            item(VA + 0x1D, STORE, 5, b"\xa0\xa1\xa2\xa3\xa4"),   # across two words
            item(VA + 0x18, LOAD, 16),                             # sees the store
            item(VA + 0x08, AMO, 8, words(0xCAFE)),
            item(VA + 0x1000 + 0x24, LOAD, 4),                     # not mapped: traps
            item(VA + 0x40, STORE, 1, b"\xee"),                    # never runs
        ))
        assert results == (
            struct.pack("<H", 4) +
            bytes(range(0x10, 0x18)) +
            bytes(range(0x18, 0x1D)) + b"\xa0\xa1\xa2\xa3\xa4" + bytes(range(0x22, 0x28)) +
            words(0x0F0E0D0C0B0A0908) +
            struct.pack("<BQ", 13, VA + 0x1024))
        assert host.peek(PAGE + 0x18) == 0xA2A1A01C1B1A1918
        assert host.peek(PAGE + 0x20) == 0x272625242322A4A3
        assert await host.call(8, READ, struct.pack("<QH", PAGE + 0x18, 2)) == \
            b"\x18\x19\x1a\x1b\x1c\xa0\xa1\xa2\xa3\xa4\x22\x23\x24\x25\x26\x27"
        assert host.peek(PAGE + 0x08) == 0xCAFE
        assert host.peek(PAGE + 0x40) == 0             # the item after the trap
        # the store set D in the leaf (Svadu)
        assert host.peek(L0) == LEAF | D
        after = counters(await host.call(9, COUNTERS))
        assert after["page_faults"] - before["page_faults"] == 1
        assert after["ad_updates"] - before["ad_updates"] == 1
        assert after["cycles"] > before["cycles"]
    run(bench)


def test_store_fault_with_svade_and_an_access_fault_in_bare_mode():
    async def bench(host):
        await map_pages(host, 1)
        await host.call(5, CSR, csr(ppn=ROOT >> 12, adue=0))
        # Svade: a store to a page with D clear is a store page fault, nothing written
        assert await host.call(6, ACCESS, access(item(VA + 8, STORE, 2, b"\x01\x02"))) == \
            struct.pack("<HBQ", 0, 15, VA + 8)
        assert host.peek(PAGE + 8) == 0
        # Bare: physical addresses; beyond memory an access fault
        await host.call(7, CSR, csr(mode=0, ppn=0, priv=1))
        assert await host.call(8, ACCESS, access(item(ROOT + 8, LOAD, 8),
                                                  item(PHYS + 0x10, LOAD, 8))) == \
            struct.pack("<H", 1) + words((L1 >> 12) << 10 | V) + struct.pack("<BQ", 5,
                                                                               PHYS + 0x10)
    run(bench)


def test_sfence_makes_the_next_access_walk_again_and_tlb_shows_the_entry():
    async def bench(host):
        await map_pages(host, 1)
        await host.call(5, ACCESS, access(item(VA, LOAD, 8)))
        first = counters(await host.call(6, COUNTERS))
        await host.call(7, ACCESS, access(item(VA + 8, LOAD, 8)))
        hit = counters(await host.call(8, COUNTERS))
        assert hit["walks"] == first["walks"] and hit["tlb_hits"] == first["tlb_hits"] + 1

        tlb = await host.call(9, TLB_CMD)
        layout = data.Layout.cast(TlbEntry)
        size = (layout.size + 7) // 8
        assert tlb[0] == TLB and len(tlb) == 1 + TLB * size
        entries = [int.from_bytes(tlb[1 + i * size:1 + (i + 1) * size], "little")
                   for i in range(TLB)]

        def field(raw, name):
            f = layout[name]
            return (raw >> f.offset) & ((1 << f.width) - 1)
        valid = [e for e in entries if field(e, "valid")]
        assert len(valid) == 1
        assert (field(valid[0], "vpn"), field(valid[0], "ppn"), field(valid[0], "level"),
                field(valid[0], "r"), field(valid[0], "d")) == (VA >> 12, PAGE >> 12, 0, 1, 0)

        await host.call(10, SFENCE, sfence())
        await host.call(11, ACCESS, access(item(VA + 16, LOAD, 8)))
        again = counters(await host.call(12, COUNTERS))
        assert again["walks"] == hit["walks"] + 1
        assert again["tlb_misses"] == hit["tlb_misses"] + 1
        # an sfence by address of another page leaves the entry
        await host.call(13, SFENCE, sfence(vaddr=VA + 0x20_0000))
        await host.call(14, ACCESS, access(item(VA, LOAD, 8)))
        assert counters(await host.call(15, COUNTERS))["walks"] == again["walks"]
    run(bench)


def test_reset_clears_the_mmu_and_csrs_keeps_memory_and_forgets_the_seq():
    async def bench(host):
        await map_pages(host, 1)
        await host.call(5, ACCESS, access(item(VA, LOAD, 8)))
        assert await host.call(6, RESET) == b""
        c = counters(await host.call(7, COUNTERS))
        assert c["walks"] == c["tlb_misses"] == c["tlb_hits"] == 0
        assert c["cycles"] < 2000
        tlb = await host.call(8, TLB_CMD)
        assert not any(tlb[1:])
        # CSRs back to Bare: VA + 8 is beyond memory, a physical access fault
        assert await host.call(9, ACCESS, access(item(L0, LOAD, 8), item(VA, LOAD, 1))) == \
            struct.pack("<H", 1) + words(LEAF) + struct.pack("<BQ", 5, VA)
        # A RESET under the kept SEQ meets the kept response (the ACCESS's), as any
        # request does; under the next SEQ it runs, and keeps nothing: its SEQ is free
        kept = await host.request(9, ACCESS, b"")
        assert await host.request(9, RESET) == kept
        assert await host.call(10, RESET) == b""
        assert await host.call(10, READ, struct.pack("<QH", L0, 1)) == words(LEAF)
    run(bench)


def test_garbage_bad_lengths_and_a_bad_crc_cost_only_the_frame_they_hit():
    async def bench(host):
        await host.call(1, WRITE, struct.pack("<Q", 0x200) + words(0x77))
        garbage = b"\x00\xa5\x13\xa5\xa5\x5a\xff\xff\x01\x01" + b"\xa5\x5a\x01"
        await host.send(garbage)
        assert await host.call(2, VERSION)
        # a bad CRC: nothing written, no response
        bad = bytearray(frame(3, WRITE, struct.pack("<Q", 0x200) + words(0x99)))
        bad[-1] ^= 0x40
        await host.send(bytes(bad))
        await host.idle(4 * TIMEOUT)
        assert host.received == b""
        assert host.peek(0x200) == 0x77
        assert await host.call(3, READ, struct.pack("<QH", 0x200, 1)) == words(0x77)
        # a frame inside a dropped one's body is found again: SYNC then LEN 8 whose 8
        # bytes are a whole VERSION frame, then garbage where the CRC should be
        inner = frame(4, VERSION)
        await host.send(b"\xa5\x5a" + struct.pack("<HBB", len(inner), 0, READ) + inner +
                        b"\x00\x00")
        assert (await host.response())[:2] == (4, VERSION | 0x80)
    run(bench)


def test_a_cut_frame_followed_by_a_good_one():
    async def bench(host):
        write = frame(1, WRITE, struct.pack("<Q", 0x300) + words(0x42))
        # cut, and the next frame at once: it fills the cut frame's body, whose CRC fails
        await host.send(write[:9])
        assert await host.call(2, READ, struct.pack("<QH", 0x300, 1)) == words(0)
        # cut, then silence beyond the timeout: dropped, so the next frame is not taken
        # for the rest of its 808-byte body, and is answered at once
        long = frame(3, WRITE, struct.pack("<Q", 0x300) + words(*range(1, 101)))
        await host.send(long[:12])
        await host.idle(2 * TIMEOUT)
        assert host.received == b""
        await host.send(frame(4, READ, struct.pack("<QH", 0x300, 1)))
        assert await host.response(limit=500) == (4, READ | 0x80, b"\x00" + words(0))
        assert host.peek(0x300) == 0
    run(bench)


def test_frames_across_the_end_of_a_small_ring():
    """A 32-byte receive ring wraps every frame or two: frames, their arguments, a dropped
    frame and garbage across the wrap."""
    async def bench(host):
        for i in range(12):
            value = 0x1111_1111_1111_1111 * (i + 1) & (1 << 64) - 1
            await host.call(2 * i, WRITE, struct.pack("<Q", 0x100 + 8 * i) + words(value))
            if i % 3 == 1:
                bad = bytearray(frame(2 * i + 1, WRITE, struct.pack("<Q", 0x100) + words(0)))
                bad[9] ^= 1
                await host.send(b"\xa5\x00" + bytes(bad) + b"\x5a")
            assert await host.call(2 * i + 1, READ, struct.pack("<QH", 0x100 + 8 * i, 1)) \
                == words(value)
        assert host.peek(0x100) == 0x1111_1111_1111_1111
    run(bench, ring_bytes=32)


def test_a_repeated_seq_is_answered_from_the_kept_response_and_not_run_again():
    async def bench(host):
        request = frame(9, WRITE, struct.pack("<Q", 0x400) + words(0x1234))
        await host.send(request)
        first = await host.response()
        assert host.peek(0x400) == 0x1234
        host.poke(0x400, 0x5678)            # memory changes (another agent)
        await host.send(request)
        assert await host.response() == first
        assert host.peek(0x400) == 0x5678   # not written again
        # an ACCESS too: its results are the first run's, and the store is not redone
        await host.call(10, CSR, csr(mode=0, ppn=0))
        batch = frame(11, ACCESS, access(item(0x400, LOAD, 8), item(0x408, STORE, 1, b"\x01")))
        await host.send(batch)
        first = await host.response()
        host.poke(0x400, 0xAAAA)
        host.poke(0x408, 0)
        await host.send(batch)
        assert await host.response() == first
        assert first[2] == b"\x00" + struct.pack("<H", 2) + words(0x5678)
        assert host.peek(0x408) == 0
        # the next SEQ runs
        assert await host.call(12, READ, struct.pack("<QH", 0x400, 1)) == words(0xAAAA)
    run(bench)


BAD = [
    (0x00, b"", BAD_CMD),
    (0x33, b"", BAD_CMD),
    (0x7F, b"\x01\x02", BAD_CMD),
    (VERSION, b"\x00", BAD_ARG),
    (READ, struct.pack("<QH", 0x100, 0), BAD_ARG),            # count 0
    (READ, struct.pack("<QH", 0x100, 1024), BAD_ARG),         # above the limit
    (READ, struct.pack("<QH", 0x104, 1), BAD_ARG),            # misaligned
    (READ, struct.pack("<QH", PHYS - 8, 2), BAD_ARG),         # runs off memory
    (READ, struct.pack("<QH", 1 << 63, 1), BAD_ARG),          # outside memory
    (READ, struct.pack("<Q", 0x100), BAD_ARG),                # short
    (WRITE, struct.pack("<Q", 0x100), BAD_ARG),               # no words
    (WRITE, struct.pack("<Q", 0x100) + b"\x01\x02\x03", BAD_ARG),
    (WRITE, struct.pack("<Q", PHYS) + words(1), BAD_ARG),
    (CAS, struct.pack("<QQQ", 0x101, 0, 1), BAD_ARG),
    (CSR, csr(mode=5), BAD_ARG),
    (CSR, csr(priv=2), BAD_ARG),
    (CSR, csr(ppn=1 << 44), BAD_ARG),
    (CSR, csr(adue=2), BAD_ARG),
    (SFENCE, struct.pack("<BQH", 4, 0, 0), BAD_ARG),
    (ACCESS, access(), BAD_ARG),                              # count 0
    (ACCESS, access(item(0x100, LOAD, 0)), BAD_ARG),          # size 0
    (ACCESS, access(item(0x100, LOAD, 4097)), BAD_ARG),
    (ACCESS, access(item(0xFFC, LOAD, 8)), BAD_ARG),          # crosses a page
    (ACCESS, access(item(0x100, 4, 8)), BAD_ARG),             # no such kind
    (ACCESS, access(item(0x100, AMO, 2, b"\x00\x00")), BAD_ARG),
    (ACCESS, access(item(0x104, AMO, 8, words(0))), BAD_ARG),  # misaligned AMO
    (ACCESS, access(item(0x100, STORE, 8, b"\x00")), BAD_ARG),  # data cut short
    (ACCESS, access(item(0x100, LOAD, 8)) + b"\x00", BAD_ARG),  # trailing byte
    (ACCESS, struct.pack("<H", 2) + item(0x100, LOAD, 8), BAD_ARG),  # an item missing
    (ACCESS, access(*[item(0x1000 * i, LOAD, 4096) for i in range(2)]), BAD_ARG),  # too long
]


def test_bad_commands_and_arguments_do_nothing():
    """Each answered with its status alone, memory as it was. (One simulation for all:
    building one takes seconds.)"""
    async def bench(host):
        await host.call(1, WRITE, struct.pack("<Q", 0x100) + words(0x600DF00D))
        for seq, (cmd, body, status) in enumerate(BAD, start=2):
            rseq, rcmd, rbody = await host.request(seq, cmd, body)
            assert (rseq, rcmd, rbody) == (seq, cmd | 0x80, bytes([status])), (cmd, body)
            assert host.peek(0x100) == 0x600DF00D, (cmd, body)
        assert await host.call(100, READ, struct.pack("<QH", 0x100, 1)) == \
            words(0x600DF00D)
    run(bench)


def test_a_bad_arg_access_stores_nothing_even_before_the_bad_item():
    async def bench(host):
        await host.call(1, CSR, csr(mode=0, ppn=0))
        await host.call(2, ACCESS, access(item(0x100, STORE, 1, b"\x55"),
                                          item(0x200, LOAD, 0)), status=BAD_ARG)
        assert host.peek(0x100) == 0
    run(bench)


def test_memory_at_a_base():
    """A board core at 0x8000_0000 (as QEMU's memory is): VERSION says so, READ, WRITE and
    CAS take physical addresses inside [base, base + size) and refuse those below and past
    it, block RAM holds them at their offset, and ACCESS translates through page tables
    whose PPNs and satp are physical: Bare at the base works, at 0 it is an access
    fault."""
    base = 0x8000_0000

    async def bench(host):
        assert await host.call(1, VERSION) == struct.pack("<BQQBHB", 1, base, PHYS, TLB,
                                                          744, 0b11)
        await host.call(2, WRITE, struct.pack("<Q", base + 0x100) + words(0x1111, 0x2222))
        assert host.peek(0x100) == 0x1111 and host.peek(0x108) == 0x2222
        assert await host.call(3, READ, struct.pack("<QH", base + 0x108, 1)) == words(0x2222)
        assert await host.call(4, CAS, struct.pack("<QQQ", base + 0x100, 0x1111, 0x3)) == \
            words(0x1111)
        await host.call(5, WRITE, struct.pack("<Q", base + PHYS - 8) + words(0xFEED))
        assert host.peek(PHYS - 8) == 0xFEED
        seq = 6
        for addr, n in ((0x100, 1), (base - 8, 1), (base + PHYS, 1), (base + PHYS - 8, 2),
                        (base | 1 << 40, 1), (base - 8, 2)):
            await host.call(seq, READ, struct.pack("<QH", addr, n), status=BAD_ARG)
            await host.call(seq + 1, WRITE, struct.pack("<Q", addr) + words(*[7] * n),
                            status=BAD_ARG)
            if n == 1:
                await host.call(seq + 2, CAS, struct.pack("<QQQ", addr, 0, 7),
                                status=BAD_ARG)
            seq += 3
        assert host.peek(0x100) == 0x3 and host.peek(PHYS - 8) == 0xFEED
        assert host.peek(0) == 0
        # Page tables at the base, their PPNs physical.
        root, l1, l0, page = (base + a for a in (ROOT, L1, L0, PAGE))
        await host.call(seq, WRITE, struct.pack("<Q", root + 8) + words((l1 >> 12) << 10 | V))
        await host.call(seq + 1, WRITE, struct.pack("<Q", l1) + words((l0 >> 12) << 10 | V))
        await host.call(seq + 2, WRITE, struct.pack("<Q", l0) +
                        words((page >> 12) << 10 | V | R | W | A, (0x1000 >> 12) << 10 | V | R
                              | A))
        await host.call(seq + 3, CSR, csr(ppn=root >> 12))
        assert await host.call(seq + 4, ACCESS, access(
            item(VA + 0x10, STORE, 2, b"\xab\xcd"), item(VA + 0x10, LOAD, 2),
            item(VA + 0x1000, LOAD, 8))) == (
            struct.pack("<H", 2) + b"\xab\xcd" + struct.pack("<BQ", 5, VA + 0x1000))
        assert host.peek(PAGE + 0x10) == 0xCDAB            # at its offset in block RAM
        await host.call(seq + 5, CSR, csr(mode=0, ppn=0, priv=1))
        assert await host.call(seq + 6, ACCESS, access(item(page + 0x10, LOAD, 2),
                                                       item(PAGE + 0x10, LOAD, 2))) == (
            struct.pack("<H", 1) + b"\xab\xcd" + struct.pack("<BQ", 5, PAGE + 0x10))
    run(bench, phys_base=base)


def test_version_through_the_uart_pins_of_the_board_top():
    baud = 1_000_000
    top = BoardTop(clk_freq=4 * baud, baud=baud, phys_size=PHYS, tlb_entries=TLB,
                   walk_cache_entries=2)
    m = Module()
    m.submodules.top = top
    m.submodules.host_tx = host_tx = UartTx(4)
    m.submodules.host_rx = host_rx = UartRx(4)
    m.d.comb += [top.uart_rx.eq(host_tx.tx), host_rx.rx.eq(top.uart_tx)]
    got = bytearray()
    leds = set()

    async def bench(ctx):
        ctx.set(host_rx.o.ready, 1)
        for byte in frame(3, VERSION):
            ctx.set(host_tx.i.payload, byte)
            ctx.set(host_tx.i.valid, 1)
            await ctx.tick().until(host_tx.i.ready)
            leds.add(ctx.get(top.leds))
        ctx.set(host_tx.i.valid, 0)
        while parse(bytearray(got)) is None:
            await ctx.tick()
            leds.add(ctx.get(top.leds))
            if ctx.get(host_rx.o.valid):
                got.append(ctx.get(host_rx.o.payload))

    sim = Simulator(m)
    sim.add_clock(1 / (4 * baud))
    sim.add_testbench(bench)
    sim.run()
    assert parse(got) == (3, VERSION | 0x80,
                          struct.pack("<BBQQBHB", OK, 1, 0, PHYS, TLB, 744, 0b11))
    assert any(value & 0b1000 for value in leds)       # receiving
    assert not any(value & 0b0110 for value in leds)   # no fault, no bad frame


def test_verilog_of_the_board_top():
    """generate(board=True) writes mkclean_board with the pins of BoardTop, and says its
    UART divisor; the other tops' names are unchanged."""
    import io

    from mkclean.hdl import verilog

    out = io.StringIO()
    top = verilog.generate(out, board=True, clk_freq=25e6, phys_size=8192, tlb_entries=4,
                           walk_cache_entries=0)
    text = out.getvalue()
    assert "module mkclean_board(" in text
    header = text[text.index("module mkclean_board("):].split(";")[0]
    assert all(port in header for port in ("clk", "rst", "uart_rx", "uart_tx", "leds"))
    assert top.divisor == 217
    assert verilog.top_name(board=True, clk_freq=25e6) == "mkclean_board"
    assert verilog.top_name(phys_size=8192) == "mkclean_mmu"
    assert verilog.top_name(batch_depth=64, phys_size=8192) == "mkclean_batch"


def test_long_items_and_many_words():
    """ACCESS's byte loop over an item of hundreds of bytes from an unaligned start, items
    at a page's end, READ and WRITE of many words: what moves is what was sent. (Sizes
    up to 4096 run the same loop; a Python simulation of a page takes too long.)"""
    async def bench(host):
        await host.call(1, CSR, csr(mode=0, ppn=0))
        blob = bytes((i * 7 + 3) & 0xFF for i in range(300))
        await host.send(frame(2, ACCESS, access(item(0x2003, STORE, 300, blob))), gap=0)
        assert await host.response() == (2, ACCESS | 0x80, b"\x00" + struct.pack("<H", 1))
        assert await host.call(3, ACCESS, access(item(0x2003, LOAD, 300))) == \
            struct.pack("<H", 1) + blob
        image = b"\x00" * 3 + blob + b"\x00"          # 38 words from 0x2000
        assert await host.call(4, READ, struct.pack("<QH", 0x2000, 38)) == image
        assert await host.call(5, ACCESS, access(item(0x2FF9, STORE, 7, b"tailend"),
                                                 item(0x2FF8, FETCH, 8))) == \
            struct.pack("<H", 2) + b"\x00tailend"
        many = words(*(0x0102030405060708 * i & (1 << 64) - 1 for i in range(40)))
        await host.send(frame(6, WRITE, struct.pack("<Q", 0x4000) + many), gap=0)
        assert await host.response() == (6, WRITE | 0x80, b"\x00")
        assert await host.call(7, READ, struct.pack("<QH", 0x4000, 40)) == many
    run(bench)
