//go:build !purego

#include "textflag.h"

// Masked tails load their lane mask from tailMask (asm_amd64.go).

// func axpyRows(rows, n int, a float32, x *float32, ldx int, y *float32, ldy int)
// For each of rows rows: y[0:n] += a·x[0:n]; then x += ldx, y += ldy (floats).
TEXT ·axpyRows(SB), NOSPLIT, $0-56
	MOVQ rows+0(FP), R8
	MOVQ n+8(FP), R11
	VBROADCASTSS a+16(FP), Y0
	MOVQ x+24(FP), SI
	MOVQ ldx+32(FP), R9
	SHLQ $2, R9
	MOVQ y+40(FP), DI
	MOVQ ldy+48(FP), R10
	SHLQ $2, R10
	MOVQ R11, R12
	ANDQ $7, R12 // tail floats
	SHRQ $3, R11 // whole vectors
	LEAQ ·tailMask(SB), AX
	MOVQ $8, DX
	SUBQ R12, DX
	VMOVDQU (AX)(DX*4), Y15
	TESTQ R8, R8
	JZ axpydone

axpyrow:
	MOVQ SI, AX
	MOVQ DI, BX
	MOVQ R11, CX
	CMPQ CX, $2
	JLT axpyone

axpytwo:
	VMOVUPS (AX), Y1
	VMOVUPS 32(AX), Y2
	VFMADD213PS (BX), Y0, Y1
	VFMADD213PS 32(BX), Y0, Y2
	VMOVUPS Y1, (BX)
	VMOVUPS Y2, 32(BX)
	ADDQ $64, AX
	ADDQ $64, BX
	SUBQ $2, CX
	CMPQ CX, $2
	JGE axpytwo

axpyone:
	TESTQ CX, CX
	JZ axpytail
	VMOVUPS (AX), Y1
	VFMADD213PS (BX), Y0, Y1
	VMOVUPS Y1, (BX)
	ADDQ $32, AX
	ADDQ $32, BX

axpytail:
	TESTQ R12, R12
	JZ axpynext
	VMASKMOVPS (AX), Y15, Y1
	VMASKMOVPS (BX), Y15, Y2
	VFMADD231PS Y1, Y0, Y2
	VMASKMOVPS Y2, Y15, (BX)

axpynext:
	ADDQ R9, SI
	ADDQ R10, DI
	DECQ R8
	JNZ axpyrow

axpydone:
	VZEROUPPER
	RET

// func dotRows(rows, n int, x *float32, ldx int, y *float32, ldy int) float32
// Σ over rows rows of Σ_{t<n} x[t]·y[t], with x += ldx, y += ldy (floats)
// between rows. The order of the sums depends only on rows and n.
TEXT ·dotRows(SB), NOSPLIT, $0-52
	MOVQ rows+0(FP), R8
	MOVQ n+8(FP), R11
	MOVQ x+16(FP), SI
	MOVQ ldx+24(FP), R9
	SHLQ $2, R9
	MOVQ y+32(FP), DI
	MOVQ ldy+40(FP), R10
	SHLQ $2, R10
	MOVQ R11, R12
	ANDQ $7, R12
	SHRQ $3, R11
	LEAQ ·tailMask(SB), AX
	MOVQ $8, DX
	SUBQ R12, DX
	VMOVDQU (AX)(DX*4), Y15
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	TESTQ R8, R8
	JZ dotdone

dotrow:
	MOVQ SI, AX
	MOVQ DI, BX
	MOVQ R11, CX
	CMPQ CX, $2
	JLT dotone

dottwo:
	VMOVUPS (AX), Y1
	VMOVUPS 32(AX), Y2
	VFMADD231PS (BX), Y1, Y3
	VFMADD231PS 32(BX), Y2, Y4
	ADDQ $64, AX
	ADDQ $64, BX
	SUBQ $2, CX
	CMPQ CX, $2
	JGE dottwo

dotone:
	TESTQ CX, CX
	JZ dottail
	VMOVUPS (AX), Y1
	VFMADD231PS (BX), Y1, Y3
	ADDQ $32, AX
	ADDQ $32, BX

dottail:
	TESTQ R12, R12
	JZ dotnext
	VMASKMOVPS (AX), Y15, Y1
	VMASKMOVPS (BX), Y15, Y2
	VFMADD231PS Y1, Y2, Y4

dotnext:
	ADDQ R9, SI
	ADDQ R10, DI
	DECQ R8
	JNZ dotrow

dotdone:
	VADDPS Y4, Y3, Y3
	VEXTRACTF128 $1, Y3, X0
	VADDPS X3, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
	VZEROUPPER
	VMOVSS X0, ret+48(FP)
	RET

// func copyRows(rows, n int, x *float32, ldx int, y *float32, ldy int)
// For each of rows rows: y[0:n] = x[0:n]; then x += ldx, y += ldy (floats).
TEXT ·copyRows(SB), NOSPLIT, $0-48
	MOVQ rows+0(FP), R8
	MOVQ n+8(FP), R11
	MOVQ x+16(FP), SI
	MOVQ ldx+24(FP), R9
	SHLQ $2, R9
	MOVQ y+32(FP), DI
	MOVQ ldy+40(FP), R10
	SHLQ $2, R10
	MOVQ R11, R12
	ANDQ $7, R12 // tail floats
	SHRQ $3, R11 // whole vectors
	LEAQ ·tailMask(SB), AX
	MOVQ $8, DX
	SUBQ R12, DX
	VMOVDQU (AX)(DX*4), Y15
	TESTQ R8, R8
	JZ copydone

copyrow:
	MOVQ SI, AX
	MOVQ DI, BX
	MOVQ R11, CX
	CMPQ CX, $2
	JLT copyone

copytwo:
	VMOVUPS (AX), Y1
	VMOVUPS 32(AX), Y2
	VMOVUPS Y1, (BX)
	VMOVUPS Y2, 32(BX)
	ADDQ $64, AX
	ADDQ $64, BX
	SUBQ $2, CX
	CMPQ CX, $2
	JGE copytwo

copyone:
	TESTQ CX, CX
	JZ copytail
	VMOVUPS (AX), Y1
	VMOVUPS Y1, (BX)
	ADDQ $32, AX
	ADDQ $32, BX

copytail:
	TESTQ R12, R12
	JZ copynext
	VMASKMOVPS (AX), Y15, Y1
	VMASKMOVPS Y1, Y15, (BX)

copynext:
	ADDQ R9, SI
	ADDQ R10, DI
	DECQ R8
	JNZ copyrow

copydone:
	VZEROUPPER
	RET

// func splitPairs(rows, n int, x *float32, ldx int, even, odd *float32, ldd int)
// For each of rows rows: even[q] = x[2q], odd[q] = x[2q+1] for q < n (n a
// multiple of 4); then x += ldx, even and odd += ldd (floats).
TEXT ·splitPairs(SB), NOSPLIT, $0-56
	MOVQ rows+0(FP), R8
	MOVQ n+8(FP), R11
	MOVQ x+16(FP), SI
	MOVQ ldx+24(FP), R9
	SHLQ $2, R9
	MOVQ even+32(FP), DI
	MOVQ odd+40(FP), BX
	MOVQ ldd+48(FP), R10
	SHLQ $2, R10
	MOVQ R11, R12
	ANDQ $4, R12 // a last block of 4
	SHRQ $3, R11 // blocks of 8
	TESTQ R8, R8
	JZ splitdone

splitrow:
	MOVQ SI, AX
	MOVQ DI, DX
	MOVQ BX, R13
	MOVQ R11, CX
	TESTQ CX, CX
	JZ splitfour

spliteight:
	VMOVUPS (AX), Y0
	VMOVUPS 32(AX), Y1
	VSHUFPS $0x88, Y1, Y0, Y2
	VSHUFPS $0xDD, Y1, Y0, Y3
	VPERMPD $0xD8, Y2, Y2
	VPERMPD $0xD8, Y3, Y3
	VMOVUPS Y2, (DX)
	VMOVUPS Y3, (R13)
	ADDQ $64, AX
	ADDQ $32, DX
	ADDQ $32, R13
	DECQ CX
	JNZ spliteight

splitfour:
	TESTQ R12, R12
	JZ splitnext
	VMOVUPS (AX), Y0
	VSHUFPS $0x88, Y0, Y0, Y2
	VSHUFPS $0xDD, Y0, Y0, Y3
	VPERMPD $0x08, Y2, Y2
	VPERMPD $0x08, Y3, Y3
	VMOVUPS X2, (DX)
	VMOVUPS X3, (R13)

splitnext:
	ADDQ R9, SI
	ADDQ R10, DI
	ADDQ R10, BX
	DECQ R8
	JNZ splitrow

splitdone:
	VZEROUPPER
	RET

// func mergePairs(rows, n int, even, odd *float32, lds int, y *float32, ldy int, add bool)
// For each of rows rows: y[2q] (= or +=) even[q], y[2q+1] (= or +=) odd[q]
// for q < n (n a multiple of 4; with add, y first in the sum); then even
// and odd += lds, y += ldy (floats).
TEXT ·mergePairs(SB), NOSPLIT, $0-57
	MOVQ rows+0(FP), R8
	MOVQ n+8(FP), R11
	MOVQ even+16(FP), SI
	MOVQ odd+24(FP), BX
	MOVQ lds+32(FP), R9
	SHLQ $2, R9
	MOVQ y+40(FP), DI
	MOVQ ldy+48(FP), R10
	SHLQ $2, R10
	MOVBLZX add+56(FP), R14
	MOVQ R11, R12
	ANDQ $4, R12 // a last block of 4
	SHRQ $3, R11 // blocks of 8
	TESTQ R8, R8
	JZ mergedone

mergerow:
	MOVQ SI, AX
	MOVQ BX, R13
	MOVQ DI, DX
	MOVQ R11, CX
	TESTQ CX, CX
	JZ mergefour

mergeeight:
	VMOVUPS (AX), Y0
	VMOVUPS (R13), Y1
	VUNPCKLPS Y1, Y0, Y2
	VUNPCKHPS Y1, Y0, Y3
	VPERM2F128 $0x20, Y3, Y2, Y4
	VPERM2F128 $0x31, Y3, Y2, Y5
	TESTQ R14, R14
	JZ 5(PC)
	VMOVUPS (DX), Y0
	VADDPS Y4, Y0, Y4
	VMOVUPS 32(DX), Y1
	VADDPS Y5, Y1, Y5
	VMOVUPS Y4, (DX)
	VMOVUPS Y5, 32(DX)
	ADDQ $32, AX
	ADDQ $32, R13
	ADDQ $64, DX
	DECQ CX
	JNZ mergeeight

mergefour:
	TESTQ R12, R12
	JZ mergenext
	VMOVUPS (AX), X0
	VMOVUPS (R13), X1
	VUNPCKLPS X1, X0, X2
	VUNPCKHPS X1, X0, X3
	TESTQ R14, R14
	JZ 5(PC)
	VMOVUPS (DX), X0
	VADDPS X2, X0, X2
	VMOVUPS 16(DX), X1
	VADDPS X3, X1, X3
	VMOVUPS X2, (DX)
	VMOVUPS X3, 16(DX)

mergenext:
	ADDQ R9, SI
	ADDQ R9, BX
	ADDQ R10, DI
	DECQ R8
	JNZ mergerow

mergedone:
	VZEROUPPER
	RET
