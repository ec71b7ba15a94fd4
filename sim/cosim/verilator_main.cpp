// The simulator's main() for traced builds (build.py, waves on).
//
// cocotb's own main (cocotb/share/lib/verilator/verilator.cpp) dumps every time step from
// the first to the last, so a million-cycle run with waves on writes a trace nobody can
// open. This one runs the same VPI scheduling loop and dumps only the time steps inside a
// window, [from, to] in the design's time precision (ps here), given as plusargs:
//
//   +mkclean+trace+file=PATH   where the trace goes (FST or VCD, as the build was made)
//   +mkclean+trace+from=T      first time step dumped (default 0)
//   +mkclean+trace+to=T        last time step dumped (default: the end of the run)
//
// The trace is opened at the first time step inside the window (Verilator writes every
// signal's value there, so the window starts with the whole state) and closed after the
// last one: the simulation runs on untraced. Untraced builds keep cocotb's main.

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "Vtop.h"
#include "verilated.h"
#include "verilated_vpi.h"

#if VM_TRACE_FST
#include <verilated_fst_c.h>
using Trace = VerilatedFstC;
#else
#include <verilated_vcd_c.h>
using Trace = VerilatedVcdC;
#endif

static uint64_t main_time = 0;

double sc_time_stamp() { return main_time; }

extern "C" void vlog_startup_routines_bootstrap(void);

namespace {

Trace *trace = nullptr;
bool trace_done = false;
std::string trace_file;
uint64_t trace_from = 0;
uint64_t trace_to = UINT64_MAX;

// The value of +NAME=VALUE, or "" when it was not given.
std::string plusarg(const char *name) {
    std::string prefix = std::string(name) + "=";
    std::string match = Verilated::commandArgsPlusMatch(prefix.c_str());
    return match.empty() ? "" : match.substr(prefix.size() + 1);
}

uint64_t plusarg_time(const char *name, uint64_t otherwise) {
    std::string text = plusarg(name);
    if (text.empty()) return otherwise;
    char *end = nullptr;
    uint64_t value = std::strtoull(text.c_str(), &end, 10);
    if (*end) {
        std::fprintf(stderr, "mkclean: +%s=%s is not a time\n", name, text.c_str());
        std::exit(2);
    }
    return value;
}

void settle_value_callbacks() {
    while (VerilatedVpi::callValueCbs()) {
    }
}

void close_trace() {
    if (trace) {
        trace->close();
        trace = nullptr;  // not deleted: Verilator may still hold it at exit
    }
}

void dump(Vtop *top) {
    if (trace_done || trace_file.empty() || main_time < trace_from) return;
    if (main_time > trace_to) {
        close_trace();
        trace_done = true;
        return;
    }
    if (!trace) {
        trace = new Trace;
        top->trace(trace, 99);
        trace->open(trace_file.c_str());
    }
    trace->dump(main_time);
}

void wrap_up() {
    VerilatedVpi::callCbs(cbEndOfSimulation);
    close_trace();
}

}  // namespace

int main(int argc, char **argv) {
    Verilated::commandArgs(argc, argv);
    trace_file = plusarg("mkclean+trace+file");
    trace_from = plusarg_time("mkclean+trace+from", 0);
    trace_to = plusarg_time("mkclean+trace+to", UINT64_MAX);
    std::unique_ptr<Vtop> top(new Vtop(""));
    Verilated::fatalOnVpiError(false);
    Verilated::traceEverOn(true);

    vlog_startup_routines_bootstrap();
    Verilated::addExitCb([](void *) { wrap_up(); }, nullptr);
    VerilatedVpi::callCbs(cbStartOfSimulation);
    settle_value_callbacks();

    const uint64_t none_pending = ~0ULL;
    while (!Verilated::gotFinish()) {
        // Every event of this time step, including what VPI writes in response.
        do {
            do {
                top->eval_step();
                VerilatedVpi::clearEvalNeeded();
                VerilatedVpi::doInertialPuts();
                settle_value_callbacks();
            } while (VerilatedVpi::evalNeeded());
            VerilatedVpi::callCbs(cbReadWriteSynch);
            VerilatedVpi::doInertialPuts();
            settle_value_callbacks();
        } while (VerilatedVpi::evalNeeded());
        top->eval_end_step();
        VerilatedVpi::callCbs(cbReadOnlySynch);
        dump(top.get());

        uint64_t next_vpi = VerilatedVpi::cbNextDeadline();
        uint64_t next_design = top->eventsPending() ? top->nextTimeSlot() : none_pending;
        uint64_t next = next_vpi < next_design ? next_vpi : next_design;
        if (next == none_pending) break;
        main_time = next;
        VerilatedVpi::callCbs(cbNextSimTime);
        settle_value_callbacks();
        VerilatedVpi::callTimedCbs();
        settle_value_callbacks();
    }
    top->final();
    wrap_up();
    return Verilated::threadContextp()->errorCount() > 0 ? 1 : 0;
}
