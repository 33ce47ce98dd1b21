// GELU with the tanh approximation (GPT-2's "gelu_new") and its derivative, in fp32; shared by
// the elementwise GELU kernels (gelu.cu) and the GEMM's fused epilogue (gemm.cu).
#pragma once

#define GELU_SCALE 0.7978845608028654f  // sqrt(2 / pi)
#define GELU_CUBIC 0.044715f

__device__ __forceinline__ float gelu(float x) {
  const float u = GELU_SCALE * (x + GELU_CUBIC * x * x * x);
  return 0.5f * x * (1.0f + tanhf(u));
}

__device__ __forceinline__ float gelu_grad(float x) {
  const float u = GELU_SCALE * (x + GELU_CUBIC * x * x * x);
  const float t = tanhf(u);
  const float du = GELU_SCALE * (1.0f + 3.0f * GELU_CUBIC * x * x);
  return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
}
