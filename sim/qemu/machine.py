"""QEMU's ``virt`` machine running the firmware of firmware/: the tools it needs, the
firmware's build, and the two ways it runs (the demo, whose UART output is read to its
end; the bridge server, whose UART is a TCP socket the board backend opens).

The host tells the firmware its parameters through the boot-parameter block
(firmware/README.md): words that QEMU's generic loader writes into RAM before the hart
starts, so one firmware image serves every seed and memory window.
"""

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

#: The firmware's source folder: the repository's firmware/, beside sim/.
FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
QEMU = "qemu-system-riscv64"
CROSS_GCC = "riscv64-unknown-elf-gcc"
#: The machine every run uses: RAM at 0x8000_0000 (the firmware is linked there). Two
#: harts, the second parked, because with one QEMU 7.2 makes an AMO a load then a store
#: (it needs no real atomics): the load's fault (13 or 5) where the spec says the AMO's
#: (15 or 7), and A set by the load where the store then faults. With two it uses the
#: host's atomics, and answers as the spec does.
MACHINE = ("-machine", "virt", "-bios", "none", "-m", "128M", "-smp", "2", "-nic", "none")
RAM_BASE, RAM_SIZE = 0x8000_0000, 128 << 20

#: firmware/README.md, "Boot parameters": the block's address, its magic word, and each
#: field's word index after the magic.
BOOTARGS = 0x8010_0000
BOOTARGS_MAGIC = int.from_bytes(b"MKCLEAN\0", "little")
BOOTARGS_FIELDS = ("seed", "phys_base", "phys_size")
#: The bridge server's memory window unless told otherwise (firmware/README.md): 64 MiB
#: at 0x8400_0000, above the firmware, one naturally aligned block (a NAPOT PMP region).
WINDOW_BASE, WINDOW_SIZE = 0x8400_0000, 64 << 20

#: Seconds for QEMU to start listening on the bridge's socket.
START_TIMEOUT_S = 10.0


class QemuError(RuntimeError):
    """QEMU or the cross compiler is missing, the firmware does not build, or QEMU did not
    start or stopped: one line that names the problem and, where it is a missing tool, how
    to install it."""


def qemu_path() -> str:
    found = shutil.which(QEMU)
    if found is None:
        raise QemuError(f"{QEMU} is not installed (Debian: apt-get install qemu-system-misc; "
                        f"`make test` installs it)")
    return found


def firmware(program: str) -> Path:
    """The ELF of ``program`` ("demo" or "bridge"), built (``make -C firmware``) if its
    sources changed; make decides, so an up-to-date build costs one make run."""
    if not (FIRMWARE / "Makefile").exists():
        raise QemuError(f"the firmware's sources are not at {FIRMWARE} (a source checkout "
                        f"of mkclean is needed)")
    if shutil.which(CROSS_GCC) is None:
        raise QemuError(f"{CROSS_GCC} is not installed (Debian: apt-get install "
                        f"gcc-riscv64-unknown-elf; `make test` installs it)")
    done = subprocess.run(["make", "-s", "-C", str(FIRMWARE)], capture_output=True,
                          text=True)
    if done.returncode:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise QemuError(f"make -C {FIRMWARE} failed: " + " | ".join(tail))
    elf = FIRMWARE / "build" / f"{program}.elf"
    if not elf.exists():
        raise QemuError(f"make -C {FIRMWARE} made no {elf.name}")
    return elf


def bootargs(**fields) -> list[str]:
    """QEMU arguments that write the boot-parameter block: the magic, then every field of
    :data:`BOOTARGS_FIELDS`, each given (a field written 0 takes the firmware's
    default)."""
    if set(fields) != set(BOOTARGS_FIELDS):
        raise ValueError(f"the boot parameters are {', '.join(BOOTARGS_FIELDS)}, each once; "
                         f"got {', '.join(sorted(fields))}")
    args = ["-device", f"loader,addr={BOOTARGS:#x},data={BOOTARGS_MAGIC:#x},data-len=8"]
    for i, name in enumerate(BOOTARGS_FIELDS, 1):
        value = fields[name]
        args += ["-device", f"loader,addr={BOOTARGS + 8 * i:#x},data={value:#x},data-len=8"]
    return args


def run_demo(seed: int, timeout: float = 30.0) -> tuple[int, str]:
    """Run the demo to its poweroff: (QEMU's exit status, what the UART printed)."""
    elf = firmware("demo")
    command = [qemu_path(), *MACHINE, "-display", "none", "-monitor", "none",
               "-serial", "stdio", "-kernel", str(elf),
               *bootargs(seed=seed, phys_base=WINDOW_BASE, phys_size=WINDOW_SIZE)]
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        printed = (e.stdout or b"").decode(errors="replace")
        raise QemuError(f"the demo did not power off within {timeout:g} s; it printed "
                        f"{len(printed.splitlines())} lines") from None
    if done.returncode and not done.stdout:     # QEMU itself failed, before the demo ran
        said = done.stderr.decode(errors="replace").strip().splitlines()
        raise QemuError(f"{QEMU} failed: {said[0] if said else f'status {done.returncode}'}")
    return done.returncode, done.stdout.decode(errors="replace")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BridgeProcess:
    """QEMU running the bridge server, its UART a TCP server on 127.0.0.1 (QEMU waits for
    the host to connect before the hart starts, so nothing the firmware says is lost).

    Parameters
    ----------
    phys_base, phys_size : int
        The memory window the firmware serves (READ, WRITE, CAS and what the MMU reaches).
    image : Path or None
        A file of the window's first bytes, which QEMU's loader puts there before the
        hart starts (megabytes the UART would take minutes for).

    Attributes
    ----------
    url : str
        ``socket://127.0.0.1:PORT``, for the board backend.
    """

    def __init__(self, phys_base: int = WINDOW_BASE, phys_size: int = WINDOW_SIZE,
                 image: Path | None = None):
        if phys_base < RAM_BASE or phys_base + phys_size > RAM_BASE + RAM_SIZE \
                or phys_base < BOOTARGS + 0x1000:
            raise QemuError(f"the window [{phys_base:#x}, {phys_base + phys_size:#x}) is not "
                            f"in QEMU's RAM above the firmware [{BOOTARGS + 0x1000:#x}, "
                            f"{RAM_BASE + RAM_SIZE:#x})")
        elf = firmware("bridge")
        qemu = qemu_path()
        for _ in range(5):          # a port taken between choosing it and QEMU's bind
            port = _free_port()
            command = [qemu, *MACHINE, "-display", "none", "-monitor", "none",
                       "-chardev", f"socket,id=uart,host=127.0.0.1,port={port},server=on,nodelay=on,"
                                   f"wait=on",
                       "-serial", "chardev:uart", "-kernel", str(elf),
                       *bootargs(seed=0, phys_base=phys_base, phys_size=phys_size),
                       *(["-device", f"loader,file={image},addr={phys_base:#x},force-raw=on"]
                         if image is not None else [])]
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL,
                                            stderr=subprocess.PIPE)
            if self._listening(port):
                self.url = f"socket://127.0.0.1:{port}"
                return
            error = self._stop()
            if "in use" not in error:
                raise QemuError(f"{QEMU} did not start: {error or 'no message'}")
        raise QemuError(f"{QEMU} found no free TCP port for its UART")

    def _listening(self, port: int) -> bool:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            if _accepting(port):
                return True
            time.sleep(0.02)
        return False

    def _stop(self) -> str:
        """Stop QEMU; what it wrote on stderr, in one line."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        err = self.process.stderr.read().decode(errors="replace") if self.process.stderr \
            else ""
        if self.process.stderr:
            self.process.stderr.close()
        return " ".join(err.split())

    def close(self) -> None:
        self._stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _accepting(port: int) -> bool:
    """Whether QEMU listens on ``port``, without being the connection it waits for: a
    probe by /proc/net/tcp, where Linux lists listening sockets (state 0A)."""
    want = f":{port:04X}"
    try:
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            if os.path.exists(table):
                with open(table) as f:
                    for line in f.readlines()[1:]:
                        fields = line.split()
                        if fields[1].endswith(want) and fields[3] == "0A":
                            return True
    except OSError:
        pass
    return False
