//go:build !purego

#include "textflag.h"

// Streaming kernels over n floats (any n >= 0): two vectors per iteration,
// then one, then the tail with masked loads and stores. See vec.go for the
// contracts.

// vecmask<>: eight all-ones lanes, then eight zero lanes. The 8 lanes at
// vecmask<> + 4·(8-r) select the first r floats of a vector.
DATA vecmask<>+0(SB)/8, $0xffffffffffffffff
DATA vecmask<>+8(SB)/8, $0xffffffffffffffff
DATA vecmask<>+16(SB)/8, $0xffffffffffffffff
DATA vecmask<>+24(SB)/8, $0xffffffffffffffff
DATA vecmask<>+32(SB)/8, $0
DATA vecmask<>+40(SB)/8, $0
DATA vecmask<>+48(SB)/8, $0
DATA vecmask<>+56(SB)/8, $0
GLOBL vecmask<>(SB), RODATA|NOPTR, $64

// func sumBlock(n int, x *float32) float32: Σ x[0:n]
TEXT ·sumBlock(SB), NOSPLIT, $0-20
	MOVQ n+0(FP), R11
	MOVQ x+8(FP), SI
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	MOVQ R11, R12
	ANDQ $7, R12
	SHRQ $3, R11
	LEAQ vecmask<>(SB), AX
	MOVQ $8, DX
	SUBQ R12, DX
	VMOVDQU (AX)(DX*4), Y15
	CMPQ R11, $2
	JLT sumBlockone
sumBlocktwo:
	VADDPS 0(SI), Y3, Y3
	VADDPS 32(SI), Y4, Y4
	ADDQ $64, SI
	SUBQ $2, R11
	CMPQ R11, $2
	JGE sumBlocktwo
sumBlockone:
	TESTQ R11, R11
	JZ sumBlocktail
	VADDPS 0(SI), Y3, Y3
	ADDQ $32, SI
sumBlocktail:
	TESTQ R12, R12
	JZ sumBlockfin
	VMASKMOVPS (SI), Y15, Y1
	VADDPS Y1, Y4, Y4
sumBlockfin:
	VADDPS Y4, Y3, Y3
	VEXTRACTF128 $1, Y3, X1
	VADDPS X3, X1, X1
	VHADDPS X1, X1, X1
	VHADDPS X1, X1, X1
	MOVSS X1, ret+16(FP)
	VZEROUPPER
	RET

// func sumSqDevBlock(n int, x *float32, mean float32) float32: Σ (x[i]-mean)²
TEXT ·sumSqDevBlock(SB), NOSPLIT, $0-28
	MOVQ n+0(FP), R11
	MOVQ x+8(FP), SI
	VBROADCASTSS mean+16(FP), Y0
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	MOVQ R11, R12
	ANDQ $7, R12
	SHRQ $3, R11
	LEAQ vecmask<>(SB), AX
	MOVQ $8, DX
	SUBQ R12, DX
	VMOVDQU (AX)(DX*4), Y15
	CMPQ R11, $2
	JLT sumSqDevBlockone
sumSqDevBlocktwo:
	VMOVUPS 0(SI), Y1
	VSUBPS Y0, Y1, Y1
	VFMADD231PS Y1, Y1, Y3
	VMOVUPS 32(SI), Y2
	VSUBPS Y0, Y2, Y2
	VFMADD231PS Y2, Y2, Y4
	ADDQ $64, SI
	SUBQ $2, R11
	CMPQ R11, $2
	JGE sumSqDevBlocktwo
sumSqDevBlockone:
	TESTQ R11, R11
	JZ sumSqDevBlocktail
	VMOVUPS 0(SI), Y1
	VSUBPS Y0, Y1, Y1
	VFMADD231PS Y1, Y1, Y3
	ADDQ $32, SI
sumSqDevBlocktail:
	TESTQ R12, R12
	JZ sumSqDevBlockfin
	VMASKMOVPS (SI), Y15, Y1
	VSUBPS Y0, Y1, Y1
	VANDPS Y15, Y1, Y1
	VFMADD231PS Y1, Y1, Y4
sumSqDevBlockfin:
	VADDPS Y4, Y3, Y3
	VEXTRACTF128 $1, Y3, X1
	VADDPS X3, X1, X1
	VHADDPS X1, X1, X1
	VHADDPS X1, X1, X1
	MOVSS X1, ret+24(FP)
	VZEROUPPER
	RET

// func gradSumsBlock(n int, gv, x *float32, mean float32) (sg, sgx float32): Σ g[i] and Σ g[i]·(x[i]-mean)
TEXT ·gradSumsBlock(SB), NOSPLIT, $0-40
	MOVQ n+0(FP), R11
	MOVQ gv+8(FP), DI
	MOVQ x+16(FP), SI
	VBROADCASTSS mean+24(FP), Y0
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	MOVQ R11, R12
	ANDQ $7, R12
	SHRQ $3, R11
	LEAQ vecmask<>(SB), AX
	MOVQ $8, DX
	SUBQ R12, DX
	VMOVDQU (AX)(DX*4), Y15
	CMPQ R11, $2
	JLT gradSumsBlockone
gradSumsBlocktwo:
	VMOVUPS 0(DI), Y1
	VADDPS Y1, Y3, Y3
	VMOVUPS 0(SI), Y2
	VSUBPS Y0, Y2, Y2
	VFMADD231PS Y1, Y2, Y5
	VMOVUPS 32(DI), Y7
	VADDPS Y7, Y4, Y4
	VMOVUPS 32(SI), Y8
	VSUBPS Y0, Y8, Y8
	VFMADD231PS Y7, Y8, Y6
	ADDQ $64, DI
	ADDQ $64, SI
	SUBQ $2, R11
	CMPQ R11, $2
	JGE gradSumsBlocktwo
gradSumsBlockone:
	TESTQ R11, R11
	JZ gradSumsBlocktail
	VMOVUPS 0(DI), Y1
	VADDPS Y1, Y3, Y3
	VMOVUPS 0(SI), Y2
	VSUBPS Y0, Y2, Y2
	VFMADD231PS Y1, Y2, Y5
	ADDQ $32, DI
	ADDQ $32, SI
gradSumsBlocktail:
	TESTQ R12, R12
	JZ gradSumsBlockfin
	VMASKMOVPS (DI), Y15, Y1
	VADDPS Y1, Y4, Y4
	VMASKMOVPS (SI), Y15, Y2
	VSUBPS Y0, Y2, Y2
	VFMADD231PS Y1, Y2, Y6
gradSumsBlockfin:
	VADDPS Y4, Y3, Y3
	VEXTRACTF128 $1, Y3, X1
	VADDPS X3, X1, X1
	VHADDPS X1, X1, X1
	VHADDPS X1, X1, X1
	MOVSS X1, sg+32(FP)
	VADDPS Y6, Y5, Y5
	VEXTRACTF128 $1, Y5, X1
	VADDPS X5, X1, X1
	VHADDPS X1, X1, X1
	VHADDPS X1, X1, X1
	MOVSS X1, sgx+36(FP)
	VZEROUPPER
	RET

// func affineRow(n int, x *float32, a, b float32, y *float32): y[i] = a·x[i] + b
TEXT ·affineRow(SB), NOSPLIT, $0-32
	MOVQ n+0(FP), R11
	MOVQ x+8(FP), SI
	VBROADCASTSS a+16(FP), Y0
	VBROADCASTSS b+20(FP), Y5
	MOVQ y+24(FP), DI
	MOVQ R11, R12
	ANDQ $7, R12
	SHRQ $3, R11
	LEAQ vecmask<>(SB), AX
	MOVQ $8, DX
	SUBQ R12, DX
	VMOVDQU (AX)(DX*4), Y15
	CMPQ R11, $2
	JLT affineRowone
affineRowtwo:
	VMOVUPS 0(SI), Y1
	VFMADD213PS Y5, Y0, Y1
	VMOVUPS Y1, 0(DI)
	VMOVUPS 32(SI), Y2
	VFMADD213PS Y5, Y0, Y2
	VMOVUPS Y2, 32(DI)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $2, R11
	CMPQ R11, $2
	JGE affineRowtwo
affineRowone:
	TESTQ R11, R11
	JZ affineRowtail
	VMOVUPS 0(SI), Y1
	VFMADD213PS Y5, Y0, Y1
	VMOVUPS Y1, 0(DI)
	ADDQ $32, SI
	ADDQ $32, DI
affineRowtail:
	TESTQ R12, R12
	JZ affineRowfin
	VMASKMOVPS (SI), Y15, Y1
	VFMADD213PS Y5, Y0, Y1
	VMASKMOVPS Y1, Y15, (DI)
affineRowfin:
	VZEROUPPER
	RET

// func affine2Set(n int, gv, x *float32, p, q, r, s float32, d *float32): d[i] = p·g[i] + q·(x[i]-s) + r
TEXT ·affine2Set(SB), NOSPLIT, $0-48
	MOVQ n+0(FP), R11
	MOVQ gv+8(FP), DI
	MOVQ x+16(FP), SI
	VBROADCASTSS p+24(FP), Y0
	VBROADCASTSS q+28(FP), Y6
	VBROADCASTSS r+32(FP), Y7
	VBROADCASTSS s+36(FP), Y8
	MOVQ d+40(FP), BX
	MOVQ R11, R12
	ANDQ $7, R12
	SHRQ $3, R11
	LEAQ vecmask<>(SB), AX
	MOVQ $8, DX
	SUBQ R12, DX
	VMOVDQU (AX)(DX*4), Y15
	CMPQ R11, $2
	JLT affine2Setone
affine2Settwo:
	VMOVUPS 0(DI), Y1
	VMOVUPS 0(SI), Y2
	VSUBPS Y8, Y2, Y2
	VFMADD213PS Y7, Y0, Y1
	VFMADD231PS Y2, Y6, Y1
	VMOVUPS Y1, 0(BX)
	VMOVUPS 32(DI), Y3
	VMOVUPS 32(SI), Y4
	VSUBPS Y8, Y4, Y4
	VFMADD213PS Y7, Y0, Y3
	VFMADD231PS Y4, Y6, Y3
	VMOVUPS Y3, 32(BX)
	ADDQ $64, DI
	ADDQ $64, SI
	ADDQ $64, BX
	SUBQ $2, R11
	CMPQ R11, $2
	JGE affine2Settwo
affine2Setone:
	TESTQ R11, R11
	JZ affine2Settail
	VMOVUPS 0(DI), Y1
	VMOVUPS 0(SI), Y2
	VSUBPS Y8, Y2, Y2
	VFMADD213PS Y7, Y0, Y1
	VFMADD231PS Y2, Y6, Y1
	VMOVUPS Y1, 0(BX)
	ADDQ $32, DI
	ADDQ $32, SI
	ADDQ $32, BX
affine2Settail:
	TESTQ R12, R12
	JZ affine2Setfin
	VMASKMOVPS (DI), Y15, Y1
	VMASKMOVPS (SI), Y15, Y2
	VSUBPS Y8, Y2, Y2
	VFMADD213PS Y7, Y0, Y1
	VFMADD231PS Y2, Y6, Y1
	VMASKMOVPS Y1, Y15, (BX)
affine2Setfin:
	VZEROUPPER
	RET

// func affine2Add(n int, gv, x *float32, p, q, r, s float32, d *float32): d[i] += p·g[i] + q·(x[i]-s) + r
TEXT ·affine2Add(SB), NOSPLIT, $0-48
	MOVQ n+0(FP), R11
	MOVQ gv+8(FP), DI
	MOVQ x+16(FP), SI
	VBROADCASTSS p+24(FP), Y0
	VBROADCASTSS q+28(FP), Y6
	VBROADCASTSS r+32(FP), Y7
	VBROADCASTSS s+36(FP), Y8
	MOVQ d+40(FP), BX
	MOVQ R11, R12
	ANDQ $7, R12
	SHRQ $3, R11
	LEAQ vecmask<>(SB), AX
	MOVQ $8, DX
	SUBQ R12, DX
	VMOVDQU (AX)(DX*4), Y15
	CMPQ R11, $2
	JLT affine2Addone
affine2Addtwo:
	VMOVUPS 0(DI), Y1
	VMOVUPS 0(SI), Y2
	VSUBPS Y8, Y2, Y2
	VFMADD213PS Y7, Y0, Y1
	VFMADD231PS Y2, Y6, Y1
	VADDPS 0(BX), Y1, Y1
	VMOVUPS Y1, 0(BX)
	VMOVUPS 32(DI), Y3
	VMOVUPS 32(SI), Y4
	VSUBPS Y8, Y4, Y4
	VFMADD213PS Y7, Y0, Y3
	VFMADD231PS Y4, Y6, Y3
	VADDPS 32(BX), Y3, Y3
	VMOVUPS Y3, 32(BX)
	ADDQ $64, DI
	ADDQ $64, SI
	ADDQ $64, BX
	SUBQ $2, R11
	CMPQ R11, $2
	JGE affine2Addtwo
affine2Addone:
	TESTQ R11, R11
	JZ affine2Addtail
	VMOVUPS 0(DI), Y1
	VMOVUPS 0(SI), Y2
	VSUBPS Y8, Y2, Y2
	VFMADD213PS Y7, Y0, Y1
	VFMADD231PS Y2, Y6, Y1
	VADDPS 0(BX), Y1, Y1
	VMOVUPS Y1, 0(BX)
	ADDQ $32, DI
	ADDQ $32, SI
	ADDQ $32, BX
affine2Addtail:
	TESTQ R12, R12
	JZ affine2Addfin
	VMASKMOVPS (DI), Y15, Y1
	VMASKMOVPS (SI), Y15, Y2
	VSUBPS Y8, Y2, Y2
	VFMADD213PS Y7, Y0, Y1
	VFMADD231PS Y2, Y6, Y1
	VMASKMOVPS (BX), Y15, Y3
	VADDPS Y3, Y1, Y1
	VMASKMOVPS Y1, Y15, (BX)
affine2Addfin:
	VZEROUPPER
	RET

