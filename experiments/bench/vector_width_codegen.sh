#!/bin/bash
# Whether -mprefer-vector-width=512 (src/models/cpu_kernels.py CFLAGS on x86) changes the machine
# code GCC makes for this host's CPU: each kernel source compiled with the build's flags, without and
# with it, and the disassembly compared (the `zmm` count: instructions on 512-bit registers).
# Usage: experiments/bench/vector_width_codegen.sh   (from the repository root, its .venv built)
set -e
PY=.venv/bin/python
INC=$($PY -c "import sysconfig, torch.utils.cpp_extension as c; print(' '.join('-isystem ' + p for p in c.include_paths() + [sysconfig.get_paths()['include']]))")
OUT=$(mktemp -d)
echo "host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) (family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' '), model $(grep -m1 '^model\s' /proc/cpuinfo | cut -d: -f2 | tr -d ' '))"
echo "gcc: $(gcc -dumpfullversion); -march=native tunes for: $(gcc -march=native -Q --help=target | awk '$1 == "-mtune=" {print $2}'), prefer-vector-width: $(gcc -march=native -Q --help=target | awk '$1 == "-mprefer-vector-width=" {print $2}')"
for src in src/models/*_kernel.cpp; do
  name=$(basename $src .cpp)
  for width in default 512; do
    flag=""; [ $width = 512 ] && flag="-mprefer-vector-width=512"
    g++ -DTORCH_EXTENSION_NAME=check -DTORCH_API_INCLUDE_EXTENSION_H $INC -fPIC -std=c++20 -O3 -march=native \
      -ffast-math $flag -w -Wno-psabi -c $src -o $OUT/${name}_$width.o
    objdump -d --no-show-raw-insn $OUT/${name}_$width.o | sed 1,3d > $OUT/${name}_$width.s
  done
  same=$(cmp -s $OUT/${name}_default.s $OUT/${name}_512.s && echo "identical" || echo "different")
  echo "$name: $same machine code; zmm instructions $(grep -c zmm $OUT/${name}_default.s || true) without the flag, $(grep -c zmm $OUT/${name}_512.s || true) with it"
done
rm -rf $OUT
