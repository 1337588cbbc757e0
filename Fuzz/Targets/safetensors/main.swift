import FuzzHarness

// libFuzzer's driver on the safetensors reader; command-line flags as libFuzzer documents them.
FuzzHarness.start(.safetensors)
