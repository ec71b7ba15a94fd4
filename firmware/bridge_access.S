/*
 * The bridge server's real accesses on the host's behalf (bridge.c).
 *
 * mprv_*(va, mstatus[, value]): swap in `mstatus` (MPRV set, MPP the privilege, SUM
 * and MXR as asked), make the one access, put the old mstatus back. Under MPRV an
 * M-mode load, store or AMO is translated and checked (page tables, PMP) as if made
 * at privilege MPP; instruction fetches are not, which is why the code around the
 * access still runs. One access per routine: were MPRV left on over a loop, the
 * loop's own stores would be translated too, and after a trap (which clears MPRV)
 * its later accesses would go to the virtual address as a physical one.
 *
 * A trap on the access lands in m_trap_vector (start.S), which clears MPRV, records
 * mcause and mtval in m_fault and resumes at mepc + 4: the csrw that restores
 * mstatus. Hence .option norvc (every instruction 4 bytes) and the range
 * [__mprv_start, __mprv_end) (link.ld), where m_trap() accepts such traps. A
 * trapped load leaves a0 as it was; the caller looks at m_fault.taken.
 *
 * Two copies, a page apart (link.ld), and bridge.c calls the one whose page is not
 * va's page. QEMU 7.2 gives an access under MPRV M-mode's own TLB index: the csrrw
 * flushes the TLB (MPRV changed), but fetching the next instruction refills M's
 * entry for the routine's page, untranslated and RWX, and the access at a va in that
 * page then hits it and is never walked: a load reads the firmware, a store writes
 * it. No other page is fetched from while MPRV is on.
 */
.macro routines p
	.option push
	.option norvc
	.globl	\p\()lb, \p\()lh, \p\()lw, \p\()ld
\p\()lb:	csrrw	t0, mstatus, a1
	lbu	a0, 0(a0)
	csrw	mstatus, t0
	ret
\p\()lh:	csrrw	t0, mstatus, a1
	lhu	a0, 0(a0)
	csrw	mstatus, t0
	ret
\p\()lw:	csrrw	t0, mstatus, a1
	lwu	a0, 0(a0)
	csrw	mstatus, t0
	ret
\p\()ld:	csrrw	t0, mstatus, a1
	ld	a0, 0(a0)
	csrw	mstatus, t0
	ret
	.globl	\p\()sb, \p\()sh, \p\()sw, \p\()sd
\p\()sb:	csrrw	t0, mstatus, a1
	sb	a2, 0(a0)
	csrw	mstatus, t0
	ret
\p\()sh:	csrrw	t0, mstatus, a1
	sh	a2, 0(a0)
	csrw	mstatus, t0
	ret
\p\()sw:	csrrw	t0, mstatus, a1
	sw	a2, 0(a0)
	csrw	mstatus, t0
	ret
\p\()sd:	csrrw	t0, mstatus, a1
	sd	a2, 0(a0)
	csrw	mstatus, t0
	ret
	/* the old value: amoswap.w's is sign-extended, the caller keeps 4 bytes */
	.globl	\p\()amoswap_w, \p\()amoswap_d
\p\()amoswap_w:
	csrrw	t0, mstatus, a1
	amoswap.w a0, a2, (a0)
	csrw	mstatus, t0
	ret
\p\()amoswap_d:
	csrrw	t0, mstatus, a1
	amoswap.d a0, a2, (a0)
	csrw	mstatus, t0
	ret
	.option pop
.endm

	.section .mprv.a, "ax"
	routines mprv_
	.section .mprv.b, "ax"
	routines mprv_b_

/*
 * fetch_probe(va, mstatus): an instruction fetch at va by the privilege in
 * mstatus.MPP (MPRV does not reach fetches, so the hart really goes there). mret
 * to va; with the window's PMP entry made non-executable by the caller, nothing
 * S or U can reach is executable, so the first fetch traps (medeleg is 0: into
 * M-mode) before any instruction runs there, and m_trap() comes back to 1: in
 * M-mode with m_fault filled (m_resume says where). Every register is as it was
 * (the trap entry restores what it saved), t2 included, so the old mstatus goes
 * back. mepc has no bit 0 (IALIGN 16): a va with bit 0 set is fetched at va & ~1.
 */
	.text
	.globl	fetch_probe
fetch_probe:
	la	t0, 1f
	la	t1, m_resume
	sd	t0, 0(t1)
	csrrw	t2, mstatus, a1
	csrw	mepc, a0
	mret
1:	csrw	mstatus, t2
	ret

/*
 * cas64(p, expected, new): found; new stored if and only if found == expected.
 * lr/sc (the A extension): atomic against anything else on the bus. Here nothing
 * else is: one hart, and QEMU's page walker only runs inside an access, never
 * during a bridge command.
 */
	.globl	cas64
cas64:
1:	lr.d	t0, (a0)
	bne	t0, a1, 2f
	sc.d	t1, a2, (a0)
	bnez	t1, 1b
2:	mv	a0, t0
	ret
