{
  "targets": [
    {
      "target_name": "quorum_native",
      "sources": ["native/addon.cc", "native/copy.cc", "native/fused.cc", "native/gemm.cc", "native/ops.cc", "native/pool.cc"],
      "cflags_cc": ["-O3", "-std=c++17", "-fno-math-errno"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "ldflags": ["-pthread"],
      "cflags": ["-pthread"]
    }
  ]
}
