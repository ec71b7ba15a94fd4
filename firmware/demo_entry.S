/* The demo kernel's way in and out of user mode, and the user program. */

#define REGS	(32 * 8)	/* struct pt_regs: epc, then x1..x31 */

/*
 * stvec. Only traps from U-mode come here: sscratch holds the kernel stack's top
 * while the user runs and 0 while the kernel does (the kernel must not trap; if it
 * does, the swap finds 0 and the kernel panics on its own stack).
 */
	.text
	.balign	4
	.globl	handle_exception
handle_exception:
	csrrw	sp, sscratch, sp
	beqz	sp, 1f
	addi	sp, sp, -REGS
	sd	x1, 1*8(sp)
	sd	x3, 3*8(sp)
	sd	x4, 4*8(sp)
	sd	x5, 5*8(sp)
	sd	x6, 6*8(sp)
	sd	x7, 7*8(sp)
	sd	x8, 8*8(sp)
	sd	x9, 9*8(sp)
	sd	x10, 10*8(sp)
	sd	x11, 11*8(sp)
	sd	x12, 12*8(sp)
	sd	x13, 13*8(sp)
	sd	x14, 14*8(sp)
	sd	x15, 15*8(sp)
	sd	x16, 16*8(sp)
	sd	x17, 17*8(sp)
	sd	x18, 18*8(sp)
	sd	x19, 19*8(sp)
	sd	x20, 20*8(sp)
	sd	x21, 21*8(sp)
	sd	x22, 22*8(sp)
	sd	x23, 23*8(sp)
	sd	x24, 24*8(sp)
	sd	x25, 25*8(sp)
	sd	x26, 26*8(sp)
	sd	x27, 27*8(sp)
	sd	x28, 28*8(sp)
	sd	x29, 29*8(sp)
	sd	x30, 30*8(sp)
	sd	x31, 31*8(sp)
	csrrw	t0, sscratch, zero	/* the user's sp; 0 marks "in the kernel" */
	sd	t0, 2*8(sp)
	csrr	t0, sepc
	sd	t0, 0*8(sp)
	mv	a0, sp
	call	do_trap			/* may change regs->epc and the saved registers */
	mv	a0, sp

/* ret_to_user(regs): back to U-mode with regs, which sit at the kernel stack's top. */
	.globl	ret_to_user
ret_to_user:
	mv	sp, a0
	ld	t0, 0*8(sp)
	csrw	sepc, t0
	addi	t0, sp, REGS
	csrw	sscratch, t0
	ld	x1, 1*8(sp)
	ld	x3, 3*8(sp)
	ld	x4, 4*8(sp)
	ld	x5, 5*8(sp)
	ld	x6, 6*8(sp)
	ld	x7, 7*8(sp)
	ld	x8, 8*8(sp)
	ld	x9, 9*8(sp)
	ld	x10, 10*8(sp)
	ld	x11, 11*8(sp)
	ld	x12, 12*8(sp)
	ld	x13, 13*8(sp)
	ld	x14, 14*8(sp)
	ld	x15, 15*8(sp)
	ld	x16, 16*8(sp)
	ld	x17, 17*8(sp)
	ld	x18, 18*8(sp)
	ld	x19, 19*8(sp)
	ld	x20, 20*8(sp)
	ld	x21, 21*8(sp)
	ld	x22, 22*8(sp)
	ld	x23, 23*8(sp)
	ld	x24, 24*8(sp)
	ld	x25, 25*8(sp)
	ld	x26, 26*8(sp)
	ld	x27, 27*8(sp)
	ld	x28, 28*8(sp)
	ld	x29, 29*8(sp)
	ld	x30, 30*8(sp)
	ld	x31, 31*8(sp)
	ld	x2, 2*8(sp)
	sret

1:	csrrw	sp, sscratch, sp	/* the kernel's sp back, sscratch 0 again */
	j	kernel_trap

/*
 * The user program, mapped at USER_TEXT (user, read, execute) and run from there:
 * pc-relative code with no data of its own, so it runs at any address. Started with
 *   a0 the file's mapping, a1 the shadow's, a2 the seed, a3 rounds,
 *   a4 stores per round, a5 pages (a power of two);
 * it keeps everything in s-registers, which the kernel saves and restores.
 * Each store k (from 0) of round r (from 1):
 *   x = xorshift64(x): x ^= x << 13; x ^= x >> 7; x ^= x << 17 (state = the seed)
 *   offset = (x & (pages - 1)) * 4096 + ((x >> 32) & 511) * 8
 *   file[offset] = shadow[offset] = r << 32 | k (nonzero, and unique per store)
 * then msync(file, pages * 4096, MS_SYNC) ends the round, and exit(0) the last.
 */
#define SYS_exit	93
#define SYS_msync	227
#define MS_SYNC		4

	.section .user, "ax"
	.globl	user_main
user_main:
	mv	s0, a0
	mv	s1, a1
	mv	s2, a2
	mv	s3, a3
	mv	s4, a4
	addi	s5, a5, -1
	li	s6, 1			/* r */
2:	li	s7, 0			/* k */
3:	slli	t0, s2, 13
	xor	s2, s2, t0
	srli	t0, s2, 7
	xor	s2, s2, t0
	slli	t0, s2, 17
	xor	s2, s2, t0
	and	t1, s2, s5		/* page */
	slli	t1, t1, 12
	srli	t2, s2, 32
	andi	t2, t2, 511		/* word */
	slli	t2, t2, 3
	add	t1, t1, t2
	slli	t3, s6, 32
	or	t3, t3, s7		/* the value: r << 32 | k */
	add	t4, s0, t1
	sd	t3, 0(t4)		/* faults when the page is clean */
	add	t4, s1, t1
	sd	t3, 0(t4)
	addi	s7, s7, 1
	bltu	s7, s4, 3b
	mv	a0, s0
	addi	a1, s5, 1
	slli	a1, a1, 12
	li	a2, MS_SYNC
	li	a7, SYS_msync
	ecall
	addi	s6, s6, 1
	bleu	s6, s3, 2b
	li	a0, 0
	li	a7, SYS_exit
	ecall
4:	j	4b			/* exit does not return */
