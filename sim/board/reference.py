"""A reference machine: the machine side of docs/bridge-protocol.md in pure Python, over
the golden model (its MMU and memory), serving one connection on a TCP socket in a
thread.

It is the document in executable form, for the host's tests, and lets ``mkclean run
--backend board --port socket://127.0.0.1:PORT`` be tried without hardware. A fault hook
(:class:`Faults`) sits on both of its byte streams: it drops, corrupts and cuts what
passes, inserts garbage, or goes silent.

Its memory is at ``phys_base`` for every command alike: READ, WRITE and CAS, the PPNs in
CSR and in the PTEs the walker reads, the accesses (the golden model's memory and MMU
take the base). ``features`` leaves out what QEMU's firmware bridge does not have (a TLB
snapshot, counters).
"""

import random
import socket
import threading

from ..hw.seam import Kind
from ..model.backend import GoldenHardware
from ..model.mmu import GoldenMMU
from .protocol import (ACCESS_DONE, ACCESS_TRAP, CAS, CAS_FOUND, MAX_BODY, PROTOCOL_VERSION,
                       READ, RESPONSE, WORD, WRITE, AccessResult, Cmd, CsrState, Parser, ProtocolError, Sfence,
                       Status, Version, decode_access, encode_counters, encode_frame,
                       encode_tlb)

#: The inter-byte timeout: a frame whose bytes stop for longer is dropped.
FRAME_TIMEOUT = 0.05


class Faults:
    """Fault injection on the machine's byte streams, chunk by chunk (a chunk is what one
    send or receive moves: on a local socket, a frame).

    Parameters
    ----------
    incoming, outgoing : dict[int, str]
        Chunk number (0 first) -> action, for bytes to the machine and from it.
    rate : float
        The chance that any other chunk meets a random action of ``actions``.
    seed : int
    actions : tuple of str
        ``drop`` (the whole chunk), ``lose_byte`` (one byte), ``corrupt`` (one byte
        flipped), ``garbage`` (random bytes before it), ``cut`` (only its first half),
        ``silent`` (this chunk and everything after, in that direction).

    Attributes
    ----------
    done : list of (str, int, str)
        (direction, chunk number, action) of every fault made.
    """

    ACTIONS = ("drop", "lose_byte", "corrupt", "garbage", "cut")

    def __init__(self, incoming=None, outgoing=None, rate=0.0, seed=0, actions=ACTIONS):
        self.plan = {"in": dict(incoming or {}), "out": dict(outgoing or {})}
        self.rate = rate
        self.random = random.Random(seed)
        self.actions = tuple(actions)
        self.count = {"in": 0, "out": 0}
        self.silent = {"in": False, "out": False}
        self.done = []

    def __call__(self, direction: str, data: bytes) -> bytes:
        n = self.count[direction]
        self.count[direction] += 1
        action = self.plan[direction].get(n)
        if action is None and self.rate and self.random.random() < self.rate:
            action = self.random.choice(self.actions)
        if action == "silent":
            self.silent[direction] = True
        if self.silent[direction]:
            return b""
        if action is None or not data:
            return data
        self.done.append((direction, n, action))
        r = self.random
        if action == "drop":
            return b""
        if action == "lose_byte":
            i = r.randrange(len(data))
            return data[:i] + data[i + 1:]
        if action == "corrupt":
            i = r.randrange(len(data))
            return data[:i] + bytes([data[i] ^ (1 << r.randrange(8))]) + data[i + 1:]
        if action == "garbage":
            return bytes(r.randrange(256) for _ in range(r.randrange(1, 40))) + data
        if action == "cut":
            return data[:len(data) // 2]
        raise ValueError(f"unknown fault action {action!r}")


class MachineCore:
    """The protocol's machine, without a stream: requests in, responses out, exactly
    once by SEQ.

    Parameters
    ----------
    phys_size, phys_base : int
        Its memory: ``[phys_base, phys_base + phys_size)``.
    tlb_entries, walk_cache_entries : int
        Its golden MMU's.
    max_batch : int
        ACCESS items it takes at once.
    features : int
        VERSION's feature bits. Without ``Version.TLB_SNAPSHOT`` it answers TLB with
        BAD_CMD and reports 0 TLB entries, without ``Version.COUNTERS`` it answers COUNTERS
        with BAD_CMD: as QEMU's firmware bridge does (features 0).

    Attributes
    ----------
    hw : GoldenHardware
    executed : list of (int, int)
        (SEQ, CMD) of every request executed, in order (a retried one appears once).
    """

    def __init__(self, phys_size: int = 64 << 20, phys_base: int = 0, tlb_entries: int = 16,
                 walk_cache_entries: int = 8, max_batch: int = 256,
                 features: int = Version.TLB_SNAPSHOT | Version.COUNTERS):
        self.hw = GoldenHardware(phys_size, tlb_entries, walk_cache_entries, phys_base)
        self.version = Version(PROTOCOL_VERSION, phys_base, phys_size,
                               tlb_entries if features & Version.TLB_SNAPSHOT else 0,
                               max_batch, features)
        self._handlers = {cmd: handler for cmd, handler in self._HANDLERS.items()
                          if cmd not in self._FEATURE_OF or self._FEATURE_OF[cmd] & features}
        self._tlb_entries = tlb_entries
        self._walk_cache_entries = walk_cache_entries
        self._kept = None           # (SEQ, response frame) of the last request
        self.executed = []

    def respond(self, seq: int, cmd: int, body: bytes) -> bytes:
        """The response frame to a request that passed its CRC."""
        if self._kept is not None and self._kept[0] == seq:
            return self._kept[1]
        handler = self._handlers.get(cmd)
        if handler is None:
            status, results = Status.BAD_CMD, b""
        else:
            try:
                status, results = Status.OK, handler(self, body)
            except ProtocolError:
                status, results = Status.BAD_ARG, b""
        if status == Status.OK:
            self.executed.append((seq, cmd))
        frame = encode_frame(seq, cmd | RESPONSE, bytes([status]) + results)
        self._kept = None if cmd == Cmd.RESET and status == Status.OK else (seq, frame)
        return frame

    def _span(self, addr: int, n: int) -> int:
        """``addr``, if the ``n`` bytes there are aligned words of memory."""
        base = self.hw.phys_base
        if addr % WORD or addr < base or addr + n > base + self.hw.phys_size:
            raise ProtocolError(f"{n} bytes at {addr:#x}")
        return addr

    def _version(self, body):
        _no_args(body)
        return self.version.encode()

    def _reset(self, body):
        _no_args(body)
        hw = self.hw
        hw.mmu = GoldenMMU(hw.mem, hw.phys_size, self._tlb_entries,
                           self._walk_cache_entries, bus=hw.bus)
        return b""

    def _read(self, body):
        addr, words = _args(READ, body)
        if not 1 <= words <= (MAX_BODY - 1) // WORD:
            raise ProtocolError(f"READ of {words} words")
        return self.hw.read(self._span(addr, words * WORD), words * WORD)

    def _write(self, body):
        if len(body) < WRITE.size + WORD or (len(body) - WRITE.size) % WORD:
            raise ProtocolError(f"WRITE body of {len(body)} bytes")
        (addr,) = WRITE.unpack_from(body)
        data = body[WRITE.size:]
        self.hw.write(self._span(addr, len(data)), data)
        return b""

    def _cas(self, body):
        addr, expected, new = _args(CAS, body)
        return CAS_FOUND.pack(self.hw.cas_pte(self._span(addr, WORD), expected, new))

    def _csr(self, body):
        c = CsrState.decode(body) if len(body) == CsrState.FORMAT.size else None
        if c is None or c.priv not in (0, 1, 3) or c.mode not in (0, 8) \
                or max(c.sum, c.mxr, c.adue) > 1 or c.ppn >> 44:
            raise ProtocolError("CSR request")
        self.hw.set_csr(mode=c.mode, asid=c.asid, ppn=c.ppn, priv=c.priv, sum=bool(c.sum),
                        mxr=bool(c.mxr), adue=bool(c.adue))
        return b""

    def _sfence(self, body):
        s = Sfence.decode(body) if len(body) == Sfence.FORMAT.size else None
        if s is None or s.flags > 3:
            raise ProtocolError("SFENCE request")
        self.hw.sfence_vma(s.vaddr if s.flags & Sfence.BY_VADDR else None,
                           s.asid if s.flags & Sfence.BY_ASID else None)
        return b""

    def _access(self, body):
        items = decode_access(body)
        if not 1 <= len(items) <= self.version.max_batch \
                or (1 + ACCESS_DONE.size + sum(i.result_bytes() for i in items)
                    + ACCESS_TRAP.size > MAX_BODY):
            raise ProtocolError(f"ACCESS of {len(items)} items")
        data, trap = [], None
        for item in items:
            r = self.hw.access(item.vaddr, Kind(item.kind), item.data, item.size)
            if not isinstance(r, bytes):
                trap = (int(r.cause), r.tval)
                break
            data.append(r)
        return AccessResult(data, trap).encode()

    def _counters(self, body):
        _no_args(body)
        c = self.hw.mmu.counters
        return encode_counters({"cycles": 0, "walk_cycles": 0, **c})

    def _tlb(self, body):
        _no_args(body)
        fields = ("valid", "asid", "g", "level", "vpn", "ppn", "r", "w", "x", "u", "a", "d")
        return encode_tlb([{f: getattr(e, f) for f in fields} for e in self.hw.tlb_entries()])

    _HANDLERS = {Cmd.VERSION: _version, Cmd.RESET: _reset, Cmd.READ: _read, Cmd.WRITE: _write,
                 Cmd.CAS: _cas, Cmd.CSR: _csr, Cmd.SFENCE: _sfence, Cmd.ACCESS: _access,
                 Cmd.COUNTERS: _counters, Cmd.TLB: _tlb}
    #: The commands a feature bit brings (the others every machine has).
    _FEATURE_OF = {Cmd.TLB: Version.TLB_SNAPSHOT, Cmd.COUNTERS: Version.COUNTERS}


def _no_args(body):
    if body:
        raise ProtocolError(f"{len(body)} bytes of arguments to a command that takes none")


def _args(fmt, body):
    if len(body) != fmt.size:
        raise ProtocolError(f"{len(body)} bytes of arguments, expected {fmt.size}")
    return fmt.unpack(body)


class ReferenceMachine:
    """:class:`MachineCore` on a TCP socket: :meth:`serve` listens on 127.0.0.1 and
    returns the URL the host opens; one connection is served in a thread.

    Parameters
    ----------
    faults : callable or None
        ``faults(direction, data) -> data`` on every chunk received (``"in"``) and sent
        (``"out"``), e.g. a :class:`Faults`.
    **core
        :class:`MachineCore`'s parameters.

    Attributes
    ----------
    core : MachineCore
    parser : Parser
        The machine's parser (its ``dropped`` and ``garbage`` counts).
    error : BaseException or None
        What ended the serving thread, if not the connection's end.
    """

    def __init__(self, faults=None, **core):
        self.core = MachineCore(**core)
        self.faults = faults
        self.parser = Parser()
        self.error = None
        self._listener = None
        self._thread = None
        self._stop = threading.Event()

    def serve(self, port: int = 0, connections: int | None = 1) -> str:
        """Listen on 127.0.0.1:``port`` (0: any free port) and serve ``connections``
        connections one after another (None: until :meth:`close`), memory kept between
        them as a board keeps it; returns the URL to open."""
        self._connections = connections
        self._listener = socket.create_server(("127.0.0.1", port))
        self._listener.settimeout(0.1)
        self._thread = threading.Thread(target=self._run, name="reference-machine",
                                        daemon=True)
        self._thread.start()
        return f"socket://127.0.0.1:{self._listener.getsockname()[1]}"

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._listener is not None:
            self._listener.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _run(self):
        served = 0
        try:
            while not self._stop.is_set() and served != self._connections:
                try:
                    conn, _ = self._listener.accept()
                except TimeoutError:
                    continue
                with conn:
                    conn.settimeout(FRAME_TIMEOUT)
                    # a response is one small send: no waiting to coalesce it
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    self.parser = Parser()      # a new line: nothing of the last one
                    self._serve(conn)
                served += 1
        except BaseException as e:      # for the test that asks, not the thread's stderr
            self.error = e

    def _serve(self, conn):
        faults = self.faults or (lambda direction, data: data)
        while not self._stop.is_set():
            try:
                data = conn.recv(65536)
            except TimeoutError:
                frames = self.parser.expire() if self.parser.pending else []
            else:
                if not data:
                    return
                frames = self.parser.feed(faults("in", data))
            for frame in frames:
                if frame.cmd & RESPONSE:
                    continue            # a response is not a request (a looped line)
                out = faults("out", self.core.respond(frame.seq, frame.cmd, frame.body))
                if out:
                    conn.sendall(out)


def _address(text: str) -> int:
    """An address as argparse's type: decimal or 0x..., ``_`` allowed."""
    return int(text.replace("_", ""), 0)


def main(argv=None) -> int:
    """``python -m mkclean.sim.board.reference``: a reference machine to try ``mkclean run
    --backend board --port URL`` on without hardware; prints the URL, serves until
    interrupted."""
    import argparse
    import sys
    parser = argparse.ArgumentParser(prog="python -m mkclean.sim.board.reference",
                                     description=main.__doc__.split(";")[0])
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: any free)")
    parser.add_argument("--phys-mb", type=int, default=64, help="memory in MiB (default 64)")
    parser.add_argument("--phys-base", type=_address, default=0,
                        metavar="ADDR", help="where memory starts (default 0; QEMU's RAM: "
                                             "0x80000000)")
    parser.add_argument("--tlb-entries", type=int, default=16)
    parser.add_argument("--fault-rate", type=float, default=0.0,
                        help="the chance of a fault on each chunk either way (default 0)")
    parser.add_argument("--connections", type=int, default=None,
                        help="connections to serve, then stop (default: until interrupted)")
    args = parser.parse_args(argv)
    try:
        machine = ReferenceMachine(faults=Faults(rate=args.fault_rate) if args.fault_rate
                                   else None, phys_size=args.phys_mb << 20,
                                   phys_base=args.phys_base, tlb_entries=args.tlb_entries)
        url = machine.serve(args.port, args.connections)
    except (ValueError, OSError) as e:
        print(f"reference machine: {e}", file=sys.stderr)
        return 2
    print(url, flush=True)
    try:
        machine._thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        machine.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
