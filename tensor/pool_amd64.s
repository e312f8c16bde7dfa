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
