"""The UART (hdl/uart.py) under Amaranth's simulator: a transmitter looped back into a
receiver at several divisors, the line's bit timing, a bad stop bit, a glitch."""

import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from mkclean.hdl.uart import UartRx, UartTx, divisor


def loopback(div, data):
    """Send ``data`` through UartTx into UartRx; returns the bytes received."""
    m = Module()
    m.submodules.tx = tx = UartTx(div)
    m.submodules.rx = rx = UartRx(div)
    m.d.comb += rx.rx.eq(tx.tx)
    got = []

    async def send(ctx):
        for byte in data:
            ctx.set(tx.i.payload, byte)
            ctx.set(tx.i.valid, 1)
            await ctx.tick().until(tx.i.ready)
        ctx.set(tx.i.valid, 0)

    async def receive(ctx):
        ctx.set(rx.o.ready, 1)
        while len(got) < len(data):
            await ctx.tick().until(rx.o.valid)
            got.append(ctx.get(rx.o.payload))
        # and nothing more comes
        for _ in range(12 * div):
            await ctx.tick()
            assert not ctx.get(rx.o.valid)

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(send)
    sim.add_testbench(receive)
    sim.run_until(1e-8 * (len(data) + 3) * 12 * div)
    return got


@pytest.mark.parametrize("div", [4, 5, 7, 16])
def test_loopback_at_several_divisors(div):
    data = [0x00, 0xFF, 0xA5, 0x5A, 0x01, 0x80, 0x3C]
    assert loopback(div, data) == data


def test_tx_bit_timing():
    """Start bit, data least significant bit first, stop bit, each ``divisor`` cycles."""
    div = 6
    tx = UartTx(div)
    line = []

    async def bench(ctx):
        ctx.set(tx.i.payload, 0b1011_0010)
        ctx.set(tx.i.valid, 1)
        await ctx.tick().until(tx.i.ready)
        ctx.set(tx.i.valid, 0)
        for _ in range(11 * div):
            line.append(ctx.get(tx.tx))
            await ctx.tick()

    sim = Simulator(tx)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    bits = [line[i * div:(i + 1) * div] for i in range(11)]
    assert all(len(set(b)) == 1 for b in bits)
    assert [b[0] for b in bits] == [0, 0, 1, 0, 0, 1, 1, 0, 1, 1, 1]


def drive_line(div, frames):
    """Drive UartRx's pin with ``frames``: lists of bit values, each ``div`` cycles (or
    ``(value, cycles)``), the line high for two bits between them; returns the bytes and
    the framing errors."""
    rx = UartRx(div)
    got, errors = [], []

    async def line(ctx):
        for frame in frames:
            for bit in frame + [1, 1]:
                value, cycles = bit if isinstance(bit, tuple) else (bit, div)
                ctx.set(rx.rx, value)
                await ctx.tick().repeat(cycles)

    async def watch(ctx):
        ctx.set(rx.o.ready, 1)
        async for _, _, valid, payload, error in ctx.tick().sample(
                rx.o.valid, rx.o.payload, rx.framing_error):
            if valid:
                got.append(payload)
            if error:
                errors.append(1)

    sim = Simulator(rx)
    sim.add_clock(1e-8)
    sim.add_testbench(line)
    sim.add_process(watch)
    sim.run_until(1e-8 * div * 12 * (len(frames) + 1))
    return got, errors


def byte_bits(value, stop=1):
    return [0] + [(value >> i) & 1 for i in range(8)] + [stop]


def test_bad_stop_bit_drops_the_byte_and_the_next_one_is_received():
    got, errors = drive_line(8, [byte_bits(0x41), byte_bits(0x42, stop=0), byte_bits(0x43)])
    assert got == [0x41, 0x43]
    assert errors == [1]


def test_a_glitch_shorter_than_half_a_bit_is_not_a_start_bit():
    # a low line for 3 cycles of 8: high again at the start bit's middle
    got, errors = drive_line(8, [[(0, 3), (1, 5)] + [1] * 9, byte_bits(0x7E)])
    assert got == [0x7E] and errors == []


def test_divisor_refuses_what_the_clock_cannot_make():
    assert divisor(48_000_000, 115_200) == 417
    with pytest.raises(ValueError, match="divisor"):
        divisor(300_000, 115_200)
    with pytest.raises(ValueError, match="within 2 %"):
        divisor(1_000_000, 230_400)
    with pytest.raises(ValueError, match="divisor"):
        UartRx(3)
