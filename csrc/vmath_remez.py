"""The coefficients of Q in csrc/pynn/kernels/vmath.h: minimax on the relative error.

Q(r) approximates (e^r - 1 - r) / r^2 on |r| <= ln2 / 2 (a little wider,
for the rounding of r), so that exp(r) = 1 + (r + r^2 Q(r)).  The Remez
exchange algorithm, in 60-digit arithmetic (mpmath): solve for the
polynomial whose relative error alternates in sign with equal size on n + 2
reference points, move the points to the extrema of the error on a fine
grid, repeat.  Prints, for degree 4 (float) and 9 (double), the error of Q
and its coefficients rounded to the type, constant term first.

Run: ``python csrc/vmath_remez.py`` (needs mpmath; a minute or two).
"""
import struct

import mpmath as mp

mp.mp.dps = 60


def target(r):
    if abs(r) < mp.mpf("1e-20"):
        return mp.mpf(1) / 2 + r / 6
    return (mp.exp(r) - 1 - r) / r ** 2


def remez(degree, a, b, iterations=30, grid_points=4000):
    n = degree + 2
    # Chebyshev extrema as the first reference
    ref = sorted((a + b) / 2 + (b - a) / 2 * mp.cos(mp.pi * i / (n - 1)) for i in range(n))
    grid = [a + (b - a) * i / grid_points for i in range(grid_points + 1)]
    for _ in range(iterations):
        # P(x_i) - f(x_i) = (-1)^i E f(x_i): the relative error alternates
        system, rhs = mp.matrix(n, n), mp.matrix(n, 1)
        for i, x in enumerate(ref):
            for j in range(degree + 1):
                system[i, j] = x ** j
            system[i, degree + 1] = -((-1) ** i) * target(x)
            rhs[i] = target(x)
        solution = mp.lu_solve(system, rhs)
        coef = [solution[j] for j in range(degree + 1)]
        errors = [(mp.polyval(coef[::-1], x) - target(x)) / target(x) for x in grid]
        # one extremum per run of equal sign
        runs, current = [], [0]
        for k in range(1, len(grid)):
            if (errors[k] >= 0) == (errors[current[0]] >= 0):
                current.append(k)
            else:
                runs.append(current)
                current = [k]
        runs.append(current)
        picks = [max(run, key=lambda k: abs(errors[k])) for run in runs]
        while len(picks) > n:  # drop the smaller end
            picks.pop(0 if abs(errors[picks[0]]) < abs(errors[picks[-1]]) else -1)
        if len(picks) < n:
            break
        ref = [grid[k] for k in picks]
    return coef, max(abs(e) for e in errors)


def as_float32(value):
    return struct.unpack("f", struct.pack("f", value))[0]


def main():
    half = mp.log(2) / 2 * mp.mpf("1.01")
    for degree, name, cast in ((4, "float", as_float32), (9, "double", float)):
        coef, error = remez(degree, -half, half)
        print(f"{name}: degree {degree}, relative error of Q {mp.nstr(error, 3)}")
        for c in coef:
            print(f"    {cast(float(c))!r}")


if __name__ == "__main__":
    main()
