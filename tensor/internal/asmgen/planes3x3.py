#!/usr/bin/env python3
"""Writes tensor/planes3x3_amd64.s: kernels of 3×3, pad-1, stride-1 windows
over 4×4 and 8×8 planes: the depthwise convolution (forward and weight
gradient) and im2col.

Run from the repository root: python3 tensor/internal/asmgen/planes3x3.py
A 4×4 plane is four 4-float rows, one XMM register each (8×8: eight
8-float rows in YMM registers); a tap's input row is a neighbouring row
(or zeros past the border) shifted by one float within the register
(VPSLLDQ/VPSRLDQ fill with zeros; VPERMPS and a blend with zero for 8). No padded copy of
the plane is made, and a call runs many planes. Per output float the
arithmetic is that of dw3x3Rows and dw3x3Grad on the zero-padded plane
(same products, same order, zeros where the padding was), so the results
are the same bits.
"""

out = []
ZERO = "3"


def row_taps(side, r, i):
    """Loads input row r+i-1 of a side×side plane and its shifted copies;
    returns the instructions and the registers holding the taps j = 0, 1, 2
    (col p-1, p, p+1). 4-float rows are XMM registers shifted by
    VPSLLDQ/VPSRLDQ; 8-float rows are YMM registers permuted by VPERMPS
    (indexes in Y5, Y6) with the vacated lane zeroed by VBLENDPS."""
    ir = r + i - 1
    v = "X" if side == 4 else "Y"
    if ir < 0 or ir >= side:
        return [], [v + ZERO] * 3
    if side == 4:
        return [f"VMOVUPS {16*ir}(SI), X1", "VPSLLDQ $4, X1, X2", "VPSRLDQ $4, X1, X4"], ["X2", "X1", "X4"]
    return [f"VMOVUPS {32*ir}(SI), Y1", "VPERMPS Y1, Y5, Y2", "VBLENDPS $0x01, Y3, Y2, Y2",
            "VPERMPS Y1, Y6, Y4", "VBLENDPS $0x80, Y3, Y4, Y4"], ["Y2", "Y1", "Y4"]


def setup_perm(side):
    if side == 4:
        return ""
    return "\tVMOVDQU ·laneUp(SB), Y5\n\tVMOVDQU ·laneDown(SB), Y6\n"


def forward(side):
    v, rb, pb, name = ("X", 16, 64, "dw4") if side == 4 else ("Y", 32, 256, "dw8")
    L = [f"// func {name}Planes(np int, x, w, y *float32, add bool)\n"
         f"// For each of np planes: y[r*{side}+p] (= or +=) Σ_{{i,j<3}} w[i*3+j] · x[r+i-1][p+j-1]\n"
         f"// (zero outside the {side}×{side} plane); plane k reads x[{side*side}k:], w[9k:], writes y[{side*side}k:].\n"
         f"TEXT ·{name}Planes(SB), NOSPLIT, $0-33\n"
         "\tMOVQ np+0(FP), CX\n\tMOVQ x+8(FP), SI\n\tMOVQ w+16(FP), BX\n\tMOVQ y+24(FP), DI\n"
         f"\tMOVBLZX add+32(FP), R13\n" + setup_perm(side) + f"\tVXORPS Y3, Y3, Y3\n\tTESTQ CX, CX\n\tJZ {name}done\n"
         f"{name}plane:\n"]
    for t in range(9):
        L.append(f"\tVBROADCASTSS {4*t}(BX), {v}{7+t}\n")
    for r in range(side):
        first = True
        for i in range(3):
            ld, regs = row_taps(side, r, i)
            L += ["\t" + l + "\n" for l in ld]
            for j in range(3):
                w = f"{v}{7+3*i+j}"
                if first:
                    L.append(f"\tVMULPS {regs[j]}, {w}, {v}0\n")
                    first = False
                else:
                    L.append(f"\tVFMADD231PS {regs[j]}, {w}, {v}0\n")
        L.append(f"\tTESTQ R13, R13\n\tJZ 2(PC)\n\tVADDPS {rb*r}(DI), {v}0, {v}0\n\tVMOVUPS {v}0, {rb*r}(DI)\n")
    L.append(f"\tADDQ ${pb}, SI\n\tADDQ $36, BX\n\tADDQ ${pb}, DI\n\tDECQ CX\n\tJNZ {name}plane\n"
             f"{name}done:\n\tVZEROUPPER\n\tRET\n\n")
    out.append("".join(L))


def grad(side):
    v, rb, pb, name = ("X", 16, 64, "dw4") if side == 4 else ("Y", 32, 256, "dw8")
    L = [f"// func {name}GradPlanes(np int, x, dy, sums *float32)\n"
         f"// For each of np planes: sums[i*3+j] += Σ_{{r,p<{side}}} dy[r][p] · x[r+i-1][p+j-1]\n"
         "// (zero outside), summed as dw3x3Grad sums them; plane k reads\n"
         f"// x[{side*side}k:], dy[{side*side}k:] and adds into sums[9k:].\n"
         f"TEXT ·{name}GradPlanes(SB), NOSPLIT, $0-32\n"
         "\tMOVQ np+0(FP), CX\n\tMOVQ x+8(FP), SI\n\tMOVQ dy+16(FP), BX\n\tMOVQ sums+24(FP), R10\n"
         + setup_perm(side) + f"\tVXORPS Y3, Y3, Y3\n\tTESTQ CX, CX\n\tJZ {name}gdone\n"
         f"{name}gplane:\n"]
    for t in range(9):
        L.append(f"\tVXORPS Y{7+t}, Y{7+t}, Y{7+t}\n")
    for r in range(side):
        L.append(f"\tVMOVUPS {rb*r}(BX), {v}0\n")
        for i in range(3):
            ld, regs = row_taps(side, r, i)
            L += ["\t" + l + "\n" for l in ld]
            for j in range(3):
                L.append(f"\tVFMADD231PS {regs[j]}, {v}0, {v}{7+3*i+j}\n")
    for t in range(9):
        # dw3x3Grad's horizontal sum: the upper half (zero for 4-float
        # rows) added to the lower, then two horizontal adds; the result
        # added into sums as Go's sums[t] += one[t] adds (sums first:
        # which NaN comes out depends on the order).
        L += [f"\tVEXTRACTF128 $1, Y{7+t}, X1\n", f"\tVADDPS X{7+t}, X1, X1\n", "\tVHADDPS X1, X1, X1\n", "\tVHADDPS X1, X1, X1\n",
              f"\tVMOVSS {4*t}(R10), X2\n", "\tVADDSS X1, X2, X1\n", f"\tVMOVSS X1, {4*t}(R10)\n"]
    L.append(f"\tADDQ ${pb}, SI\n\tADDQ ${pb}, BX\n\tADDQ $36, R10\n\tDECQ CX\n\tJNZ {name}gplane\n"
             f"{name}gdone:\n\tVZEROUPPER\n\tRET\n\n")
    out.append("".join(L))


def im2col(side):
    # The 9 column rows of each channel: tap (i, j) of output row r is
    # input row r+i-1 shifted by j-1, zeros outside. Each input row is
    # loaded once and its three shifted copies stored into the rows of
    # the taps that read it. Column row (ci·9 + 3i + j) starts at
    # col + (ci·9 + 3i + j)·ld floats: P_i = DI + i·3·ld, plus j·ld by the
    # index register R9 (= ld in bytes) at scale 1 or 2.
    v, rb, name = ("X", 16, "im2col4") if side == 4 else ("Y", 32, "im2col8")
    pl = side * side
    L = [f"// func {name}(c int, x, col *float32, ld int)\n"
         f"// For each of c channels of {side}×{side} planes: col[(ci·9 + i·3 + j)·ld + r·{side} + p] =\n"
         f"// x[ci][r+i-1][p+j-1] (zero outside the plane).\n"
         f"TEXT ·{name}(SB), NOSPLIT, $0-32\n"
         "\tMOVQ c+0(FP), CX\n\tMOVQ x+8(FP), SI\n\tMOVQ col+16(FP), DI\n\tMOVQ ld+24(FP), R9\n"
         "\tSHLQ $2, R9\n\tLEAQ (R9)(R9*2), R10\n\tLEAQ (R10)(R10*2), R11\n"
         + setup_perm(side) + f"\tVXORPS Y3, Y3, Y3\n\tTESTQ CX, CX\n\tJZ {name}done\n"
         f"{name}chan:\n\tLEAQ (DI)(R10*1), R12\n\tLEAQ (DI)(R10*2), R13\n"]
    P = ["DI", "R12", "R13"]

    def store(reg, i, j, r):
        idx = "" if j == 0 else f"(R9*{j})"
        return f"\tVMOVUPS {reg}, {rb*r}({P[i]}){idx}\n"
    for ir in range(-1, side + 1):
        ld, regs = row_taps(side, ir + 1, 0)  # row_taps(r, i) loads row r+i-1 = ir
        L += ["\t" + l + "\n" for l in ld]
        for i in range(3):
            r = ir - i + 1
            if 0 <= r < side:
                for j in range(3):
                    L.append(store(regs[j], i, j, r))
    L.append(f"\tADDQ ${4*pl}, SI\n\tADDQ R11, DI\n\tDECQ CX\n\tJNZ {name}chan\n"
             f"{name}done:\n\tVZEROUPPER\n\tRET\n\n")
    out.append("".join(L))


for side in (4, 8):
    forward(side)
    grad(side)
    im2col(side)

hdr = """//go:build !purego

// Code generated by tensor/internal/asmgen/planes3x3.py. DO NOT EDIT.

#include "textflag.h"

// 3×3, stride-1, pad-1 windows over 4×4 or 8×8 planes: depthwise kernels
// over many planes (Depthwise3x3.ForwardPlanes and WeightGradPlanes in
// dw.go) and im2col (Im2colPlan in im2col.go).

// Y5, Y6: laneUp and laneDown (asm_amd64.go), VPERMPS indexes that
// move each float of an 8-float row one lane up (col p-1) or down (col
// p+1); the lane left over is zeroed by a blend.

"""
with open("tensor/planes3x3_amd64.s", "w") as f:
    f.write(hdr + "".join(out))
