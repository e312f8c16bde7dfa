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
