"""Process.access_many: batched loads and stores, as a far backend gets them, behave as
the same loads and stores one by one (faults handled, page crossings split)."""

import signal

import pytest

from mkclean.sim.kernel import MAP_SHARED, PROT_READ, PROT_WRITE, Kernel, Signal


@pytest.fixture
def kernel():
    k = Kernel(policy="writenotify", ad="svade", phys_size=16 << 20)
    yield k
    k.close()


def test_batch_equals_one_by_one(kernel):
    f = kernel.create_file("f", 3 * 4096)
    p = kernel.spawn()
    va = p.mmap(3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, file=f)
    ops = [(va + 4090, b"crossing-store"), (va + 8, b"12345678"), (va + 4088, 16),
           (va + 2 * 4096 + 100, b"x" * 300), (va + 8, 8), (va + 2 * 4096 + 96, 310)]
    faults = sum(kernel.stats["faults"].values())
    loads = p.access_many(ops)
    assert sum(kernel.stats["faults"].values()) > faults        # it faulted, and resumed
    assert loads == [bytes(2) + b"crossing-store", b"12345678",
                     bytes(4) + b"x" * 300 + bytes(6)]
    assert p.load(va + 4090, 14) == b"crossing-store"


def test_signal_tells_how_far_the_batch_got(kernel):
    f = kernel.create_file("f", 4096)
    p = kernel.spawn()
    va = p.mmap(2 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, file=f)
    with pytest.raises(Signal) as e:
        p.access_many([(va, b"a"), (va + 8, b"b"), (va + 4096, b"beyond EOF")])
    assert e.value.signo == signal.SIGBUS and e.value.done == 2
    assert p.load(va, 9) == b"a" + bytes(7) + b"b"
