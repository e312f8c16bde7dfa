//go:build !purego

#include "textflag.h"

// func gatherRow(n int, idx *int32, src *float32, dst *float32)
// dst[o] = src[idx[o]] where idx[o] >= 0, else 0, for o < n (n >= 0).
// Eight outputs per VGATHERDPS with the lanes of negative indices masked
// off (they keep the zero the destination starts with); the last n%8
// outputs load their indices and store their values through tailMask.
TEXT ·gatherRow(SB), NOSPLIT, $0-32
	MOVQ n+0(FP), R11
	MOVQ idx+8(FP), DI
	MOVQ src+16(FP), SI
	MOVQ dst+24(FP), BX
	VPCMPEQD Y7, Y7, Y7 // all ones = -1 in every lane
	MOVQ R11, R12
	ANDQ $7, R12
	SHRQ $3, R11
	TESTQ R11, R11
	JZ gtail

gloop:
	VMOVDQU (DI), Y1
	VPCMPGTD Y7, Y1, Y2 // lanes with idx > -1
	VXORPS Y0, Y0, Y0
	VGATHERDPS Y2, (SI)(Y1*4), Y0
	VMOVUPS Y0, (BX)
	ADDQ $32, DI
	ADDQ $32, BX
	DECQ R11
	JNZ gloop

gtail:
	TESTQ R12, R12
	JZ gdone
	LEAQ ·tailMask(SB), AX
	MOVQ $8, DX
	SUBQ R12, DX
	VMOVDQU (AX)(DX*4), Y15
	VPMASKMOVD (DI), Y15, Y1
	VPCMPGTD Y7, Y1, Y2
	VPAND Y15, Y2, Y2
	VXORPS Y0, Y0, Y0
	VGATHERDPS Y2, (SI)(Y1*4), Y0
	VMASKMOVPS Y0, Y15, (BX)

gdone:
	VZEROUPPER
	RET
