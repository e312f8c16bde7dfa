//go:build !purego

#include "textflag.h"

// pooliota<>: 0..7; masked tails load their lane mask from tailMask
// (asm_amd64.go).
DATA pooliota<>+0(SB)/8, $0x0000000100000000
DATA pooliota<>+8(SB)/8, $0x0000000300000002
DATA pooliota<>+16(SB)/8, $0x0000000500000004
DATA pooliota<>+24(SB)/8, $0x0000000700000006
GLOBL pooliota<>(SB), RODATA|NOPTR, $32

// func maxTapsRow(n, ntap int, offs *int32, src *float32, base int, dst *float32, am *int32)
// For p < n: dst[p] = the first maximum over taps t < ntap (in order) of
// src[base + p + offs[t]], where a later tap wins when it is larger or NaN
// unless the best so far is NaN; am[p] = base + p + offs[t] of the winning
// tap. ntap >= 1; base may be negative where base + offs[t] is not.
TEXT ·maxTapsRow(SB), NOSPLIT, $0-56
	MOVQ n+0(FP), R11
	MOVQ ntap+8(FP), R13
	MOVQ offs+16(FP), R8
	MOVQ src+24(FP), SI
	MOVQ base+32(FP), AX
	LEAQ (SI)(AX*4), SI
	MOVQ dst+40(FP), DI
	MOVQ am+48(FP), BX
	// Y7 = base + lane (+ p as blocks advance), as int32 lanes.
	VMOVD AX, X7
	VPBROADCASTD X7, Y7
	LEAQ pooliota<>(SB), AX
	VPADDD (AX), Y7, Y7
	MOVQ $8, R9
	VMOVD R9, X8
	VPBROADCASTD X8, Y8 // 8 in every lane
	MOVQ R11, R12
	ANDQ $7, R12
	SHRQ $3, R11
	LEAQ ·tailMask(SB), AX
	MOVQ $8, DX
	SUBQ R12, DX
	VMOVDQU (AX)(DX*4), Y15

	TESTQ R11, R11
	JZ maxtail

maxblock:
	// first tap
	MOVLQSX (R8), AX
	VMOVUPS (SI)(AX*4), Y0
	VPBROADCASTD (R8), Y1
	VPADDD Y7, Y1, Y1
	MOVQ $1, CX
	CMPQ CX, R13
	JGE maxstore

maxtap:
	MOVLQSX (R8)(CX*4), AX
	VMOVUPS (SI)(AX*4), Y2
	VCMPPS $6, Y0, Y2, Y3 // !(v <= best)
	VCMPPS $7, Y0, Y0, Y4 // best is not NaN
	VANDPS Y4, Y3, Y3
	VBLENDVPS Y3, Y2, Y0, Y0
	VPBROADCASTD (R8)(CX*4), Y5
	VPADDD Y7, Y5, Y5
	VBLENDVPS Y3, Y5, Y1, Y1
	INCQ CX
	CMPQ CX, R13
	JLT maxtap

maxstore:
	VMOVUPS Y0, (DI)
	VMOVDQU Y1, (BX)
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, BX
	VPADDD Y8, Y7, Y7
	DECQ R11
	JNZ maxblock

maxtail:
	TESTQ R12, R12
	JZ maxdone
	MOVLQSX (R8), AX
	LEAQ (SI)(AX*4), R10
	VMASKMOVPS (R10), Y15, Y0
	VPBROADCASTD (R8), Y1
	VPADDD Y7, Y1, Y1
	MOVQ $1, CX
	CMPQ CX, R13
	JGE maxtailstore

maxtailtap:
	MOVLQSX (R8)(CX*4), AX
	LEAQ (SI)(AX*4), R10
	VMASKMOVPS (R10), Y15, Y2
	VCMPPS $6, Y0, Y2, Y3
	VCMPPS $7, Y0, Y0, Y4
	VANDPS Y4, Y3, Y3
	VBLENDVPS Y3, Y2, Y0, Y0
	VPBROADCASTD (R8)(CX*4), Y5
	VPADDD Y7, Y5, Y5
	VBLENDVPS Y3, Y5, Y1, Y1
	INCQ CX
	CMPQ CX, R13
	JLT maxtailtap

maxtailstore:
	VMASKMOVPS Y0, Y15, (DI)
	VPMASKMOVD Y1, Y15, (BX)

maxdone:
	VZEROUPPER
	RET

// 0, 2, ..., 14: the even columns of a stride-2 block.
DATA pooleven<>+0(SB)/8, $0x0000000200000000
DATA pooleven<>+8(SB)/8, $0x0000000600000004
DATA pooleven<>+16(SB)/8, $0x0000000a00000008
DATA pooleven<>+24(SB)/8, $0x0000000e0000000c
GLOBL pooleven<>(SB), RODATA|NOPTR, $32

// FIRSTMAX folds candidate v (values) with indices vi into the running
// first maximum best, bi: v wins when !(v <= best) and best is not NaN.
// m, t: scratch.
#define FIRSTMAX(v, vi, best, bi, m, t) \
	VCMPPS $6, best, v, m \
	VCMPPS $7, best, best, t \
	VANDPS t, m, m \
	VBLENDVPS m, v, best, best \
	VBLENDVPS m, vi, bi, bi

// func maxH3s1(rows, nb int, src *float32, hv *float32, hi *int32)
// The row pass of a stride-1 3×3 max pool with padding 1: for each of
// rows rows of 8·nb floats, the first maximum of columns c-1, c, c+1 (a
// column outside the row replaced by column c) in hv and its column in hi.
TEXT ·maxH3s1(SB), NOSPLIT, $0-40
	MOVQ rows+0(FP), R8
	MOVQ nb+8(FP), R9
	MOVQ src+16(FP), SI
	MOVQ hv+24(FP), DI
	MOVQ hi+32(FP), BX
	VMOVDQU pooliota<>(SB), Y12
	VMOVDQU ·laneUp(SB), Y13
	VMOVDQU ·laneDown(SB), Y14
	MOVQ $8, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
	VPCMPEQD Y11, Y11, Y11 // -1 in every lane
	TESTQ R8, R8
	JZ h1done

h1row:
	VMOVDQU Y12, Y10 // centre columns
	XORQ CX, CX

h1block:
	VMOVUPS (SI), Y1
	TESTQ CX, CX
	JNZ h1lmid
	VPERMPS Y1, Y13, Y0
	VPERMD Y10, Y13, Y2
	JMP h1ldone

h1lmid:
	VMOVUPS -4(SI), Y0
	VPADDD Y11, Y10, Y2

h1ldone:
	LEAQ 1(CX), DX
	CMPQ DX, R9
	JNE h1rmid
	VPERMPS Y1, Y14, Y3
	VPERMD Y10, Y14, Y4
	JMP h1rdone

h1rmid:
	VMOVUPS 4(SI), Y3
	VPSUBD Y11, Y10, Y4

h1rdone:
	FIRSTMAX(Y1, Y10, Y0, Y2, Y5, Y6)
	FIRSTMAX(Y3, Y4, Y0, Y2, Y5, Y6)
	VMOVUPS Y0, (DI)
	VMOVDQU Y2, (BX)
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, BX
	VPADDD Y15, Y10, Y10
	INCQ CX
	CMPQ CX, R9
	JLT h1block
	DECQ R8
	JNZ h1row

h1done:
	VZEROUPPER
	RET

// func maxH3s2(rows, nb int, src *float32, hv *float32, hi *int32)
// The row pass of a stride-2 3×3 max pool with padding 1: for each of
// rows rows of 16·nb floats and each output column o < 8·nb, the first
// maximum of columns 2o-1, 2o, 2o+1 (column -1 replaced by column 0) in
// hv and its column in hi.
TEXT ·maxH3s2(SB), NOSPLIT, $0-40
	MOVQ rows+0(FP), R8
	MOVQ nb+8(FP), R9
	MOVQ src+16(FP), SI
	MOVQ hv+24(FP), DI
	MOVQ hi+32(FP), BX
	VMOVDQU pooleven<>(SB), Y12
	VMOVDQU ·laneUp(SB), Y13
	MOVQ $16, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
	VPCMPEQD Y11, Y11, Y11 // -1 in every lane
	TESTQ R8, R8
	JZ h2done

h2row:
	VMOVDQU Y12, Y10 // even (centre) columns
	XORQ CX, CX

h2block:
	VMOVUPS (SI), Y1
	VMOVUPS 32(SI), Y2
	VSHUFPS $0x88, Y2, Y1, Y3
	VPERMPD $0xD8, Y3, Y3 // even columns: the centres
	VSHUFPS $0xDD, Y2, Y1, Y4
	VPERMPD $0xD8, Y4, Y4 // odd columns: the right neighbours
	VPSUBD Y11, Y10, Y7   // their columns
	TESTQ CX, CX
	JNZ h2lmid
	VPERMPS Y4, Y13, Y0
	VBLENDPS $1, Y3, Y0, Y0 // lane 0: the centre
	VPERMD Y7, Y13, Y2
	VPBLENDD $1, Y10, Y2, Y2
	JMP h2ldone

h2lmid:
	VMOVUPS -4(SI), Y1
	VMOVUPS 28(SI), Y2
	VSHUFPS $0x88, Y2, Y1, Y0
	VPERMPD $0xD8, Y0, Y0 // columns 2o-1
	VPADDD Y11, Y10, Y2

h2ldone:
	FIRSTMAX(Y3, Y10, Y0, Y2, Y5, Y6)
	FIRSTMAX(Y4, Y7, Y0, Y2, Y5, Y6)
	VMOVUPS Y0, (DI)
	VMOVDQU Y2, (BX)
	ADDQ $64, SI
	ADDQ $32, DI
	ADDQ $32, BX
	VPADDD Y15, Y10, Y10
	INCQ CX
	CMPQ CX, R9
	JLT h2block
	DECQ R8
	JNZ h2row

h2done:
	VZEROUPPER
	RET

// func maxV3(oh, nb, s, h, w int, hv *float32, hi *int32, dst *float32, am *int32)
// The column pass of a 3×3 max pool with padding 1 and stride s over the
// row pass's h rows of 8·nb outputs: output row o takes the first maximum
// of rows s·o-1, s·o, s·o+1 (a row outside the plane replaced by row s·o),
// and am the winner's index row·w + hi.
TEXT ·maxV3(SB), NOSPLIT, $0-72
	MOVQ oh+0(FP), R8
	MOVQ nb+8(FP), R9
	MOVQ hv+40(FP), SI
	MOVQ hi+48(FP), BX
	MOVQ dst+56(FP), DI
	MOVQ am+64(FP), DX
	XORQ R10, R10 // centre row s·o
	TESTQ R8, R8
	JZ vdone

vrow:
	// R11, R12, R13: rows above, at and below the centre, clamped to it.
	MOVQ R10, R12
	LEAQ -1(R10), R11
	TESTQ R11, R11
	CMOVQLT R10, R11
	LEAQ 1(R10), R13
	CMPQ R13, h+24(FP)
	CMOVQGE R10, R13
	// Y13..Y15: each row's first input index (row·w).
	MOVQ w+32(FP), AX
	IMULQ R11, AX
	VMOVD AX, X13
	VPBROADCASTD X13, Y13
	MOVQ w+32(FP), AX
	IMULQ R12, AX
	VMOVD AX, X14
	VPBROADCASTD X14, Y14
	MOVQ w+32(FP), AX
	IMULQ R13, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
	// Byte offsets of the three rows in hv and hi (8·nb floats a row).
	MOVQ R9, AX
	SHLQ $5, AX
	IMULQ AX, R11
	IMULQ AX, R12
	IMULQ AX, R13
	XORQ CX, CX // byte offset of the block within the row

vblock:
	LEAQ (SI)(CX*1), AX
	LEAQ (BX)(CX*1), R14
	VMOVUPS (AX)(R11*1), Y0
	VPADDD (R14)(R11*1), Y13, Y2
	VMOVUPS (AX)(R12*1), Y1
	VPADDD (R14)(R12*1), Y14, Y3
	FIRSTMAX(Y1, Y3, Y0, Y2, Y5, Y6)
	VMOVUPS (AX)(R13*1), Y1
	VPADDD (R14)(R13*1), Y15, Y3
	FIRSTMAX(Y1, Y3, Y0, Y2, Y5, Y6)
	VMOVUPS Y0, (DI)
	VMOVDQU Y2, (DX)
	ADDQ $32, DI
	ADDQ $32, DX
	ADDQ $32, CX
	MOVQ R9, AX
	SHLQ $5, AX
	CMPQ CX, AX
	JLT vblock
	ADDQ s+16(FP), R10
	DECQ R8
	JNZ vrow

vdone:
	VZEROUPPER
	RET
