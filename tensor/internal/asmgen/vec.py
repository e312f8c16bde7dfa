#!/usr/bin/env python3
"""Writes tensor/vec_amd64.s: the AVX2/FMA streaming kernels of vec.go.

Run from the repository root: python3 tensor/internal/asmgen/vec.py
Each kernel walks n floats (any n >= 0): two vectors per iteration, then
one, then the last n%8 floats with masked loads and stores (tailMask).
"""

out = []


def tail_mask(count):
    # R12 = count % 8 (the tail's floats), count /= 8 (vectors), and Y15
    # the tail's lane mask.
    return [f"MOVQ {count}, R12\n\tANDQ $7, R12\n\tSHRQ $3, {count}\n\tLEAQ ·tailMask(SB), AX\n"
            "\tMOVQ $8, DX\n\tSUBQ R12, DX\n\tVMOVDQU (AX)(DX*4), Y15"]


def vector_loop(name, ptrs, body, tail, advance_tail=False):
    # R11 vectors: two per iteration, then one, then the R12 tail floats
    # (masked by Y15); with advance_tail the pointers step over the tail.
    L = [f"\tCMPQ R11, $2\n\tJLT {name}one\n{name}two:\n"]
    L += ["\t" + l + "\n" for l in body(0, 0) + body(32, 1)]
    L += [f"\tADDQ $64, {p}\n" for p in ptrs]
    L += [f"\tSUBQ $2, R11\n\tCMPQ R11, $2\n\tJGE {name}two\n{name}one:\n\tTESTQ R11, R11\n\tJZ {name}tail\n"]
    L += ["\t" + l + "\n" for l in body(0, 0)]
    L += [f"\tADDQ $32, {p}\n" for p in ptrs]
    L += [f"{name}tail:\n\tTESTQ R12, R12\n\tJZ {name}fin\n"]
    L += ["\t" + l + "\n" for l in tail()]
    if advance_tail:
        L += [f"\tLEAQ ({p})(R12*4), {p}\n" for p in ptrs]
    return L + [f"{name}fin:\n"]


def kernel(name, sig, frame, setup, ptrs, body, tail, fin):
    L = [f"// {sig}\nTEXT ·{name}(SB), NOSPLIT, {frame}\n"]
    L += ["\t" + l + "\n" for l in setup + tail_mask("R11")]
    L += vector_loop(name, ptrs, body, tail)
    L += ["\t" + l + "\n" for l in fin]
    L += ["\tVZEROUPPER\n\tRET\n\n"]
    out.append("".join(L))


def hsum(a, b, dst):
    return [f"VADDPS Y{b}, Y{a}, Y{a}", f"VEXTRACTF128 $1, Y{a}, X1", f"VADDPS X{a}, X1, X1",
            "VHADDPS X1, X1, X1", "VHADDPS X1, X1, X1", f"VMOVSS X1, {dst}"]


# Loop bodies (off: byte offset of the vector, par: 0 or 1 for the two
# vectors of an iteration) and masked tails, shared by the one-run kernels
# and their planes variants below.
def sum_body(off, par):
    return [f"VADDPS {off}(SI), Y{3+par}, Y{3+par}"]


def sum_tail():
    return ["VMASKMOVPS (SI), Y15, Y1", "VADDPS Y1, Y4, Y4"]


def sqdev_body(off, par):
    return [f"VMOVUPS {off}(SI), Y{1+par}", f"VSUBPS Y0, Y{1+par}, Y{1+par}", f"VFMADD231PS Y{1+par}, Y{1+par}, Y{3+par}"]


def sqdev_tail():
    return ["VMASKMOVPS (SI), Y15, Y1", "VSUBPS Y0, Y1, Y1", "VANDPS Y15, Y1, Y1", "VFMADD231PS Y1, Y1, Y4"]


def relu_of_x(off, reg, masked=False):
    # The fused Relu's output recomputed from x (SI) as affineReluRow
    # computes it, with the forward coefficients a, b in Y12, Y13 and zero
    # in Y9: the same bits as the z the forward pass wrote.
    load = f"VMASKMOVPS (SI), Y15, Y{reg}" if masked else f"VMOVUPS {off}(SI), Y{reg}"
    return [load, f"VFMADD213PS Y13, Y12, Y{reg}", f"VMAXPS Y{reg}, Y9, Y{reg}", f"VADDPS Y9, Y{reg}, Y{reg}"]


def gs_body(relu, zx=False):
    # gradSums: Σ gv and Σ gv·(x − mean); with relu, gv (DI) masked by the
    # Relu output z (BX, or with zx recomputed from x) first (gv where z's
    # bits are not all zero).
    def body(off, par):
        if relu:
            z = relu_of_x(off, 10+par) if zx else [f"VMOVUPS {off}(BX), Y{10+par}"]
            L = z + [f"VPCMPEQD Y9, Y{10+par}, Y{10+par}", f"VPANDN {off}(DI), Y{10+par}, Y{1+par*6}"]
        else:
            L = [f"VMOVUPS {off}(DI), Y{1+par*6}"]
        return L + [f"VADDPS Y{1+par*6}, Y{3+par}, Y{3+par}", f"VMOVUPS {off}(SI), Y{2+par*6}",
                    f"VSUBPS Y0, Y{2+par*6}, Y{2+par*6}", f"VFMADD231PS Y{1+par*6}, Y{2+par*6}, Y{5+par}"]
    return body


def gs_tail(relu, zx=False):
    def tail():
        L = ["VMASKMOVPS (DI), Y15, Y1"]
        if relu:
            z = relu_of_x(0, 10, masked=True) if zx else ["VMASKMOVPS (BX), Y15, Y10"]
            L += z + ["VPCMPEQD Y9, Y10, Y10", "VPANDN Y1, Y10, Y1"]
        return L + ["VADDPS Y1, Y4, Y4", "VMASKMOVPS (SI), Y15, Y2", "VSUBPS Y0, Y2, Y2", "VFMADD231PS Y1, Y2, Y6"]
    return tail


def affine_body(relu):
    # y = a·x + b (Y0, Y5); with relu max(·, +0) then + 0 (Y7 = 0), as clipRow.
    def body(off, par):
        L = [f"VMOVUPS {off}(SI), Y{1+par}", f"VFMADD213PS Y5, Y0, Y{1+par}"]
        if relu:
            L += [f"VMAXPS Y{1+par}, Y7, Y{1+par}", f"VADDPS Y7, Y{1+par}, Y{1+par}"]
        return L + [f"VMOVUPS Y{1+par}, {off}(DI)"]
    return body


def affine_tail(relu):
    def tail():
        L = ["VMASKMOVPS (SI), Y15, Y1", "VFMADD213PS Y5, Y0, Y1"]
        if relu:
            L += ["VMAXPS Y1, Y7, Y1", "VADDPS Y7, Y1, Y1"]
        return L + ["VMASKMOVPS Y1, Y15, (DI)"]
    return tail


def a2_body(add, relu, zx=False):
    # affine2: d = p·gv + q·(x − s) + r (Y0, Y6, Y7, Y8); with relu, gv
    # masked by the Relu output z (R8, or with zx recomputed from x) first,
    # as reluGradSet.
    def body(off, par):
        a, b, zr = (1, 2, 10) if par == 0 else (3, 4, 11)
        if relu:
            z = relu_of_x(off, zr) if zx else [f"VMOVUPS {off}(R8), Y{zr}"]
            L = z + [f"VPCMPEQD Y9, Y{zr}, Y{zr}", f"VPANDN {off}(DI), Y{zr}, Y{a}"]
        else:
            L = [f"VMOVUPS {off}(DI), Y{a}"]
        L += [f"VMOVUPS {off}(SI), Y{b}", f"VSUBPS Y8, Y{b}, Y{b}",
              f"VFMADD213PS Y7, Y0, Y{a}", f"VFMADD231PS Y{b}, Y6, Y{a}"]
        if add:
            L.append(f"VADDPS {off}(BX), Y{a}, Y{a}")
        return L + [f"VMOVUPS Y{a}, {off}(BX)"]
    return body


def a2_tail(add, relu, zx=False):
    def tail():
        L = ["VMASKMOVPS (DI), Y15, Y1"]
        if relu:
            z = relu_of_x(0, 10, masked=True) if zx else ["VMASKMOVPS (R8), Y15, Y10"]
            L += z + ["VPCMPEQD Y9, Y10, Y10", "VPANDN Y1, Y10, Y1"]
        L += ["VMASKMOVPS (SI), Y15, Y2", "VSUBPS Y8, Y2, Y2", "VFMADD213PS Y7, Y0, Y1", "VFMADD231PS Y2, Y6, Y1"]
        if add:
            L += ["VMASKMOVPS (BX), Y15, Y3", "VADDPS Y3, Y1, Y1"]
        return L + ["VMASKMOVPS Y1, Y15, (BX)"]
    return tail


kernel("sumBlock", "func sumBlock(n int, x *float32) float32: Σ x[0:n]", "$0-20",
       ["MOVQ n+0(FP), R11", "MOVQ x+8(FP), SI", "VXORPS Y3, Y3, Y3", "VXORPS Y4, Y4, Y4"], ["SI"],
       sum_body,
       sum_tail,
       hsum(3, 4, "ret+16(FP)"))

kernel("sumSqDevBlock", "func sumSqDevBlock(n int, x *float32, mean float32) float32: Σ (x[i]-mean)²", "$0-28",
       ["MOVQ n+0(FP), R11", "MOVQ x+8(FP), SI", "VBROADCASTSS mean+16(FP), Y0", "VXORPS Y3, Y3, Y3", "VXORPS Y4, Y4, Y4"], ["SI"],
       sqdev_body,
       sqdev_tail,
       hsum(3, 4, "ret+24(FP)"))

kernel("gradSumsBlock", "func gradSumsBlock(n int, gv, x *float32, mean float32) (sg, sgx float32): Σ gv[i] and Σ gv[i]·(x[i]-mean)", "$0-40",
       ["MOVQ n+0(FP), R11", "MOVQ gv+8(FP), DI", "MOVQ x+16(FP), SI", "VBROADCASTSS mean+24(FP), Y0",
        "VXORPS Y3, Y3, Y3", "VXORPS Y4, Y4, Y4", "VXORPS Y5, Y5, Y5", "VXORPS Y6, Y6, Y6"], ["DI", "SI"],
       gs_body(False),
       gs_tail(False),
       hsum(3, 4, "sg+32(FP)") + hsum(5, 6, "sgx+36(FP)"))

kernel("affineRow", "func affineRow(n int, x *float32, a, b float32, y *float32): y[i] = a·x[i] + b", "$0-32",
       ["MOVQ n+0(FP), R11", "MOVQ x+8(FP), SI", "VBROADCASTSS a+16(FP), Y0", "VBROADCASTSS b+20(FP), Y5",
        "MOVQ y+24(FP), DI"], ["SI", "DI"],
       affine_body(False),
       affine_tail(False),
       [])


# affineReluRow: y = max(a·x + b, +0) with affineRow's FMA and clipRow's
# max-then-add-+0, so that it equals affineRow followed by clipRow(lo = +0,
# hi = +Inf) bit for bit (BatchNormalization fused with its Relu).
kernel("affineReluRow", "func affineReluRow(n int, x *float32, a, b float32, y *float32): y[i] = max(a·x[i] + b, +0)", "$0-32",
       ["MOVQ n+0(FP), R11", "MOVQ x+8(FP), SI", "VBROADCASTSS a+16(FP), Y0", "VBROADCASTSS b+20(FP), Y5",
        "MOVQ y+24(FP), DI", "VXORPS Y7, Y7, Y7"], ["SI", "DI"],
       affine_body(True),
       affine_tail(True),
       [])

# gradSumsReluBlock: gradSumsBlock of gv masked by the Relu output z (gv
# where z's bits are not all zero, as reluGradSet makes it).
kernel("gradSumsReluBlock", "func gradSumsReluBlock(n int, gv, z, x *float32, mean float32) (sg, sgx float32): gradSumsBlock of gv[i] where z[i]'s bits are not all zero, else 0", "$0-48",
       ["MOVQ n+0(FP), R11", "MOVQ gv+8(FP), DI", "MOVQ z+16(FP), BX", "MOVQ x+24(FP), SI", "VBROADCASTSS mean+32(FP), Y0",
        "VXORPS Y3, Y3, Y3", "VXORPS Y4, Y4, Y4", "VXORPS Y5, Y5, Y5", "VXORPS Y6, Y6, Y6", "VXORPS Y9, Y9, Y9"], ["DI", "BX", "SI"],
       gs_body(True),
       gs_tail(True),
       hsum(3, 4, "sg+40(FP)") + hsum(5, 6, "sgx+44(FP)"))


def a2(add, relu=False):
    if relu:
        name = "affine2ReluAdd" if add else "affine2ReluSet"
        sig = (f"func {name}(n int, gv, z, x *float32, p, q, r, s float32, d *float32): d[i] {'+' if add else ''}= "
               "p·gm[i] + q·(x[i]-s) + r, gm[i] = gv[i] where z[i]'s bits are not all zero, else 0")
        frame, z, ptrs, o = "$0-56", ["MOVQ z+16(FP), R8"], ["DI", "R8", "SI", "BX"], 8
    else:
        name = "affine2Add" if add else "affine2Set"
        sig = f"func {name}(n int, gv, x *float32, p, q, r, s float32, d *float32): d[i] {'+' if add else ''}= p·gv[i] + q·(x[i]-s) + r"
        frame, z, ptrs, o = "$0-48", [], ["DI", "SI", "BX"], 0
    setup = (["MOVQ n+0(FP), R11", "MOVQ gv+8(FP), DI"] + z +
             [f"MOVQ x+{16+o}(FP), SI", f"VBROADCASTSS p+{24+o}(FP), Y0", f"VBROADCASTSS q+{28+o}(FP), Y6",
              f"VBROADCASTSS r+{32+o}(FP), Y7", f"VBROADCASTSS s+{36+o}(FP), Y8", f"MOVQ d+{40+o}(FP), BX"])
    if relu:
        setup.append("VXORPS Y9, Y9, Y9")
    kernel(name, sig, frame, setup, ptrs, a2_body(add, relu), a2_tail(add, relu), [])


a2(False)
a2(True)

a2(False, relu=True)
a2(True, relu=True)


# clipRow: y = min(hi, max(lo, x)) with x as the second (source) operand of
# VMAXPS/VMINPS, so a NaN x comes through; with zero set, +0 is added after
# (turning the -0 that VMAXPS returns for max(+0, -0) into Go's +0).
kernel("clipRow", "func clipRow(n int, x *float32, lo, hi float32, zero bool, y *float32): y[i] = min(max(x[i], lo), hi) (+0 with zero)", "$0-40",
       ["MOVQ n+0(FP), R11", "MOVQ x+8(FP), SI", "VBROADCASTSS lo+16(FP), Y5", "VBROADCASTSS hi+20(FP), Y6",
        "MOVBLZX zero+24(FP), R13", "MOVQ y+32(FP), DI", "VXORPS Y7, Y7, Y7"], ["SI", "DI"],
       lambda off, par: [f"VMOVUPS {off}(SI), Y{1+par}", f"VMAXPS Y{1+par}, Y5, Y{1+par}", f"VMINPS Y{1+par}, Y6, Y{1+par}",
                         f"TESTQ R13, R13", f"JZ 2(PC)", f"VADDPS Y7, Y{1+par}, Y{1+par}", f"VMOVUPS Y{1+par}, {off}(DI)"],
       lambda: ["VMASKMOVPS (SI), Y15, Y1", "VMAXPS Y1, Y5, Y1", "VMINPS Y1, Y6, Y1", "VADDPS Y7, Y1, Y2",
                "TESTQ R13, R13", "JZ 2(PC)", "VMOVAPS Y2, Y1", "VMASKMOVPS Y1, Y15, (DI)"],
       [])


def rg(add):
    def body(off, par):
        a, b = (1, 2) if par == 0 else (3, 4)
        L = [f"VMOVUPS {off}(SI), Y{a}", f"VPCMPEQD Y7, Y{a}, Y{a}", f"VPANDN {off}(DI), Y{a}, Y{b}"]
        if add:
            L.append(f"VADDPS {off}(BX), Y{b}, Y{b}")
        return L + [f"VMOVUPS Y{b}, {off}(BX)"]

    def tail():
        L = ["VMASKMOVPS (SI), Y15, Y1", "VMASKMOVPS (DI), Y15, Y3", "VPCMPEQD Y7, Y1, Y1", "VPANDN Y3, Y1, Y2"]
        if add:
            L += ["VMASKMOVPS (BX), Y15, Y3", "VADDPS Y3, Y2, Y2"]
        return L + ["VMASKMOVPS Y2, Y15, (BX)"]
    name = "reluGradAdd" if add else "reluGradSet"
    kernel(name, f"func {name}(n int, y, gv *float32, d *float32): d[i] {'+' if add else ''}= gv[i] where the bits of y[i] are not all zero, else 0",
           "$0-32", ["MOVQ n+0(FP), R11", "MOVQ y+8(FP), SI", "MOVQ gv+16(FP), DI", "MOVQ d+24(FP), BX", "VXORPS Y7, Y7, Y7"],
           ["SI", "DI", "BX"], body, tail, [])


rg(False)
rg(True)


def cg(add):
    # pass = the sign bits of (x-lo)+0 and (hi-x)+0 are both clear.
    def body(off, par):
        a, b, c = (1, 2, 8) if par == 0 else (3, 4, 9)
        L = [f"VMOVUPS {off}(SI), Y{a}", f"VSUBPS Y5, Y{a}, Y{b}", f"VADDPS Y7, Y{b}, Y{b}",
             f"VSUBPS Y{a}, Y6, Y{c}", f"VADDPS Y7, Y{c}, Y{c}", f"VORPS Y{c}, Y{b}, Y{b}", f"VPSRAD $31, Y{b}, Y{b}",
             f"VPANDN {off}(DI), Y{b}, Y{b}"]
        if add:
            L.append(f"VADDPS {off}(BX), Y{b}, Y{b}")
        return L + [f"VMOVUPS Y{b}, {off}(BX)"]

    def tail():
        L = ["VMASKMOVPS (SI), Y15, Y1", "VMASKMOVPS (DI), Y15, Y3", "VSUBPS Y5, Y1, Y2", "VADDPS Y7, Y2, Y2",
             "VSUBPS Y1, Y6, Y8", "VADDPS Y7, Y8, Y8", "VORPS Y8, Y2, Y2", "VPSRAD $31, Y2, Y2", "VPANDN Y3, Y2, Y2"]
        if add:
            L += ["VMASKMOVPS (BX), Y15, Y3", "VADDPS Y3, Y2, Y2"]
        return L + ["VMASKMOVPS Y2, Y15, (BX)"]
    name = "clipGradAdd" if add else "clipGradSet"
    kernel(name, f"func {name}(n int, x, gv *float32, lo, hi float32, d *float32): d[i] {'+' if add else ''}= gv[i] where lo <= x[i] <= hi (as (x-lo)+0 and (hi-x)+0 with clear sign bits), else 0",
           "$0-40", ["MOVQ n+0(FP), R11", "MOVQ x+8(FP), SI", "MOVQ gv+16(FP), DI", "VBROADCASTSS lo+24(FP), Y5",
                     "VBROADCASTSS hi+28(FP), Y6", "MOVQ d+32(FP), BX", "VXORPS Y7, Y7, Y7"],
           ["SI", "DI", "BX"], body, tail, [])


cg(False)
cg(True)



# Planes kernels: the kernels above over np consecutive planes of n floats
# each (BatchNormalization over a block of channels of one sample), with
# per-plane parameters read from arrays and per-plane sums added into
# float64 arrays. Each plane runs exactly the loop of its one-plane kernel
# (same accumulators, same horizontal sum), so a planes call gives the same
# bits as one call per plane; only the calls are saved (a 4×4 plane is two
# vectors, fewer instructions than a call from Go).
#
# Registers: R13 planes left, R14 vectors per plane, R12 tail floats,
# R11 vectors left in the plane; AX and DX are free after the mask set-up.
def planes_kernel(name, sig, frame, setup, ptrs, plane_setup, body, tail, plane_fin):
    L = [f"// {sig}\nTEXT ·{name}(SB), NOSPLIT, {frame}\n"]
    L += ["\t" + l + "\n" for l in ["MOVQ np+0(FP), R13", "MOVQ n+8(FP), R14"] + tail_mask("R14") + setup]
    L += [f"\tTESTQ R13, R13\n\tJZ {name}done\n{name}plane:\n"]
    L += ["\t" + l + "\n" for l in plane_setup + ["MOVQ R14, R11"]]
    L += vector_loop(name, ptrs, body, tail, advance_tail=True)
    L += ["\t" + l + "\n" for l in plane_fin]
    L += [f"\tDECQ R13\n\tJNZ {name}plane\n{name}done:\n\tVZEROUPPER\n\tRET\n\n"]
    out.append("".join(L))


def hsum_add64(a, b, ptr):
    # hsum's sum in X1, converted exactly to float64 and added into *ptr.
    return hsum(a, b, "X1")[:-1] + ["VCVTSS2SD X1, X1, X1", f"VADDSD ({ptr}), X1, X1", f"VMOVSD X1, ({ptr})", f"ADDQ $8, {ptr}"]


def bcast(pairs):
    # per-plane parameters: broadcast *ptr into Y, advance ptr.
    return [l for ptr, y in pairs for l in (f"VBROADCASTSS ({ptr}), Y{y}", f"ADDQ $4, {ptr}")]


planes_kernel("sumPlanes", "func sumPlanes(np, n int, x *float32, out *float64): out[i] += float64(sumBlock(n, plane i))", "$0-32",
              ["MOVQ x+16(FP), SI", "MOVQ out+24(FP), R10"], ["SI"],
              ["VXORPS Y3, Y3, Y3", "VXORPS Y4, Y4, Y4"],
              sum_body,
       sum_tail,
              hsum_add64(3, 4, "R10"))

planes_kernel("sumSqDevPlanes", "func sumSqDevPlanes(np, n int, x, mean *float32, out *float64): out[i] += float64(sumSqDevBlock(n, plane i, mean[i]))", "$0-40",
              ["MOVQ x+16(FP), SI", "MOVQ mean+24(FP), R9", "MOVQ out+32(FP), R10"], ["SI"],
              bcast([("R9", 0)]) + ["VXORPS Y3, Y3, Y3", "VXORPS Y4, Y4, Y4"],
              sqdev_body,
       sqdev_tail,
              hsum_add64(3, 4, "R10"))


def gsp(relu):
    if relu:
        name, frame = "gradSumsReluPlanes", "$0-64"
        sig = (f"func {name}(np, n int, gv, z, x, mean *float32, sg, sgx *float64): sg[i], sgx[i] += "
               "float64 of gradSumsReluBlock(n, plane i, mean[i])")
        setup = ["MOVQ gv+16(FP), DI", "MOVQ z+24(FP), BX", "MOVQ x+32(FP), SI", "MOVQ mean+40(FP), R9",
                 "MOVQ sg+48(FP), R10", "MOVQ sgx+56(FP), CX", "VXORPS Y9, Y9, Y9"]
        ptrs = ["DI", "BX", "SI"]
    else:
        name, frame = "gradSumsPlanes", "$0-56"
        sig = (f"func {name}(np, n int, gv, x, mean *float32, sg, sgx *float64): sg[i], sgx[i] += "
               "float64 of gradSumsBlock(n, plane i, mean[i])")
        setup = ["MOVQ gv+16(FP), DI", "MOVQ x+24(FP), SI", "MOVQ mean+32(FP), R9", "MOVQ sg+40(FP), R10", "MOVQ sgx+48(FP), CX"]
        ptrs = ["DI", "SI"]
    planes_kernel(name, sig, frame, setup, ptrs,
                  bcast([("R9", 0)]) + ["VXORPS Y3, Y3, Y3", "VXORPS Y4, Y4, Y4", "VXORPS Y5, Y5, Y5", "VXORPS Y6, Y6, Y6"],
                  gs_body(relu), gs_tail(relu), hsum_add64(3, 4, "R10") + hsum_add64(5, 6, "CX"))


gsp(False)
gsp(True)


def ap(relu):
    name = "affineReluPlanes" if relu else "affinePlanes"
    sig = f"func {name}(np, n int, x, a, b, y *float32): {'affineReluRow' if relu else 'affineRow'}(n, plane i of x, a[i], b[i], plane i of y)"
    setup = ["MOVQ x+16(FP), SI", "MOVQ a+24(FP), R9", "MOVQ b+32(FP), R10", "MOVQ y+40(FP), DI"]
    if relu:
        setup.append("VXORPS Y7, Y7, Y7")
    planes_kernel(name, sig, "$0-48", setup, ["SI", "DI"], bcast([("R9", 0), ("R10", 5)]), affine_body(relu), affine_tail(relu), [])


ap(False)
ap(True)


def a2p(add, relu=False):
    # affine2 over planes: p, q, r, s per plane from arrays (Y0, Y6, Y7, Y8).
    base = ("affine2Relu" if relu else "affine2") + ("Add" if add else "Set")
    name = base + "Planes"
    if relu:
        sig = f"func {name}(np, n int, gv, z, x, p, q, r, s, d *float32): {base}(n, planes i of gv, z, x, p[i], q[i], r[i], s[i], plane i of d)"
        frame, ptrs, o, setup = "$0-80", ["DI", "R8", "SI", "BX"], 8, ["MOVQ z+24(FP), R8", "VXORPS Y9, Y9, Y9"]
    else:
        sig = f"func {name}(np, n int, gv, x, p, q, r, s, d *float32): {base}(n, planes i of gv, x, p[i], q[i], r[i], s[i], plane i of d)"
        frame, ptrs, o, setup = "$0-72", ["DI", "SI", "BX"], 0, []
    setup = (["MOVQ gv+16(FP), DI"] + setup +
             [f"MOVQ x+{24+o}(FP), SI", f"MOVQ p+{32+o}(FP), R9", f"MOVQ q+{40+o}(FP), R10",
              f"MOVQ r+{48+o}(FP), AX", f"MOVQ s+{56+o}(FP), DX", f"MOVQ d+{64+o}(FP), BX"])
    planes_kernel(name, sig, frame, setup, ptrs, bcast([("R9", 0), ("R10", 6), ("AX", 7), ("DX", 8)]), a2_body(add, relu), a2_tail(add, relu), [])


a2p(False)
a2p(True)
a2p(False, relu=True)
a2p(True, relu=True)


# The Relu-fused backward planes kernels reading x instead of the Relu
# output z: z is recomputed from x with the forward coefficients a, b
# (per plane, Y12 and Y13), one input stream fewer for these
# memory-bound passes. Same bits as the z variants.
planes_kernel("gradSumsReluXPlanes",
              "func gradSumsReluXPlanes(np, n int, gv, x, a, b, mean *float32, sg, sgx *float64): gradSumsReluPlanes with z = max(a[i]·x + b[i], +0) recomputed",
              "$0-72",
              ["MOVQ gv+16(FP), DI", "MOVQ x+24(FP), SI", "MOVQ a+32(FP), BX", "MOVQ b+40(FP), AX", "MOVQ mean+48(FP), R9",
               "MOVQ sg+56(FP), R10", "MOVQ sgx+64(FP), CX", "VXORPS Y9, Y9, Y9"], ["DI", "SI"],
              bcast([("R9", 0), ("BX", 12), ("AX", 13)]) + ["VXORPS Y3, Y3, Y3", "VXORPS Y4, Y4, Y4", "VXORPS Y5, Y5, Y5", "VXORPS Y6, Y6, Y6"],
              gs_body(True, zx=True), gs_tail(True, zx=True), hsum_add64(3, 4, "R10") + hsum_add64(5, 6, "CX"))


def a2xp(add):
    base = "affine2Relu" + ("Add" if add else "Set")
    name = "affine2ReluX" + ("Add" if add else "Set") + "Planes"
    sig = f"func {name}(np, n int, gv, x, a, b, p, q, r, s, d *float32): {base}Planes with z = max(a[i]·x + b[i], +0) recomputed"
    setup = ["MOVQ gv+16(FP), DI", "MOVQ x+24(FP), SI", "MOVQ a+32(FP), R8", "MOVQ b+40(FP), CX", "MOVQ p+48(FP), R9",
             "MOVQ q+56(FP), R10", "MOVQ r+64(FP), AX", "MOVQ s+72(FP), DX", "MOVQ d+80(FP), BX", "VXORPS Y9, Y9, Y9"]
    planes_kernel(name, sig, "$0-88", setup, ["DI", "SI", "BX"],
                  bcast([("R9", 0), ("R10", 6), ("AX", 7), ("DX", 8), ("R8", 12), ("CX", 13)]),
                  a2_body(add, True, zx=True), a2_tail(add, True, zx=True), [])


a2xp(False)
a2xp(True)


# expRow and sigmoidRow: exp(x) in float32 (Cephes expf: n = round(x·log2 e),
# r = x − n·ln 2 in two parts, a degree-7 polynomial, times 2^n as two
# factors 2^(n>>1)·2^(n−(n>>1)) so that results in the subnormal range
# round once and those past the largest float become +Inf). x is first
# clamped to [−104, 89] with x as the second operand of VMAXPS/VMINPS, so
# a NaN comes through. Constants are 8-float rows of expConsts
# (asm_amd64.go, see expConstRows); Y13 and Y14 hold the clamp bounds.
EXP_ROWS = (["log2e", "c1", "c2", "p0", "p1", "p2", "p3", "p4", "p5", "one", "bias", "sign", "abs", "two", "c0625"] +
            [f"t{i}" for i in range(5)] + [f"s{i}" for i in range(7)] + [f"l{i}" for i in range(10)] + ["k1", "k2"])


def ec(name):
    return f"·expConsts+{32*EXP_ROWS.index(name)}(SB)"


def exp_of(a, b, c, d):
    # Y{c} = exp(Y{a}); clobbers Y{a}, Y{b}, Y{d}.
    L = [f"VMINPS Y{a}, Y13, Y{a}", f"VMAXPS Y{a}, Y14, Y{a}",
         f"VMULPS {ec('log2e')}, Y{a}, Y{b}", f"VROUNDPS $0, Y{b}, Y{b}",
         f"VFNMADD231PS {ec('c1')}, Y{b}, Y{a}", f"VFNMADD231PS {ec('c2')}, Y{b}, Y{a}",
         f"VMOVUPS {ec('p0')}, Y{c}"]
    L += [f"VFMADD213PS {ec(k)}, Y{a}, Y{c}" for k in ["p1", "p2", "p3", "p4", "p5"]]
    L += [f"VMULPS Y{a}, Y{a}, Y{d}", f"VFMADD213PS Y{a}, Y{d}, Y{c}", f"VADDPS {ec('one')}, Y{c}, Y{c}",
          f"VCVTPS2DQ Y{b}, Y{b}", f"VPSRAD $1, Y{b}, Y{d}", f"VPSUBD Y{d}, Y{b}, Y{b}",
          f"VPADDD {ec('bias')}, Y{d}, Y{d}", f"VPSLLD $23, Y{d}, Y{d}", f"VMULPS Y{d}, Y{c}, Y{c}",
          f"VPADDD {ec('bias')}, Y{b}, Y{b}", f"VPSLLD $23, Y{b}, Y{b}", f"VMULPS Y{b}, Y{c}, Y{c}"]
    return L


def exp_body(off, par):
    a, b, c, d = (0, 1, 2, 3) if par == 0 else (5, 6, 7, 8)
    return [f"VMOVUPS {off}(SI), Y{a}"] + exp_of(a, b, c, d) + [f"VMOVUPS Y{c}, {off}(DI)"]


def exp_tail():
    return ["VMASKMOVPS (SI), Y15, Y0"] + exp_of(0, 1, 2, 3) + ["VMASKMOVPS Y2, Y15, (DI)"]


EXP_SETUP = ["MOVQ n+0(FP), R11", "MOVQ x+8(FP), SI", "MOVQ y+16(FP), DI",
             "VBROADCASTSS ·expClamp+0(SB), Y13", "VBROADCASTSS ·expClamp+4(SB), Y14"]

kernel("expRow", "func expRow(n int, x, y *float32): y[i] = exp(x[i]) in float32", "$0-24",
       EXP_SETUP, ["SI", "DI"], exp_body, exp_tail, [])


# sigmoidRow: e = exp(−|x|), s = 1/(1+e); y = s for x >= 0 and e·s for
# x < 0 (the sign bit of x picks), so neither side overflows.
def sigmoid_of(x, a, b, c, d):
    return ([f"VORPS {ec('sign')}, Y{x}, Y{a}"] + exp_of(a, b, c, d) +
            [f"VADDPS {ec('one')}, Y{c}, Y{d}", f"VMOVUPS {ec('one')}, Y{b}", f"VDIVPS Y{d}, Y{b}, Y{d}",
             f"VMULPS Y{d}, Y{c}, Y{c}", f"VBLENDVPS Y{x}, Y{c}, Y{d}, Y{d}"])


def sigmoid_body(off, par):
    x, a, b, c, d = (0, 1, 2, 3, 4) if par == 0 else (5, 6, 7, 8, 9)
    return [f"VMOVUPS {off}(SI), Y{x}"] + sigmoid_of(x, a, b, c, d) + [f"VMOVUPS Y{d}, {off}(DI)"]


def sigmoid_tail():
    return ["VMASKMOVPS (SI), Y15, Y0"] + sigmoid_of(0, 1, 2, 3, 4) + ["VMASKMOVPS Y4, Y15, (DI)"]


kernel("sigmoidRow", "func sigmoidRow(n int, x, y *float32): y[i] = 1/(1+exp(-x[i])) in float32", "$0-24",
       EXP_SETUP, ["SI", "DI"], sigmoid_body, sigmoid_tail, [])


# tanhRow (Cephes tanhf): a = |x|; above 0.625, 1 − 2/(e^(2a) + 1);
# below, a + a·s·P(s) with s = x²; the sign of x put back. Both pieces
# are computed and blended; the two vectors of an iteration reuse the
# same registers (Y0–Y5), so this kernel runs them one after the other.
def tanh_of(x):
    # Y5 = tanh(Y{x}); clobbers Y1–Y4.
    L = [f"VANDPS {ec('abs')}, Y{x}, Y1", "VADDPS Y1, Y1, Y2"] + exp_of(2, 3, 4, 5)
    L += [f"VADDPS {ec('one')}, Y4, Y5", f"VMOVUPS {ec('two')}, Y3", "VDIVPS Y5, Y3, Y3",
          f"VMOVUPS {ec('one')}, Y5", "VSUBPS Y3, Y5, Y5",
          f"VMULPS Y{x}, Y{x}, Y4", f"VMOVUPS {ec('t0')}, Y2"]
    L += [f"VFMADD213PS {ec(f't{i}')}, Y4, Y2" for i in range(1, 5)]
    L += ["VMULPS Y4, Y2, Y2", "VFMADD213PS Y1, Y1, Y2",
          f"VCMPPS $0x1e, {ec('c0625')}, Y1, Y3", "VBLENDVPS Y3, Y5, Y2, Y5",
          f"VANDPS {ec('sign')}, Y{x}, Y3", "VORPS Y3, Y5, Y5"]
    return L


kernel("tanhRow", "func tanhRow(n int, x, y *float32): y[i] = tanh(x[i]) in float32", "$0-24",
       EXP_SETUP, ["SI", "DI"],
       lambda off, par: [f"VMOVUPS {off}(SI), Y0"] + tanh_of(0) + [f"VMOVUPS Y5, {off}(DI)"],
       lambda: ["VMASKMOVPS (SI), Y15, Y0"] + tanh_of(0) + ["VMASKMOVPS Y5, Y15, (DI)"],
       [])


# erfRow: a = |x|; below 1, a·S(a²) (degree 6); from 1 on, 1 − e^(−a²)·L(u)
# with a clamped to [1, 4] (erf is 1 in float32 past 4) and L a degree-9
# polynomial in u = (1/a − 0.625)/0.375; the pieces blended by a < 1 and
# the sign of x put back. Coefficients fitted to erf in float64 on
# Chebyshev nodes (erf's docs in exp.go). Y10 = 1, Y11 = 4.
def erf_of(x):
    # Y8 = erf(Y{x}); clobbers Y1–Y7.
    L = [f"VANDPS {ec('abs')}, Y{x}, Y1", "VMULPS Y1, Y1, Y3", f"VMOVUPS {ec('s0')}, Y2"]
    L += [f"VFMADD213PS {ec(f's{i}')}, Y3, Y2" for i in range(1, 7)]
    L += ["VMULPS Y1, Y2, Y2",
          "VMINPS Y1, Y11, Y3", "VMAXPS Y3, Y10, Y3", "VDIVPS Y3, Y10, Y4",
          f"VMULPS {ec('k1')}, Y4, Y4", f"VSUBPS {ec('k2')}, Y4, Y4", f"VMOVUPS {ec('l0')}, Y5"]
    L += [f"VFMADD213PS {ec(f'l{i}')}, Y4, Y5" for i in range(1, 10)]
    L += ["VMULPS Y3, Y3, Y3", f"VXORPS {ec('sign')}, Y3, Y3"] + exp_of(3, 6, 7, 8)
    L += ["VMULPS Y5, Y7, Y7", "VMOVAPS Y10, Y8", "VSUBPS Y7, Y8, Y8",
          "VCMPPS $0x11, Y10, Y1, Y6", "VBLENDVPS Y6, Y2, Y8, Y8",
          f"VANDPS {ec('sign')}, Y{x}, Y6", "VORPS Y6, Y8, Y8"]
    return L


kernel("erfRow", "func erfRow(n int, x, y *float32): y[i] = erf(x[i]) in float32", "$0-24",
       EXP_SETUP + ["VBROADCASTSS ·expClamp+8(SB), Y10", "VBROADCASTSS ·expClamp+12(SB), Y11"], ["SI", "DI"],
       lambda off, par: [f"VMOVUPS {off}(SI), Y0"] + erf_of(0) + [f"VMOVUPS Y8, {off}(DI)"],
       lambda: ["VMASKMOVPS (SI), Y15, Y0"] + erf_of(0) + ["VMASKMOVPS Y8, Y15, (DI)"],
       [])


# normParamRow: float64 sums over 4 floats per vector (n a multiple of 4),
# the operations in the order of the Go loop in vec.go (NormParamSums), so
# the bits are the same: s1 += (g·(x − mean))·inv, s2 += g.
out.append("""// func normParamRow(n int, x, gv *float32, mean, inv float64, s1, s2 *float64)
TEXT ·normParamRow(SB), NOSPLIT, $0-56
	MOVQ n+0(FP), CX
	MOVQ x+8(FP), SI
	MOVQ gv+16(FP), DI
	VBROADCASTSD mean+24(FP), Y8
	VBROADCASTSD inv+32(FP), Y9
	MOVQ s1+40(FP), R8
	MOVQ s2+48(FP), R9
	SHRQ $2, CX
	JZ normParamRowdone
normParamRowloop:
	VCVTPS2PD (SI), Y0
	VCVTPS2PD (DI), Y1
	VSUBPD Y8, Y0, Y0
	VMULPD Y0, Y1, Y0
	VMULPD Y9, Y0, Y0
	VADDPD (R8), Y0, Y0
	VMOVUPD Y0, (R8)
	VADDPD (R9), Y1, Y1
	VMOVUPD Y1, (R9)
	ADDQ $16, SI
	ADDQ $16, DI
	ADDQ $32, R8
	ADDQ $32, R9
	DECQ CX
	JNZ normParamRowloop
normParamRowdone:
	VZEROUPPER
	RET

""")

hdr = """//go:build !purego

// Code generated by tensor/internal/asmgen/vec.py. DO NOT EDIT.

#include "textflag.h"

// Streaming kernels over n floats (any n >= 0): two vectors per iteration,
// then one, then the tail with masked loads and stores. See vec.go for the
// contracts.

// Masked tails load their lane mask from tailMask (asm_amd64.go).

"""
with open("tensor/vec_amd64.s", "w") as f:
    f.write(hdr + "".join(out).rstrip() + "\n")
