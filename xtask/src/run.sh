#!/usr/bin/env bash
# The rlhf GPU bundle (made by `cargo xtask gpu-bundle`): environment report, every GPU test with
# RLHF_REQUIRE_GPU=1, then the kernel benchmark table and the fused-vs-unfused attention table
# (`cuda_bench attention`). Under five minutes; the full log goes to $OUT/gpu-run.log when OUT is
# set. Exit status: 0 only when every test and the bench passed.
# `run.sh gpt` runs only the GPT-2 124M goals instead (gpt_bench: training tokens/s and MFU,
# KV-cache generation, a PPO step's time split; PyTorch on the same card; the ratio table), in
# about three minutes: a separate call, so the two halves each fit a five-minute window.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# The binaries travel gzipped (xtask keeps the bundle under the transfer limit): unpack them and
# the rest into a temporary folder and run from there.
unpacked=$(mktemp -d)
(cd "$here" && find . -type f) | while read -r file; do
  mkdir -p "$unpacked/$(dirname "$file")"
  if [[ $file == *.gz ]]; then
    gzip -dc "$here/$file" >"$unpacked/${file%.gz}" && chmod +x "$unpacked/${file%.gz}"
  else
    cp "$here/$file" "$unpacked/$file"
  fi
done
here=$unpacked
if [[ -n ${OUT:-} ]]; then
  mkdir -p "$OUT"
  exec > >(tee "$OUT/gpu-run.log") 2>&1
fi
echo "== rlhf GPU bundle, commit $(cat "$here/COMMIT" 2>/dev/null), $(date -u +%FT%TZ)"

echo "== environment"
if command -v nvidia-smi >/dev/null; then
  timeout 30 nvidia-smi || echo "nvidia-smi failed ($?)"
else
  echo "nvidia-smi: not found"
fi
ldd --version 2>&1 | head -1
for tool in cargo nvcc python3; do
  printf '%-8s %s\n' "$tool" "$(command -v "$tool" || echo 'not found')"
done

# cuBLAS is loaded at run time (dlopen); add the usual places it lives when the loader's default
# path lacks it: the CUDA toolkit, then PyTorch's pip wheels.
extra=()
for dir in /usr/local/cuda/lib64 /usr/local/cuda-13.0/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  [[ -d $dir ]] && extra+=("$dir")
done
if command -v python3 >/dev/null; then
  site=$(timeout 20 python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null || true)
  for dir in "$site"/nvidia/cu13/lib "$site"/nvidia/cublas/lib "$site"/nvidia/cuda_runtime/lib; do
    [[ -d $dir ]] && extra+=("$dir")
  done
fi
if ((${#extra[@]})); then
  joined=$(IFS=:; echo "${extra[*]}")
  export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$joined"
fi
echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
ldconfig -p 2>/dev/null | grep -E 'libcuda\.so|libcublas\.so' | head -4

status=0
export RLHF_BIN="$here/rlhf" # the CLI that tests/cuda_cli runs
if [[ ${1:-} == gpt ]]; then
  rows=$(mktemp -d)
  echo "== GPT-2 124M goals: rlhf (gpt_bench)"
  timeout 150 "$here/gpt_bench" | tee "$rows/rlhf.jsonl"
  rc=${PIPESTATUS[0]}
  if ((rc != 0)); then
    echo "!! gpt_bench failed (exit $rc; 124 = timed out)"
    status=1
  fi
  echo "== GPT-2 124M: PyTorch on the same card (gpt_bench_torch.py)"
  if command -v python3 >/dev/null; then
    timeout 150 python3 "$here/gpt_bench_torch.py" | tee "$rows/torch.jsonl"
    echo "== ratios"
    python3 "$here/gpt_bench_torch.py" --compare "$rows/rlhf.jsonl" "$rows/torch.jsonl"
  else
    echo "python3 not found: no PyTorch reference rows"
  fi
  echo "== done, status $status"
  exit $status
fi
echo "== GPU tests (RLHF_REQUIRE_GPU=1)"
for test in "$here"/tests/*; do
  echo "-- $(basename "$test")"
  RLHF_REQUIRE_GPU=1 timeout 150 "$test" --test-threads=1
  rc=$?
  if ((rc != 0)); then
    echo "!! $(basename "$test") failed (exit $rc; 124 = timed out)"
    status=1
  fi
done

echo "== the ops and GPT-2 again with every matmul on our GEMM (RLHF_GEMM=ours)"
for name in cuda_tensor cuda_gpt; do
  [[ -x $here/tests/$name ]] || continue
  RLHF_GEMM=ours RLHF_REQUIRE_GPU=1 timeout 100 "$here/tests/$name" --test-threads=1
  rc=$?
  if ((rc != 0)); then
    echo "!! $name with RLHF_GEMM=ours failed (exit $rc; 124 = timed out)"
    status=1
  fi
done

echo "== kernel benchmarks"
timeout 100 "$here/cuda_bench"
rc=$?
if ((rc != 0)); then
  echo "!! cuda_bench failed (exit $rc; 124 = timed out)"
  status=1
fi
echo "== fused vs unfused attention"
timeout 90 "$here/cuda_bench" attention
rc=$?
if ((rc != 0)); then
  echo "!! cuda_bench attention failed (exit $rc; 124 = timed out)"
  status=1
fi
echo "== done, status $status"
exit $status
