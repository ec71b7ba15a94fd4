/*
 * The bridge server: the machine side of docs/bridge-protocol.md on QEMU's UART,
 * with QEMU's own MMU doing every translation (sim/board/reference.py's MachineCore
 * is the same machine over the golden model). Everything runs in M-mode with every
 * trap taken there (medeleg 0). Memory is the window [phys_base, phys_base +
 * phys_size) of the boot parameters, which one NAPOT PMP entry opens to S and U:
 * a page-table walk or an access of S or U outside it is an access fault, as on
 * the project's MMU, whose memory is only the window.
 *
 * ACCESS items are made for real at the privilege asked: loads, stores and AMOs by
 * M-mode under mstatus.MPRV (bridge_access.S), fetches by a probe that really
 * fetches at the privilege asked with the window's PMP entry not executable.
 */
#include "common.h"

/* hdl/bridge_codes.py */
#define SYNC0		0xa5
#define SYNC1		0x5a
#define MAX_BODY	8192
#define RESPONSE	0x80
#define PROTOCOL_VERSION 1
enum { CMD_VERSION = 1, CMD_RESET, CMD_READ, CMD_WRITE, CMD_CAS, CMD_CSR, CMD_SFENCE,
       CMD_ACCESS };	/* COUNTERS (9) and TLB (10): BAD_CMD, features 0 */
enum { OK, BAD_CMD, BAD_ARG };
enum { KIND_LOAD, KIND_STORE, KIND_FETCH, KIND_AMO };

#define HEADER		6	/* SYNC, LEN, SEQ, CMD */
#define FRAME_MAX	(HEADER + MAX_BODY + 2)
#define WORD		8
/* VERSION: no TLB QEMU could show (tlb_entries 0), MachineCore's batch limit. */
#define TLB_ENTRIES	0
#define MAX_BATCH	256
#define FEATURES	0
/* Nothing to read: the server sleeps rather than poll the UART again at once. A
 * vCPU that polls without pause takes host CPU from QEMU's main loop, which hands
 * the UART its bytes: 20 us of wfi made a small request's round trip about 0.5 ms
 * instead of 2-4, and a 4 KiB WRITE about 150 ms instead of 230-440. After 10 ms
 * without a byte it sleeps 1 ms at a time, so that an idle QEMU is nearly idle. */
#define IDLE		(MTIME_HZ / 50000)
#define IDLE_LONG	(MTIME_HZ / 1000)
#define QUIET		(MTIME_HZ / 100)
/* A frame whose bytes stop for this long is dropped (the board's is 10 ms, the
 * reference machine's 50 ms): QEMU's mtime runs with the host's clock, and a busy
 * host can hold QEMU's I/O back for some milliseconds. */
#define FRAME_TIMEOUT	(MTIME_HZ / 10)

/* ACCESS's access faults by kind: load, store, fetch, AMO */
static const u8 access_fault[4] = { EXC_LOAD_ACCESS, EXC_STORE_ACCESS, EXC_INST_ACCESS,
				    EXC_STORE_ACCESS };

u64 mprv_lb(u64 va, u64 ms), mprv_lh(u64 va, u64 ms), mprv_lw(u64 va, u64 ms),
    mprv_ld(u64 va, u64 ms);
void mprv_sb(u64 va, u64 ms, u64 v), mprv_sh(u64 va, u64 ms, u64 v),
     mprv_sw(u64 va, u64 ms, u64 v), mprv_sd(u64 va, u64 ms, u64 v);
u64 mprv_amoswap_w(u64 va, u64 ms, u64 v), mprv_amoswap_d(u64 va, u64 ms, u64 v);
extern char mprv_b_lb[];
/* The routine fn in the copy whose page is not va's (bridge_access.S): the second
 * copy is the first moved by a page. */
#define MPRV(fn, va) ((__typeof__(&fn))((uintptr_t)&fn + mprv_copy(va)))
void fetch_probe(u64 va, u64 ms);
u64 cas64(u64 *p, u64 expected, u64 new);

static u64 phys_base, phys_size;

/* The CSR command's state; satp is written for real, the rest is kept for the
 * accesses. adue 0 (Svade) is taken but QEMU 7.2 always updates A and D. */
static struct {
	u8 mode, priv, sum, mxr, adue;
	u16 asid;
	u64 ppn;
} csr;

static u8 rx[FRAME_MAX];	/* the frame being hunted for, from its SYNC */
static size_t rx_n;
static u8 tx[FRAME_MAX];	/* the last response, kept for a retried SEQ */
static size_t tx_n;
static int kept;
static u8 kept_seq;

static u64 get(const u8 *p, unsigned n)
{
	u64 v = 0;

	while (n--)
		v = v << 8 | p[n];
	return v;
}

static u8 *put(u8 *p, u64 v, unsigned n)
{
	while (n--) {
		*p++ = (u8)v;
		v >>= 8;
	}
	return p;
}

/* CRC-16/XMODEM: poly 0x1021, init 0, no reflection. */
static u16 crc16(const u8 *p, size_t n)
{
	u16 crc = 0;

	while (n--) {
		crc ^= (u16)*p++ << 8;
		for (int i = 0; i < 8; i++)
			crc = crc & 0x8000 ? (u16)(crc << 1 ^ 0x1021) : (u16)(crc << 1);
	}
	return crc;
}

/* -- CSR state ----------------------------------------------------------------------- */

static void write_satp(void)
{
	csr_write(satp, (u64)csr.mode << 60 | (u64)csr.asid << SATP_ASID_SHIFT | csr.ppn);
}

/* RESET's values: Bare, ASID 0, PPN 0, S, SUM 0, MXR 0, ADUE 1; nothing cached. */
static void csr_reset(void)
{
	csr.mode = 0;
	csr.asid = 0;
	csr.ppn = 0;
	csr.priv = PRV_S;
	csr.sum = 0;
	csr.mxr = 0;
	csr.adue = 1;
	write_satp();
	sfence_vma_all();
}

/* -- the window ------------------------------------------------------------------------- */

/* n bytes at addr, 8-byte aligned, all inside the window (MachineCore._span). */
static int span(u64 addr, u64 n)
{
	u64 at = addr - phys_base;

	return !(addr % WORD) && addr >= phys_base && at <= phys_size && n <= phys_size - at;
}

static int in_window(u64 addr)
{
	return addr - phys_base < phys_size;
}

/* -- ACCESS ------------------------------------------------------------------------------ */

/* mstatus for an access under MPRV at privilege priv. */
static u64 access_mstatus(unsigned priv, unsigned sum, unsigned mxr)
{
	u64 ms = csr_read(mstatus) & ~(MSTATUS_MPRV | MSTATUS_MPP | MSTATUS_SUM | MSTATUS_MXR);

	return ms | MSTATUS_MPRV | (u64)priv << MSTATUS_MPP_SHIFT | (sum ? MSTATUS_SUM : 0)
	       | (mxr ? MSTATUS_MXR : 0);
}

/* How far MPRV() moves a routine: a page when va is in the first copy's page, where
 * QEMU would answer from M-mode's own translation (bridge_access.S). */
static uintptr_t mprv_copy(u64 va)
{
	return (va >> PAGE_SHIFT) == (uintptr_t)mprv_lb >> PAGE_SHIFT
	       ? (uintptr_t)mprv_b_lb - (uintptr_t)mprv_lb : 0;
}

/* The widest naturally aligned access at addr within n bytes. */
static unsigned piece(u64 addr, u64 n)
{
	unsigned w = 8;

	while (w > 1 && (addr % w || n < w))
		w /= 2;
	return w;
}

/* A load, store or AMO swap of size bytes at va under mstatus ms, in pieces; out
 * gets a load's or AMO's bytes. 0 when a piece trapped (m_fault says how). All the
 * bytes are in one 4 KiB page, so the first piece traps if any does, and a trap
 * leaves nothing done (tval is then va). */
static int mprv_access(u64 va, unsigned kind, unsigned size, const u8 *data, u8 *out, u64 ms)
{
	m_fault.taken = 0;
	if (kind == KIND_AMO) {
		u64 old = size == 8 ? MPRV(mprv_amoswap_d, va)(va, ms, get(data, 8))
				    : MPRV(mprv_amoswap_w, va)(va, ms, get(data, 4));

		if (m_fault.taken)
			return 0;
		put(out, old, size);
		return 1;
	}
	for (u64 at = 0; at < size;) {
		unsigned w = piece(va + at, size - at);
		u64 v = 0;

		if (kind == KIND_STORE) {
			v = get(data + at, w);
			(w == 8 ? MPRV(mprv_sd, va) : w == 4 ? MPRV(mprv_sw, va)
			 : w == 2 ? MPRV(mprv_sh, va) : MPRV(mprv_sb, va))(va + at, ms, v);
		} else {
			v = (w == 8 ? MPRV(mprv_ld, va) : w == 4 ? MPRV(mprv_lw, va)
			     : w == 2 ? MPRV(mprv_lh, va) : MPRV(mprv_lb, va))(va + at, ms);
		}
		if (m_fault.taken)
			return 0;
		if (kind != KIND_STORE)
			put(out + at, v, w);
		at += w;
	}
	return 1;
}

/*
 * A fetch of size bytes at va. MPRV does not apply to fetches, so the hart really
 * fetches: with the window's PMP entry readable and writable but not executable,
 * fetch_probe mret's to va at the privilege asked. The fetch traps, always:
 *   12, instruction page fault: the translation's answer; reported.
 *   1, instruction access fault: the translation passed (or a PTE it read was
 *      outside the window: then the load below faults the same way). The bytes
 *      are then read at va by a load at the same privilege with MXR set, so that
 *      an execute-only page reads too; if that load takes an access fault, the
 *      physical address is outside the window: fetch access fault.
 * tval is va (a fetch probe of an odd va runs at va & ~1, and QEMU's mtval says so).
 */
static int fetch(u64 va, unsigned size, u8 *out, u8 *cause)
{
	unsigned priv = csr.priv;
	u64 ms;

	if (priv == PRV_M) {
		if (!in_window(va)) {
			*cause = EXC_INST_ACCESS;
			return 0;
		}
		memcpy(out, (void *)va, size);
		return 1;
	}
	ms = csr_read(mstatus) & ~(MSTATUS_MPRV | MSTATUS_MPP | MSTATUS_MPIE);
	pmp_napot(phys_base, phys_size, PMP_R | PMP_W);
	csr_clear(mie, MIP_MTIP);	/* in S or U a pending timer would trap first */
	m_fault.taken = 0;
	fetch_probe(va, ms | (u64)priv << MSTATUS_MPP_SHIFT);
	csr_set(mie, MIP_MTIP);
	pmp_napot(phys_base, phys_size, PMP_R | PMP_W | PMP_X);
	if (!m_fault.taken)
		panic("fetch probe: no trap");
	if (m_fault.cause != EXC_INST_ACCESS) {
		*cause = m_fault.cause;
		return 0;
	}
	if (!mprv_access(va, KIND_LOAD, size, NULL, out, access_mstatus(priv, csr.sum, 1))) {
		/* an access fault: outside the window; a page fault cannot follow a
		 * translation that passed, but would be the fetch's page fault */
		*cause = m_fault.cause == EXC_LOAD_ACCESS ? EXC_INST_ACCESS : EXC_INST_PAGE;
		return 0;
	}
	return 1;
}

/* One item; 0 and *cause, *tval when it trapped. */
static int access_item(u64 va, unsigned kind, unsigned size, const u8 *data, u8 *out,
		       u8 *cause, u64 *tval)
{
	*tval = va;
	if (kind == KIND_FETCH)
		return fetch(va, size, out, cause);
	if (csr.priv == PRV_M && !in_window(va)) {
		/* M-mode is not PMP-checked (unlocked entries): the window by hand, as
		 * the project's MMU whose memory is only the window */
		*cause = access_fault[kind];
		return 0;
	}
	if (mprv_access(va, kind, size, data, out, access_mstatus(csr.priv, csr.sum, csr.mxr)))
		return 1;
	*cause = (u8)m_fault.cause;
	*tval = m_fault.tval;
	return 0;
}

/* Every item checked before any is done (MachineCore: decode_access, then the
 * batch's limits): BAD_ARG leaves nothing done. */
static int access_check(const u8 *body, size_t len)
{
	size_t at = 2;
	u64 results = 0;
	unsigned count;

	if (len < 2)
		return 0;
	count = get(body, 2);
	for (unsigned i = 0; i < count; i++) {
		u64 va;
		unsigned kind, size;

		if (len - at < 11)
			return 0;
		va = get(body + at, 8);
		kind = body[at + 8];
		size = get(body + at + 9, 2);
		at += 11;
		if (kind == KIND_STORE || kind == KIND_AMO) {
			if (len - at < size)
				return 0;
			at += size;
		}
		if (kind > KIND_AMO || size < 1 || size > PAGE_SIZE || (va % PAGE_SIZE) + size > PAGE_SIZE)
			return 0;
		if (kind == KIND_AMO && ((size != 4 && size != 8) || va % size))
			return 0;
		if (kind != KIND_STORE)
			results += size;
	}
	/* status, done, the data and a trap must fit in MAX_BODY */
	return at == len && count >= 1 && count <= MAX_BATCH && 1 + 2 + results + 9 <= MAX_BODY;
}

static size_t do_access(const u8 *body, size_t len, u8 *res)
{
	unsigned count = get(body, 2), done = 0;
	const u8 *item = body + 2;
	u8 *out = res + 2;

	(void)len;
	for (; done < count; done++) {
		u64 va = get(item, 8), tval;
		unsigned kind = item[8], size = get(item + 9, 2);
		const u8 *data = item + 11;
		u8 cause;

		item = data + (kind == KIND_STORE || kind == KIND_AMO ? size : 0);
		if (!access_item(va, kind, size, data, out, &cause, &tval)) {
			put(res, done, 2);
			*out++ = cause;
			return put(out, tval, 8) - res;
		}
		if (kind != KIND_STORE)
			out += size;
	}
	put(res, done, 2);
	return out - res;
}

/* -- commands ------------------------------------------------------------------------------ */

/* The command's status; its results at res, *n of them. */
static int execute(unsigned cmd, const u8 *body, size_t len, u8 *res, size_t *n)
{
	u64 addr, words;

	*n = 0;
	switch (cmd) {
	case CMD_VERSION:
		if (len)
			return BAD_ARG;
		res = put(res, PROTOCOL_VERSION, 1);
		res = put(res, phys_base, 8);
		res = put(res, phys_size, 8);
		res = put(res, TLB_ENTRIES, 1);
		res = put(res, MAX_BATCH, 2);
		put(res, FEATURES, 1);
		*n = 21;
		return OK;
	case CMD_RESET:
		if (len)
			return BAD_ARG;
		csr_reset();
		return OK;
	case CMD_READ:
		if (len != 10)
			return BAD_ARG;
		addr = get(body, 8);
		words = get(body + 8, 2);
		if (words < 1 || words > (MAX_BODY - 1) / WORD || !span(addr, words * WORD))
			return BAD_ARG;
		memcpy(res, (void *)addr, words * WORD);
		*n = words * WORD;
		return OK;
	case CMD_WRITE:
		if (len < 8 + WORD || (len - 8) % WORD)
			return BAD_ARG;
		addr = get(body, 8);
		if (!span(addr, len - 8))
			return BAD_ARG;
		memcpy((void *)addr, body + 8, len - 8);
		return OK;
	case CMD_CAS:
		if (len != 24)
			return BAD_ARG;
		addr = get(body, 8);
		if (!span(addr, WORD))
			return BAD_ARG;
		put(res, cas64((u64 *)addr, get(body + 8, 8), get(body + 16, 8)), 8);
		*n = 8;
		return OK;
	case CMD_CSR:
		/* mode u8, asid u16, ppn u64, priv u8, sum u8, mxr u8, adue u8 */
		if (len != 15 || (body[0] != 0 && body[0] != 8) || get(body + 3, 8) >> 44
		    || (body[11] != PRV_U && body[11] != PRV_S && body[11] != PRV_M)
		    || body[12] > 1 || body[13] > 1 || body[14] > 1)
			return BAD_ARG;
		csr.mode = body[0];
		csr.asid = get(body + 1, 2);
		csr.ppn = get(body + 3, 8);
		csr.priv = body[11];
		csr.sum = body[12];
		csr.mxr = body[13];
		csr.adue = body[14];
		write_satp();
		return OK;
	case CMD_SFENCE:
		/* flags u8 (bit 0: by vaddr, bit 1: by ASID), vaddr u64, asid u16; a flag
		 * clear is the x0 operand */
		if (len != 11 || body[0] > 3)
			return BAD_ARG;
		if (body[0] == 3)
			sfence_vma_addr_asid(get(body + 1, 8), get(body + 9, 2));
		else if (body[0] == 1)
			sfence_vma_addr(get(body + 1, 8));
		else if (body[0] == 2)
			sfence_vma_asid(get(body + 9, 2));
		else
			sfence_vma_all();
		return OK;
	case CMD_ACCESS:
		if (!access_check(body, len))
			return BAD_ARG;
		*n = do_access(body, len, res);
		return OK;
	}
	return BAD_CMD;
}

static void send(const u8 *p, size_t n)
{
	while (n--)
		putchar(*p++);
}

/* A request that passed its CRC (MachineCore.respond): a SEQ equal to the kept
 * response's gets that response again and is not executed again. */
static void respond(unsigned seq, unsigned cmd, const u8 *body, size_t len)
{
	size_t n;
	int status;

	if (cmd & RESPONSE)
		return;		/* a response is not a request (a looped line) */
	if (kept && kept_seq == seq) {
		send(tx, tx_n);
		return;
	}
	status = execute(cmd, body, len, tx + HEADER + 1, &n);
	tx[0] = SYNC0;
	tx[1] = SYNC1;
	put(tx + 2, n + 1, 2);
	tx[4] = (u8)seq;
	tx[5] = (u8)(cmd | RESPONSE);
	tx[6] = (u8)status;
	put(tx + HEADER + 1 + n, crc16(tx + 2, 4 + 1 + n), 2);
	tx_n = HEADER + 1 + n + 2;
	/* RESET forgets the kept response, so a new host may start with any SEQ */
	kept = !(cmd == CMD_RESET && status == OK);
	kept_seq = (u8)seq;
	send(tx, tx_n);
}

/* -- frames (sim/board/protocol.py's Parser, a byte at a time) ----------------------------- */

static void drop(size_t n)
{
	for (size_t i = n; i < rx_n; i++)
		rx[i - n] = rx[i];
	rx_n -= n;
}

/* The length of the frame at rx's start, or 0 for more bytes. Hunts for SYNC
 * (keeping a last 0xa5, which may be half of one); a candidate whose LEN is over
 * MAX_BODY or whose CRC does not match is dropped, and the hunt goes on from the
 * byte after its first SYNC byte. */
static size_t frame(void)
{
	for (;;) {
		size_t i = 0, len;

		while (i < rx_n && !(rx[i] == SYNC0 && (i + 1 == rx_n || rx[i + 1] == SYNC1)))
			i++;
		drop(i);
		if (rx_n < HEADER)
			return 0;
		len = get(rx + 2, 2);
		if (len > MAX_BODY) {
			drop(1);
			continue;
		}
		if (rx_n < HEADER + len + 2)
			return 0;
		if (crc16(rx + 2, 4 + len) != get(rx + HEADER + len, 2)) {
			drop(1);
			continue;
		}
		return HEADER + len + 2;
	}
}

static void take_frames(void)
{
	static int fifo;
	size_t n;

	while ((n = frame())) {
		/* The UART's FIFO goes on once, when a request has come whole and
		 * nothing follows it: the host now waits for the answer, so no byte of
		 * its is lost to the switch (common.c). Until then, a byte at a time. */
		if (!fifo && rx_n == n)
			fifo = uart_fifo_on();
		respond(rx[4], rx[5], rx + HEADER, n - HEADER - 2);
		drop(n);
	}
}

noreturn void main(void)
{
	u64 last = 0;

	phys_base = boot.phys_base;
	phys_size = boot.phys_size;
	/* one NAPOT PMP entry, clear of the firmware and the boot parameters */
	if (phys_size < PAGE_SIZE || (phys_size & (phys_size - 1)) || phys_base % phys_size
	    || phys_base + phys_size - 1 < phys_base
	    || (phys_base < BOOTARGS + PAGE_SIZE && phys_base + phys_size > RAM_BASE)) {
		puts("bridge: the window phys_base=");
		put_hex(phys_base);
		puts(" phys_size=");
		put_hex(phys_size);
		puts(" must be a power of two of at least 4 KiB, aligned to its size, clear of ");
		put_hex(RAM_BASE);
		puts("..");
		put_hex(BOOTARGS + PAGE_SIZE);
		putchar('\n');
		poweroff(3);
	}
	pmp_napot(phys_base, phys_size, PMP_R | PMP_W | PMP_X);
	delegate_exceptions(0);
	csr_reset();
	csr_write(mie, MIP_MTIP);	/* the idle wfi's wake-up (common.c: mtime_sleep) */
	for (;;) {
		if (uart_rx_ready()) {
			rx[rx_n++] = (u8)uart_getc();
			last = mtime();
			take_frames();
		} else if (!rx_n || mtime() - last <= FRAME_TIMEOUT) {
			mtime_sleep(mtime() - last > QUIET ? IDLE_LONG : IDLE);
		} else {
			/* the bytes stopped: what is held is dropped a byte at a time, and
			 * any frame behind the first SYNC byte is still taken */
			while (rx_n) {
				drop(1);
				take_frames();
			}
		}
	}
}
