/* The shared start-up: reset to main() on hart 0, and the M-mode trap entry. */

#define MSTATUS_MPRV	(1 << 17)
#define MFRAME		(18 * 8)	/* ra, t0-t6, a0-a7, the interrupted sp, padding */

	.section .text.start, "ax"
	.globl	_start
_start:
	/* QEMU's reset code jumps here with a0 = mhartid on every hart; one is enough. */
	csrr	t0, mhartid
	bnez	t0, park
	la	sp, __stack_top
	la	t0, m_trap_vector
	csrw	mtvec, t0		/* direct mode: the address is 4-byte aligned */
	csrw	mie, zero		/* no interrupts, ever: everything here is polled */
	csrw	satp, zero
	la	t0, __bss_start		/* 8-byte aligned and sized by link.ld */
	la	t1, __bss_end
1:	bgeu	t0, t1, 2f
	sd	zero, 0(t0)
	addi	t0, t0, 8
	j	1b
2:	call	boot_main		/* reads the boot-parameter block, calls main() */
park:	wfi
	j	park

/*
 * Every trap into M-mode. Expected ones come from the bridge server: an access made
 * under mstatus.MPRV, and its fetch probe, which leaves M-mode and traps on its very
 * first fetch. m_trap() decides and records; anything else is a panic.
 *
 * MPRV goes off before this code touches memory: the trap has set MPP to M, so the
 * saves below would be M-mode accesses anyway, but QEMU keeps one TLB for M-mode with
 * and without MPRV and flushes it only when a CSR write changes MPRV (or MPP, SUM,
 * MXR), not when a trap does. The interrupted sp may be anything (a fetch probe
 * leaves it as it was, but a bug in S-mode would not): the handler has a stack of its
 * own. One hart, no nesting: a trap in here is a bug, and is not survived.
 */
	.text
	.balign	4
	.globl	m_trap_vector
m_trap_vector:
	csrw	mscratch, t0
	li	t0, MSTATUS_MPRV
	csrc	mstatus, t0
	mv	t0, sp
	la	sp, __m_trap_stack_top
	addi	sp, sp, -MFRAME
	sd	t0, 16*8(sp)
	csrr	t0, mscratch
	sd	ra, 0*8(sp)
	sd	t0, 1*8(sp)
	sd	t1, 2*8(sp)
	sd	t2, 3*8(sp)
	sd	a0, 4*8(sp)
	sd	a1, 5*8(sp)
	sd	a2, 6*8(sp)
	sd	a3, 7*8(sp)
	sd	a4, 8*8(sp)
	sd	a5, 9*8(sp)
	sd	a6, 10*8(sp)
	sd	a7, 11*8(sp)
	sd	t3, 12*8(sp)
	sd	t4, 13*8(sp)
	sd	t5, 14*8(sp)
	sd	t6, 15*8(sp)
	call	m_trap			/* C: saves the callee-saved registers it uses */
	ld	ra, 0*8(sp)
	ld	t0, 1*8(sp)
	ld	t1, 2*8(sp)
	ld	t2, 3*8(sp)
	ld	a0, 4*8(sp)
	ld	a1, 5*8(sp)
	ld	a2, 6*8(sp)
	ld	a3, 7*8(sp)
	ld	a4, 8*8(sp)
	ld	a5, 9*8(sp)
	ld	a6, 10*8(sp)
	ld	a7, 11*8(sp)
	ld	t3, 12*8(sp)
	ld	t4, 13*8(sp)
	ld	t5, 14*8(sp)
	ld	t6, 15*8(sp)
	ld	sp, 16*8(sp)
	mret
