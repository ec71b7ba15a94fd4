"""Simulator side of the board-sim backend: the board top (hdl/boards/top.py) under
Verilator, its UART's host end (build.uart_host) bridged to a TCP socket. The host's board
backend (sim/board/) opens it as ``socket://127.0.0.1:PORT`` with pyserial, exactly as it
opens a board's serial port.

The simulation advances only while there is something to do: when the board has answered
and gone quiet, Python blocks on the socket with the simulator stopped, and the board's
clock stands still until the host sends again. So a host that thinks for a second costs
no simulated cycles, and a request costs the cycles the bridge needs for it.

Runs inside the simulator. The job's configuration: ``port_file`` (where the listening
port's number goes, for the host to find), ``quiet_cycles`` (how long the line may stay
silent after the host's bytes before the board is taken to have nothing to say: more than
its frame timeout), ``accept_timeout_s``, and ``faults``: the arguments of a
:class:`~mkclean.sim.board.reference.Faults` that damages the bytes on the wire, each
chunk the socket moves ("in": to the board, "out": from it), for the link-fault tests.
"""

import os
import socket

import cocotb
from cocotb.triggers import FallingEdge, Timer

from ...board.reference import Faults
from ..build import CLOCK_HALF_PERIOD_NS, UART_RING_WORDS
from ..jobs import job_config, write_result
from ..vpi import WideArray

RING_BYTES = 4 * UART_RING_WORDS
#: Cycles between looks at the UART while the board works (a wake of Python each): a
#: Timer, one callback, not ClockCycles, which wakes Python on every edge it counts.
STEP = 2000
_STEP_NS = STEP * 2 * CLOCK_HALF_PERIOD_NS


class UartHost:
    """The testbench's UART rings (build.uart_host), as bytes in and out."""

    def __init__(self, dut):
        self.dut = dut
        self.tx_ring = WideArray(dut.host_tx_ring)
        self.rx_ring = WideArray(dut.host_rx_ring)
        self.tx_copy = bytearray(RING_BYTES)      # what host_tx_ring holds
        self.tx_head = 0
        self.rx_taken = 0

    def tx_space(self):
        return RING_BYTES - ((self.tx_head - int(self.dut.host_tx_tail.value)) & 0xFFFF)

    def send(self, data):
        """Queue ``data`` (at most :meth:`tx_space` bytes) for the board's RX line."""
        first_word = (self.tx_head % RING_BYTES) >> 2
        for b in data:
            self.tx_copy[self.tx_head % RING_BYTES] = b
            self.tx_head = (self.tx_head + 1) & 0xFFFF
        last_word = ((self.tx_head - 1) % RING_BYTES) >> 2
        words = (range(first_word, last_word + 1) if first_word <= last_word else
                 [*range(first_word, UART_RING_WORDS), *range(0, last_word + 1)])
        for w in words:
            self.tx_ring[w] = int.from_bytes(self.tx_copy[4 * w:4 * w + 4], "little")
        self.dut.host_tx_head.value = self.tx_head

    def drained(self):
        return int(self.dut.host_tx_tail.value) == self.tx_head

    def received(self):
        """The bytes the board sent since the last call."""
        head = int(self.dut.host_rx_head.value)
        count = (head - self.rx_taken) & 0xFFFF
        if not count:
            return b""
        ring = self.rx_ring.read_bytes(0, UART_RING_WORDS)
        start = self.rx_taken % RING_BYTES
        data = bytes((ring * 2)[start:start + count])
        self.rx_taken = head
        return data


def _wire_as_it_is(direction, data):
    return data


@cocotb.test()
async def serve(dut):
    config = job_config()
    dut.rst.value = 1
    for _ in range(4):
        await FallingEdge(dut.clk)
    dut.rst.value = 0
    await FallingEdge(dut.clk)
    uart = UartHost(dut)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(config.get("accept_timeout_s", 60))
    port = listener.getsockname()[1]
    with open(config["port_file"] + ".tmp", "w") as f:
        f.write(str(port))
    os.replace(config["port_file"] + ".tmp", config["port_file"])
    conn, _ = listener.accept()
    listener.close()
    conn.settimeout(None)
    quiet_cycles = config["quiet_cycles"]
    faults = config.get("faults")
    if faults is not None:
        faults = Faults(**{k: ({int(n): a for n, a in v.items()} if isinstance(v, dict) else v)
                           for k, v in faults.items()})
    else:
        faults = _wire_as_it_is
    sent = received = cycles = 0
    try:
        while True:
            data = conn.recv(1 << 16)           # the simulator stands still meanwhile
            if not data:
                break                           # the host closed its port
            sent += len(data)
            data = faults("in", data)
            while data:
                room = uart.tx_space()
                if room:
                    uart.send(data[:room])
                    data = data[room:]
                if data:                        # a full ring: let the board take some
                    await Timer(_STEP_NS, "ns")
                    cycles += STEP
                    out = uart.received()
                    if out:
                        received += len(out)
                        conn.sendall(faults("out", out))
            # Run until the board has answered and gone quiet, or has kept silent for
            # quiet_cycles since the host's last byte went out (garbage, a cut frame).
            answered = silent = 0
            while True:
                await Timer(_STEP_NS, "ns")
                cycles += STEP
                out = uart.received()
                if out:
                    answered += len(out)
                    out = faults("out", out)
                    if out:
                        conn.sendall(out)
                    silent = 0
                    continue
                if not uart.drained():
                    continue
                silent += STEP
                if answered and int(dut.host_rx_idle.value) or silent >= quiet_cycles:
                    break
            received += answered
    finally:
        conn.close()
    write_result(config, {"bytes_to_board": sent, "bytes_from_board": received,
                          "cycles": cycles,
                          "faults": [list(f) for f in getattr(faults, "done", [])]})
